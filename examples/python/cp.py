"""Short-read-proof file copy driven by a Linux 7.1 loop_step: the loop design's cp example
(designs/loop/examples/cp.bpf.c) written in Python.

    python examples/python/cp.py SRC DST [--chunk 65536] [--depth 4] [--app]

Each completion decides the next request: a write is exactly as long as the read before
it, a short write is resumed, an error stops the loop and is left in ``st.error``.  With
``depth`` > 1 (seekable files) slot s copies chunks s, s + depth, ... at explicit offsets.
user_data = slot << 8 | op.
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import time

from uringbpf.lang import Module, array, inline, ptr, s32, u32, u64, volatile
from uringbpf.lang.loop import (IOU_LOOP_CONTINUE, IOU_LOOP_STOP, IOU_REGION_CQ, IOU_REGION_SQ,
                                bpf_io_uring_get_region, bpf_io_uring_submit_sqes)
from uringbpf.lang.prep import prep_read, prep_write
from uringbpf.uring.uapi import Cqe, Sqe

bpf = Module("cp")

UD_READ = 1
UD_WRITE = 2
UD_SLOT_SHIFT = 8
MAX_DEPTH = 8           # a power of two: slot indexes are masked with it
REGION_SIZE = 4096      # one page of the ring header is always there
CQE_SIZE = 16


@bpf.rodata
class cfg:
    cq_head_offset: u32
    cq_tail_offset: u32
    cqes_offset: u32
    cq_entries: u32 = 8
    sq_entries: u32 = 8
    in_fd: s32 = -1
    out_fd: s32 = -1
    buf_addr: u64           # user address of depth * chunk_size bytes
    chunk_size: u32 = 4096
    depth: u32 = 1          # 1..MAX_DEPTH chunks in flight
    in_start: u64           # input offset of byte 0 (depth > 1 only)


@bpf.bss
class st:
    copied: u64             # bytes written so far
    reads: u64
    writes: u64
    short_reads: u64
    short_writes: u64
    error: s32              # first negative result, 0 on success
    done: s32               # 1 once every slot read end of file
    pending: u32            # submitted requests whose CQE the program has not consumed
    started: u32
    inflight: u32
    # SQEs written in this step: reloaded from memory it is "0..7 once masked" for the
    # verifier, instead of an exact count on every path
    nsqe: volatile(u32)
    slot_pos: array(u64, MAX_DEPTH)     # output offset of the slot's chunk
    slot_fill: array(u32, MAX_DEPTH)    # bytes of the chunk read so far
    slot_wlo: array(u32, MAX_DEPTH)     # buffer range being written
    slot_whi: array(u32, MAX_DEPTH)


@inline
def queue_read(sqe: ptr[Sqe], s: u32, d: u32, chunk: u32, addr: u64) -> None:
    """Read the rest of slot s's chunk (all of it when the chunk is new)."""
    fill = st.slot_fill[s]
    off = u64(-1) if d == 1 else cfg.in_start + st.slot_pos[s] + fill
    st.reads += 1
    prep_read(sqe, cfg.in_fd, addr + fill, chunk - fill, off)
    sqe.user_data = (u64(s) << UD_SLOT_SHIFT) | UD_READ


@inline
def queue_write(sqe: ptr[Sqe], s: u32, addr: u64) -> None:
    lo = st.slot_wlo[s]
    st.writes += 1
    prep_write(sqe, cfg.out_fd, addr + lo, st.slot_whi[s] - lo, st.slot_pos[s] + lo)
    sqe.user_data = (u64(s) << UD_SLOT_SHIFT) | UD_WRITE


