"""A loop_step written in Python that keeps its state in the ring's IOU_REGION_MEM region:
the application run (run_in_app, through designs.loop.mem_region) and the compiled run
(bpf_io_uring_get_region in the ring) act on the same memory with the same results."""

from __future__ import annotations

import ctypes

import pytest

from uringbpf.designs import loop
from uringbpf.lang import Module, ptr, s32, u32, u64
from uringbpf.lang.loop import (IOU_LOOP_CONTINUE, IOU_LOOP_STOP, IOU_REGION_CQ, IOU_REGION_MEM,
                                IOU_REGION_SQ, bpf_io_uring_get_region, bpf_io_uring_submit_sqes)
from uringbpf.lang.prep import prep_nop
from uringbpf.uring.uapi import Cqe, Sqe

bpf = Module("region_test")
PAGE = 4096
MEM_BYTES = 64          # what the program asks for: 16 u32 words
TOKEN = 0x5EED0000


@bpf.rodata
class cfg:
    cq_head_offset: u32
    cq_tail_offset: u32
    cqes_offset: u32
    cq_entries: u32 = 8


@bpf.bss
class st:
    steps: u32
    no_region: u32


@bpf.loop_step("region_ops")
def region_step(ring, lp) -> s32:
    """mem[0]: NOPs left to issue; mem[1]: issued; mem[2]: sum of completed tokens' low
    bits; mem[3]: CQEs seen; mem[4 + (n & 7)]: the n-th CQE's user_data low 16 bits."""
    st.steps += 1
    mem = ptr[u32](bpf_io_uring_get_region(ring, IOU_REGION_MEM, MEM_BYTES))
    if not mem:
        st.no_region += 1
        return IOU_LOOP_STOP
    sqes = ptr[Sqe](bpf_io_uring_get_region(ring, IOU_REGION_SQ, PAGE))
    hdr = bpf_io_uring_get_region(ring, IOU_REGION_CQ, PAGE)
    if not sqes or not hdr:
        return IOU_LOOP_STOP
    head_off = cfg.cq_head_offset
    tail_off = cfg.cq_tail_offset
    if head_off > PAGE - 4 or tail_off > PAGE - 4:
        return IOU_LOOP_STOP
    cq_head = ptr[u32](hdr + head_off)
    cq_tail = ptr[u32](hdr + tail_off)
    if mem[0] > 0:
        prep_nop(sqes)
        sqes.user_data = u64(TOKEN) + mem[1] * 3
        if bpf_io_uring_submit_sqes(ring, 1) != 1:
            return IOU_LOOP_STOP
        mem[0] -= 1
        mem[1] += 1
    head = cq_head[0]
    tail = cq_tail[0]
    for i in range(8):
        if head == tail:
            break
        off = cfg.cqes_offset + (head & (cfg.cq_entries - 1)) * 16
        if off > PAGE - 16:
            return IOU_LOOP_STOP
        cqe = ptr[Cqe](hdr + off)
        mem[2] += u32(cqe.user_data & 0xFFFF)
        mem[4 + (mem[3] & 7)] = u32(cqe.user_data & 0xFFFF)
        mem[3] += 1
        head += 1
    cq_head[0] = head
    if mem[0] == 0 and mem[3] == mem[1]:
        return IOU_LOOP_STOP
    # come straight back while nothing is in flight; else wait for the next CQE
    lp.cq_wait_idx = head + u32(mem[1] != mem[3])
    return IOU_LOOP_CONTINUE


def _run(mode: str, nops: int, region_bytes: int | None) -> dict:
    ring = loop.make_ring(8)
    try:
        cfg.cq_head_offset = ring.params.cq_off.head
        cfg.cq_tail_offset = ring.params.cq_off.tail
        cfg.cqes_offset = ring.params.cq_off.cqes
        st.steps = st.no_region = 0
        if region_bytes is not None:
            loop.register_region(ring, region_bytes)
            mem = loop.mem_region(ring)
            mem[:4] = nops.to_bytes(4, "little")
        else:
            assert loop.mem_region(ring) is None
        if mode == "app":
            ret = region_step.run_in_app(ring)
        else:
            with region_step.attach(ring, mode) as handle:
                ret = handle.enter()
        mem = loop.mem_region(ring)
        words = list(mem[:MEM_BYTES].cast("I")) if mem is not None else None
        return {"ret": ret, "globals": st.values(), "mem": words,
                "rest_untouched": mem is None or not any(mem[MEM_BYTES:])}
    finally:
        ring.close()


@pytest.mark.parametrize("nops", [1, 5, 20])
def test_region_program_same_observables_both_ways(nops):
    runs = {mode: _run(mode, nops, PAGE) for mode in ("app", "jit", "interp")}
    assert runs["app"] == runs["jit"] == runs["interp"]
    words = runs["app"]["mem"]
    assert runs["app"]["ret"] == 0 and runs["app"]["rest_untouched"]
    assert words[:4] == [0, nops, sum(i * 3 for i in range(nops)), nops]
    assert runs["app"]["globals"]["no_region"] == 0


def test_without_region_the_kfunc_gives_null_both_ways():
    runs = {mode: _run(mode, 3, None) for mode in ("app", "jit", "interp")}
    assert runs["app"] == runs["jit"] == runs["interp"]
    assert runs["app"]["globals"] == {"steps": 1, "no_region": 1}


def test_mem_region_is_the_registered_memory():
    ring = loop.make_ring(4)
    try:
        assert loop.mem_region(ring) is None
        region = loop.register_region(ring, 100)
        view = loop.mem_region(ring)
        assert len(view) == region.size == PAGE       # whole pages
        view[7] = 0xAB
        assert ctypes.c_uint8.from_address(region.addr + 7).value == 0xAB
    finally:
        ring.close()
