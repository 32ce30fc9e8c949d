"""Helpers shared by the loop tests: rings, and loop_step programs written in Python.

``make_ring`` uses :class:`uringbpf.Ring` (the ring layer's contract: fd, params,
ring addresses, set_enter_hook, emulated SQ_REWIND).  A Python loop_step is a plain
callable ``step(args_addr) -> int`` that does what a BPF program does: it reads
``args = {ctx, params}``, calls the kfuncs' C implementations and touches ring memory
directly.  They exercise the native driver independently of the BPF engines.
"""

from __future__ import annotations

import ctypes

from uringbpf.designs import loop
from uringbpf.uring import uapi

RING_FLAGS = (uapi.IORING_SETUP_SINGLE_ISSUER | uapi.IORING_SETUP_DEFER_TASKRUN
              | uapi.IORING_SETUP_NO_SQARRAY | uapi.IORING_SETUP_CQSIZE
              | uapi.IORING_SETUP_SQ_REWIND)
REQ_TOKEN = 0xABBA1741


def make_ring(entries=8, cq_entries=8, flags=RING_FLAGS):
    from uringbpf import Ring
    return Ring(entries, cq_entries=cq_entries, flags=flags)


def u32(addr):
    return ctypes.c_uint32.from_address(addr)


class PyNops:
    """The nops loop_step in Python: ``total`` NOPs, at most ``cap`` in flight."""

    def __init__(self, ring, total, cap=8):
        self.p = ring.params
        self.total, self.cap = total, cap
        self.to_run, self.inflight = total, 0
        self.bad = 0
        self.calls = 0

    def __call__(self, args_addr):
        self.calls += 1
        lib = loop.lib()
        ctx = ctypes.c_uint64.from_address(args_addr).value
        params = ctypes.c_uint64.from_address(args_addr + 8).value
        p = self.p
        sq_size = p.sq_entries * 64
        cq_size = p.cq_off.cqes + p.cq_entries * 16
        sqes = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_SQ, sq_size, 0, 0)
        rings = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_CQ, cq_size, 0, 0)
        if not sqes or not rings:
            return loop.IOU_LOOP_STOP
        n = min(self.cap - self.inflight, self.to_run - self.inflight)
        if n > 0:
            for i in range(n):
                ctypes.memset(sqes + 64 * i, 0, 64)
                ctypes.c_uint64.from_address(sqes + 64 * i + 32).value = REQ_TOKEN
            ret = ctypes.c_int64(lib.uringbpf_kf_submit_sqes(ctx, n, 0, 0, 0)).value
            if ret != n:
                return loop.IOU_LOOP_STOP
            self.inflight += n
        head, tail = u32(rings + p.cq_off.head), u32(rings + p.cq_off.tail)
        nr = min(tail.value - head.value, self.cap)
        for _ in range(nr):
            cqe = rings + p.cq_off.cqes + 16 * (head.value & (p.cq_entries - 1))
            if ctypes.c_uint64.from_address(cqe).value != REQ_TOKEN:
                self.bad += 1
                return loop.IOU_LOOP_STOP
            head.value += 1
        self.inflight -= nr
        self.to_run -= nr
        if self.to_run <= 0 and not self.inflight:
            return loop.IOU_LOOP_STOP
        wait = 0 if tail.value != head.value else self.inflight
        u32(params).value = head.value + wait
        return loop.IOU_LOOP_CONTINUE


# A nops loop_step hand-written in BPF assembly (kernel dialect): state lives in the
# IOU_REGION_MEM parameter region ([0] = reqs_to_run, [4] = inflight) so no maps are
# needed.  kfunc#0 = bpf_io_uring_get_region, kfunc#1 = bpf_io_uring_submit_sqes.
NOPS_ASM = """
    r6 = *(u64 *)(r1 + 0)
    r7 = *(u64 *)(r1 + 8)
    r1 = r6
    r2 = 2
    r3 = {sq_size}
    call kfunc#0
    if r0 == 0 goto stop
    r8 = r0
    r1 = r6
    r2 = 1
    r3 = {cq_size}
    call kfunc#0
    if r0 == 0 goto stop
    r9 = r0
    r1 = r6
    r2 = 0
    r3 = 8
    call kfunc#0
    if r0 == 0 goto stop
    *(u64 *)(r10 - 8) = r0
    r2 = *(u32 *)(r0 + 0)
    r3 = *(u32 *)(r0 + 4)
    r4 = {cap}
    r4 -= r3
    r5 = r2
    r5 -= r3
    if r4 s<= r5 goto +1
    r4 = r5
    if r4 s<= 0 goto reap
    *(u64 *)(r10 - 16) = r4
    r1 = 0
fill:
    r2 = r1
    r2 <<= 6
    r2 += r8
    r3 = 0
    *(u64 *)(r2 + 0) = r3
    *(u64 *)(r2 + 8) = r3
    *(u64 *)(r2 + 16) = r3
    *(u64 *)(r2 + 24) = r3
    *(u64 *)(r2 + 40) = r3
    *(u64 *)(r2 + 48) = r3
    *(u64 *)(r2 + 56) = r3
    r3 = {token} ll
    *(u64 *)(r2 + 32) = r3
    r1 += 1
    if r1 < r4 goto fill
    r1 = r6
    r2 = r4
    call kfunc#1
    r4 = *(u64 *)(r10 - 16)
    if w0 != w4 goto stop
    r1 = *(u64 *)(r10 - 8)
    r3 = *(u32 *)(r1 + 4)
    r3 += r4
    *(u32 *)(r1 + 4) = r3
reap:
    r1 = *(u32 *)(r9 + {head})
    r2 = *(u32 *)(r9 + {tail})
    r3 = 0
next:
    if w1 == w2 goto done
    r4 = r1
    r4 &= {mask}
    r4 <<= 4
    r4 += r9
    r5 = *(u64 *)(r4 + {cqes})
    r0 = {token} ll
    if r5 != r0 goto stop
    r1 += 1
    r3 += 1
    goto next
done:
    *(u32 *)(r9 + {head}) = r1
    r4 = *(u64 *)(r10 - 8)
    r5 = *(u32 *)(r4 + 0)
    r5 -= r3
    *(u32 *)(r4 + 0) = r5
    r0 = *(u32 *)(r4 + 4)
    r0 -= r3
    *(u32 *)(r4 + 4) = r0
    if w0 != 0 goto cont
    if w5 s<= 0 goto stop
cont:
    w1 += w0
    *(u32 *)(r7 + 0) = r1
    r0 = 0
    exit
stop:
    r0 = 1
    exit
"""


def nops_asm_program(ring, cap=8):
    """The NOPS_ASM loop_step as an isa.Program for ``ring``."""
    from uringbpf.bpf import asm, isa
    p = ring.params
    text = NOPS_ASM.format(sq_size=p.sq_entries * 64, cq_size=p.cq_off.cqes + p.cq_entries * 16,
                           cap=cap, token=REQ_TOKEN, head=p.cq_off.head, tail=p.cq_off.tail,
                           cqes=p.cq_off.cqes, mask=p.cq_entries - 1)
    return isa.Program("nops_asm", asm.assemble(text), section="struct_ops.s/nops_asm",
                       kfuncs=[loop.KFUNC_GET_REGION, loop.KFUNC_SUBMIT_SQES], sleepable=True)