@bpf.loop_step("cp_ops")
def cp_loop_step(ring, lp) -> s32:
    sqes = ptr[Sqe](bpf_io_uring_get_region(ring, IOU_REGION_SQ, REGION_SIZE))
    hdr = bpf_io_uring_get_region(ring, IOU_REGION_CQ, REGION_SIZE)
    if not sqes or not hdr:
        st.error = -14      # EFAULT
        return IOU_LOOP_STOP
    head_off = cfg.cq_head_offset
    tail_off = cfg.cq_tail_offset
    cqes_base = cfg.cqes_offset
    mask = cfg.cq_entries - 1
    chunk = cfg.chunk_size
    base = cfg.buf_addr
    d = cfg.depth
    if (head_off > REGION_SIZE - 4 or tail_off > REGION_SIZE - 4 or d == 0 or d > MAX_DEPTH
            or d > cfg.sq_entries or d > cfg.cq_entries or chunk == 0):
        st.error = -22      # EINVAL
        return IOU_LOOP_STOP
    # a slot is done with its chunk once it holds fill_limit bytes; depth 1 moves on
    # after every read, so pipes get whole-chunk reads
    fill_limit = u32(1) if d == 1 else chunk
    stride_extra = u64(d - 1) * chunk
    cq_head = ptr[u32](hdr + head_off)
    cq_tail = ptr[u32](hdr + tail_off)
    head = cq_head[0]

    if st.started == 0:
        st.started = 1
        i = u32(0)
        while i < MAX_DEPTH and i < d:
            st.slot_pos[i] = u64(i) * chunk
            queue_read(sqes + i, i, d, chunk, base + u64(i) * chunk)
            i += 1
        st.nsqe = i
        st.inflight = i
    else:
        st.nsqe = 0
        tail = cq_tail[0]
        k = 0
        # at most one request per slot is in flight: MAX_DEPTH bounds the CQEs
        while k < MAX_DEPTH and head != tail:
            k += 1
            off = cqes_base + (head & mask) * CQE_SIZE
            if off > REGION_SIZE - CQE_SIZE:
                st.error = -22
                return IOU_LOOP_STOP
            cqe = ptr[Cqe](hdr + off)
            res = cqe.res
            ud = cqe.user_data
            head += 1
            st.pending -= 1
            if res < 0:
                st.error = res
                cq_head[0] = head
                return IOU_LOOP_STOP
            s = u32(ud >> UD_SLOT_SHIFT) & (MAX_DEPTH - 1)
            addr = base + u64(s) * chunk
            sqe = sqes + (st.nsqe & (MAX_DEPTH - 1))
            if (ud & 0xFF) == UD_READ:
                fill = st.slot_fill[s]
                if res == 0:            # end of file: this slot is done
                    st.inflight -= 1
                    continue
                if u32(res) < chunk - fill:
                    st.short_reads += 1
                st.slot_wlo[s] = fill
                st.slot_whi[s] = fill + u32(res)
                st.slot_fill[s] = fill + u32(res)
                queue_write(sqe, s, addr)
            else:
                if res == 0:
                    st.error = -5       # EIO: a write that makes no progress
                    cq_head[0] = head
                    return IOU_LOOP_STOP
                st.slot_wlo[s] += u32(res)
                st.copied += u64(res)
                if st.slot_wlo[s] < st.slot_whi[s]:
                    st.short_writes += 1
                    queue_write(sqe, s, addr)
                else:
                    # a finished chunk: the slot moves on to its next one, depth chunks on
                    if st.slot_fill[s] >= fill_limit:
                        st.slot_pos[s] += u64(st.slot_fill[s]) + stride_extra
                        st.slot_fill[s] = 0
                    queue_read(sqe, s, d, chunk, addr)
            st.nsqe = st.nsqe + 1
        cq_head[0] = head
    n = st.nsqe
    if n:
        got = bpf_io_uring_submit_sqes(ring, n)
        if got > 0:
            st.pending += u32(got)
        if got != s32(n):
            st.error = -11      # EAGAIN: the SQEs were not all consumed
            return IOU_LOOP_STOP
    if st.inflight == 0:
        st.done = 1
        return IOU_LOOP_STOP
    # completions already waiting: come straight back; else sleep until the next one
    if head != cq_tail[0]:
        lp.cq_wait_idx = head
    else:
        lp.cq_wait_idx = head + 1
    return IOU_LOOP_CONTINUE


def setup(ring, in_fd: int, out_fd: int, buf_addr: int, chunk: int, depth: int,
          in_start: int = 0) -> None:
    cfg.cq_head_offset = ring.params.cq_off.head
    cfg.cq_tail_offset = ring.params.cq_off.tail
    cfg.cqes_offset = ring.params.cq_off.cqes
    cfg.cq_entries = ring.params.cq_entries
    cfg.sq_entries = ring.params.sq_entries
    cfg.in_fd, cfg.out_fd = in_fd, out_fd
    cfg.buf_addr, cfg.chunk_size, cfg.depth, cfg.in_start = buf_addr, chunk, depth, in_start
    for name in st._fields:
        if name.startswith("slot_"):
            for i in range(MAX_DEPTH):
                getattr(st, name)[i] = 0
        else:
            setattr(st, name, 0)


def copy_fd(in_fd: int, out_fd: int, chunk: int = 64 * 1024, depth: int = 1, app: bool = False,
            engine: str = "jit") -> dict:
    """Copy ``in_fd`` to ``out_fd`` (depth > 1: both seekable, read from offset 0); returns
    the program's globals, the enter's result and its seconds."""
    from uringbpf.designs import loop
    ring = loop.make_ring(max(8, depth))
    buf = mmap.mmap(-1, chunk * depth)
    try:
        setup(ring, in_fd, out_fd, ctypes.addressof(ctypes.c_char.from_buffer(buf)), chunk, depth)
        if app:
            start = time.perf_counter()
            ret = cp_loop_step.run_in_app(ring)
            seconds = time.perf_counter() - start
        else:
            with cp_loop_step.attach(ring, engine) as handle:
                start = time.perf_counter()
                ret = handle.enter()
                seconds = time.perf_counter() - start
        result = dict(st.values(), ret=ret, seconds=seconds)
        # after an error stop, requests may still run on our buffer: wait for them
        if st.pending:
            ring.raw_enter(0, int(st.pending), 1)
        return result
    finally:
        ring.close()
        buf.close()


def copy(src: str, dst: str, chunk: int = 64 * 1024, depth: int = 1, app: bool = False,
         engine: str = "jit") -> dict:
    """Copy the file SRC to DST (see :func:`copy_fd`)."""
    in_fd = os.open(src, os.O_RDONLY)
    out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        return copy_fd(in_fd, out_fd, chunk, depth, app, engine)
    finally:
        os.close(in_fd)
        os.close(out_fd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", nargs="?")
    ap.add_argument("dst", nargs="?")
    ap.add_argument("--chunk", type=int, default=64 * 1024)
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--app", action="store_true")
    ap.add_argument("--engine", choices=("jit", "interp"), default="jit")
    ap.add_argument("--emit-obj", metavar="PATH", help="write the compiled .bpf.o and exit")
    args = ap.parse_args()
    if args.emit_obj:
        print(bpf.emit_obj(args.emit_obj))
        return
    if not args.src or not args.dst:
        ap.error("SRC and DST are required")
    r = copy(args.src, args.dst, args.chunk, args.depth, args.app, args.engine)
    print(f"copied {int(r['copied'])} bytes in {int(r['reads'])} reads ({int(r['short_reads'])} "
          f"short), error={int(r['error'])} ({r['seconds'] * 1e3:.1f} ms, "
          f"{'app' if args.app else args.engine})")


if __name__ == "__main__":
    main()
