"""``copy_fd``: a whole file/pipe/socket copy in one ``io_uring_enter`` (cp.bpf.c, cksum.bpf.c)."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import stat
import time
from dataclasses import dataclass

from ...uring import uapi
from ...uring.memregion import register_region
from .example import make_ring, open_example

@dataclass
class CopyResult:
    """What :func:`copy_fd` did: bytes copied, error (-errno or 0), done, and counters."""
    copied: int
    error: int
    done: bool
    fnv1a: int | None = None
    reads: int | None = None
    short_reads: int | None = None
    engine: str = ""
    seconds: float = 0.0      # time spent in the one io_uring_enter (the copy itself)
    depth: int = 1            # chunks in flight the cp program ran with (after clamping)
    writes: int | None = None
    short_writes: int | None = None


MAX_COPY_DEPTH = 8   # cp.bpf.c's MAX_DEPTH


def _seekable_offset(fd: int) -> int | None:
    """The current offset of a regular file or block device, else None (pipe, socket, tty).

    Only such files may be read or written at explicit offsets by several requests at
    once; a pipe or socket has no offsets (lseek fails with ESPIPE): depth 1 for those.
    """
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
            return None
        return os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return None


def _drain(ring, pending: int) -> None:
    """Wait for the CQEs of requests cp.bpf.c left running when it stopped on an error.

    Other slots' reads and writes may still be in io-wq workers, using the copy buffer:
    closing the ring only starts their cancellation (the kernel finishes it in the
    background), so the buffer may be unmapped only after their CQEs are posted.
    """
    while pending > 0:
        ret = ring.enter(0, pending, uapi.IORING_ENTER_GETEVENTS)
        if ret == -errno.EINTR:
            continue
        if ret < 0:
            raise OSError(-ret, f"waiting for the copy's last requests: {os.strerror(-ret)}")
        return


def copy_fd(in_fd: int, out_fd: int, *, checksum: bool = False, engine: str = "jit",
            chunk: int = 4096, depth: int = 1, verify: bool = True,
            executor: str = "emulated") -> CopyResult:
    """Copy ``in_fd`` (file, pipe or socket) to ``out_fd`` with the cp or cksum example.

    One ``io_uring_enter`` on a fresh loop ring does the whole copy.  With ``checksum``
    the buffer is the ring's parameter region and the program FNV-1a hashes the data.

    ``depth`` (1..8, cp only) is how many chunks the program keeps in flight.  Above 1
    the input is read at explicit offsets, from its current offset on, and chunks are
    written out of order, which needs a seekable input AND output: when either is a pipe,
    socket or tty ``depth`` is clamped to 1 (reads at the file position, short reads
    written as they come, in order).  ``CopyResult.depth`` says what ran.  After a deeper
    copy the input's offset is moved past what was copied, as depth 1's reads at offset -1
    do.  Output is written from the output's position on and the position ends after the
    copy, as with cp: data already in the output stays (issue #13 item 13).

    ``executor`` (see :func:`open_example`): ``"kernel"`` runs the program in the running
    kernel's loop (Linux >= 7.1); ``CopyResult.engine`` is then ``"kernel"``.
    """
    if not isinstance(depth, int) or not 1 <= depth <= MAX_COPY_DEPTH:
        raise ValueError(f"depth must be an int in 1..{MAX_COPY_DEPTH}, got {depth!r}")
    if not isinstance(chunk, int) or chunk <= 0 or chunk > 1 << 30:
        raise ValueError(f"chunk must be an int in 1..{1 << 30}, got {chunk!r}")
    if checksum and depth != 1:
        raise ValueError("the cksum example hashes a stream in order: depth must be 1")
    start_off = None
    out_off = _seekable_offset(out_fd)     # None: a pipe or socket (offsets are ignored)
    if depth > 1:
        start_off = _seekable_offset(in_fd)
        if start_off is None or out_off is None:
            depth, start_off = 1, None
    ring = make_ring(max(8, depth))
    buf = None
    try:
        if checksum:
            region = register_region(ring, 4096)
            name, extra = "cksum", {"buf_addr": region.addr}
        else:
            # one buffer per slot, contiguous: slot s uses [s * chunk, (s + 1) * chunk)
            buf = mmap.mmap(-1, chunk * depth)
            name = "cp"
            extra = {"buf_addr": ctypes.addressof(ctypes.c_char.from_buffer(buf)),
                     "chunk_size": chunk, "depth": depth, "in_start": start_off or 0,
                     "out_start": out_off or 0}
        obj = open_example(name, ring, engine=engine, verify=verify, executor=executor,
                           in_fd=in_fd, out_fd=out_fd, **extra)
        try:
            link = obj.attach_struct_ops(f"{name}_ops")
            start = time.perf_counter()
            ret = ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS)
            seconds = time.perf_counter() - start
            if ret < 0:
                raise OSError(-ret, f"loop run failed: {os.strerror(-ret)}")
            bss = obj.bss
            result = CopyResult(int(bss.copied), int(bss.error), bool(bss.done),
                                engine=link.engine, seconds=seconds)
            if checksum:
                result.fnv1a = int(obj.data.fnv1a) & 0xFFFFFFFF
            else:
                result.reads, result.short_reads = int(bss.reads), int(bss.short_reads)
                result.writes, result.short_writes = int(bss.writes), int(bss.short_writes)
                result.depth = depth
            link.destroy()
            if not checksum:
                _drain(ring, int(bss.pending))
            if start_off is not None and result.done:
                os.lseek(in_fd, start_off + result.copied, os.SEEK_SET)
            if out_off is not None and (result.done or depth == 1):
                # writes at explicit offsets leave the position alone: move it past what
                # was written, as write(2) and cp do (depth 1 writes contiguously)
                os.lseek(out_fd, out_off + result.copied, os.SEEK_SET)
            return result
        finally:
            obj.close()
    finally:
        # requests an error left running were waited for (_drain) before this point
        ring.close()
        if buf is not None:
            buf.close()


def fnv1a32(data: bytes, h: int = 2166136261) -> int:
    """The checksum cksum.bpf.c computes, in Python (for checking it)."""
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h
