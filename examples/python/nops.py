"""N NOPs with at most K in flight, from one io_uring_enter: the loop design's nops
example (designs/loop/examples/nops.bpf.c) written in Python.

    python examples/python/nops.py [--nops 100000] [--k 8] [--app] [--emit-obj nops.bpf.o]

Compiled (default), the step runs inside the ring's completion loop (JIT); with --app the
same function runs as Python, driving the ring through uringbpf.Ring.
"""

from __future__ import annotations

import argparse
import time

from uringbpf.lang import Module, ptr, s32, u32
from uringbpf.lang.loop import (IOU_LOOP_CONTINUE, IOU_LOOP_STOP, IOU_REGION_CQ, IOU_REGION_SQ,
                                bpf_io_uring_get_region, bpf_io_uring_submit_sqes)
from uringbpf.lang.prep import prep_nop
from uringbpf.uring.uapi import Cqe, Sqe

bpf = Module("nops")

NOP_TOKEN = 0xABBA1741
MAX_BATCH = 64          # SQEs per step at most (one page of SQEs)
REGION_SIZE = 4096      # io_uring regions are whole pages: one page always exists
CQE_SIZE = 16


@bpf.rodata
class cfg:
    """Set by the application before load (the ring's offsets and sizes)."""
    cq_head_offset: u32
    cq_tail_offset: u32
    cqes_offset: u32
    cq_entries: u32 = 8
    sq_entries: u32 = 8
    max_inflight: u32 = 8


@bpf.bss
class st:
    reqs_to_run: s32        # NOPs still to complete: 0 when the run succeeded
    reqs_inflight: u32
    bad_cqes: u32           # CQEs that did not carry NOP_TOKEN


@bpf.function
def batch_size() -> u32:
    room = s32(cfg.max_inflight) - s32(st.reqs_inflight)
    left = st.reqs_to_run - s32(st.reqs_inflight)
    if room > left:
        room = left
    if room > s32(cfg.sq_entries):
        room = s32(cfg.sq_entries)
    if room > MAX_BATCH:
        room = s32(MAX_BATCH)
    if room > 0:
        return u32(room)
    return u32(0)


@bpf.loop_step("nops_ops")
def nops_loop_step(ring, lp) -> s32:
    sqes = ptr[Sqe](bpf_io_uring_get_region(ring, IOU_REGION_SQ, REGION_SIZE))
    hdr = bpf_io_uring_get_region(ring, IOU_REGION_CQ, REGION_SIZE)
    if not sqes or not hdr:
        return IOU_LOOP_STOP
    head_off = cfg.cq_head_offset       # read each .rodata value once
    tail_off = cfg.cq_tail_offset
    cqes_base = cfg.cqes_offset
    mask = cfg.cq_entries - 1
    if head_off > REGION_SIZE - 4 or tail_off > REGION_SIZE - 4:
        return IOU_LOOP_STOP
    cq_head = ptr[u32](hdr + head_off)
    cq_tail = ptr[u32](hdr + tail_off)

    n = batch_size()
    if n:
        for i in range(MAX_BATCH):
            if i >= n:
                break
            sqe = sqes + i
            prep_nop(sqe)
            sqe.user_data = NOP_TOKEN
        if bpf_io_uring_submit_sqes(ring, n) != s32(n):
            return IOU_LOOP_STOP
        st.reqs_inflight += n

    head = cq_head[0]
    tail = cq_tail[0]
    seen = u32(0)
    for i in range(MAX_BATCH):
        if head == tail:
            break
        off = cqes_base + (head & mask) * CQE_SIZE
        if off > REGION_SIZE - CQE_SIZE:
            return IOU_LOOP_STOP
        cqe = ptr[Cqe](hdr + off)
        if cqe.user_data != NOP_TOKEN:
            st.bad_cqes += 1
            cq_head[0] = head
            return IOU_LOOP_STOP
        head += 1
        seen += 1
    cq_head[0] = head
    st.reqs_inflight -= seen
    st.reqs_to_run -= s32(seen)
    if st.reqs_to_run <= 0 and st.reqs_inflight == 0:
        return IOU_LOOP_STOP
    # CQEs still pending: come straight back; else sleep until all in flight are done
    if head != cq_tail[0]:
        lp.cq_wait_idx = head
    else:
        lp.cq_wait_idx = head + st.reqs_inflight
    return IOU_LOOP_CONTINUE


def setup(ring, nops: int, k: int) -> None:
    """Point the program at ``ring`` (both runs read these values)."""
    cfg.cq_head_offset = ring.params.cq_off.head
    cfg.cq_tail_offset = ring.params.cq_off.tail
    cfg.cqes_offset = ring.params.cq_off.cqes
    cfg.cq_entries = cfg.sq_entries = cfg.max_inflight = k
    st.reqs_to_run = nops
    st.reqs_inflight = 0
    st.bad_cqes = 0


def run(nops: int, k: int = 8, app: bool = False, engine: str = "jit") -> tuple[int, float]:
    """Returns (NOPs left undone, seconds of the one enter)."""
    from uringbpf.designs import loop
    ring = loop.make_ring(k)
    try:
        setup(ring, nops, k)
        if app:
            start = time.perf_counter()
            ret = nops_loop_step.run_in_app(ring)
            elapsed = time.perf_counter() - start
        else:
            with nops_loop_step.attach(ring, engine) as handle:
                start = time.perf_counter()
                ret = handle.enter()
                elapsed = time.perf_counter() - start
        if ret:
            raise OSError(-ret, "loop run failed")
        return int(st.reqs_to_run), elapsed
    finally:
        ring.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nops", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--app", action="store_true", help="run the step as Python in the application")
    ap.add_argument("--engine", choices=("jit", "interp"), default="jit")
    ap.add_argument("--emit-obj", metavar="PATH", help="write the compiled .bpf.o and exit")
    args = ap.parse_args()
    if args.emit_obj:
        print(bpf.emit_obj(args.emit_obj))
        return
    left, secs = run(args.nops, args.k, args.app, args.engine)
    done = args.nops - left
    print(f"{done} NOPs in {secs * 1e3:.1f} ms ({done / secs / 1e6:.2f} M/s, "
          f"{'app' if args.app else args.engine}, left={left})")


if __name__ == "__main__":
    main()
