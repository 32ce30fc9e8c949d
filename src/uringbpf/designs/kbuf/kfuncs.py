"""kfuncs through which programs of any design read/write kernel buffers."""

from __future__ import annotations

import ctypes
import errno

from ...bpf.helpers import Arg
from ...bpf.memory import BpfMemoryError
from ...bpf.platform import Platform
from .table import _by_fd
from .uapi import KBUF_DIR_DEST, KBUF_DIR_SOURCE


# --- kfuncs: programs of any design read/write kernel buffers by (ring fd, index, offset) ----
def _kbuf_copy_kfunc(rt, ring_fd: int, index: int, offset: int, mem: int, length: int,
                     to_buffer: bool) -> int:
    """The shared body of bpf_kbuf_read/bpf_kbuf_write: import_fixed's checks, then copy.

    ``mem`` must be memory the program may touch (checked against ``rt.mem``, which holds
    the interpreter's stack and the object's maps); the buffer side is checked against the
    table (range and direction, -EFAULT), like a KFIXED descriptor of IORING_OP_BPF.
    """
    table = _by_fd.get(int(ring_fd) & 0xFFFFFFFF)
    if table is None:
        return -errno.EBADF
    if length > 1 << 24:
        return -errno.E2BIG
    try:
        rt.mem.check(mem, length, not to_buffer)
    except BpfMemoryError:
        return -errno.EFAULT
    ddir = KBUF_DIR_DEST if to_buffer else KBUF_DIR_SOURCE
    node, addr = table.import_fixed(index & 0xFFFF if index < 1 << 16 else 1 << 16,
                                    offset, length, ddir)
    if node is None:
        return addr
    try:
        if to_buffer:
            ctypes.memmove(addr, mem, length)
        else:
            ctypes.memmove(mem, addr, length)
    finally:
        table.put(node)
    return 0


def add_kfuncs(platform: Platform) -> None:
    """Add ``bpf_kbuf_read`` / ``bpf_kbuf_write`` to ``platform``."""
    A = Arg

    @platform.kfunc("bpf_kbuf_read", (A.SCALAR, A.SCALAR, A.SCALAR, A.UNINIT_MEM, A.CONST_SIZE))
    def bpf_kbuf_read(rt, ring_fd, index, offset, dst, length):
        """int bpf_kbuf_read(u32 ring_fd, u32 buf_index, u64 offset, void *dst, u32 len):
        copy from a registered buffer (must be a source: a WRITE request's pages)."""
        return _kbuf_copy_kfunc(rt, ring_fd, index, offset, dst, length, False)

    @platform.kfunc("bpf_kbuf_write", (A.SCALAR, A.SCALAR, A.SCALAR, A.MEM, A.CONST_SIZE))
    def bpf_kbuf_write(rt, ring_fd, index, offset, src, length):
        """int bpf_kbuf_write(u32 ring_fd, u32 buf_index, u64 offset, const void *src, u32 len):
        copy into a registered buffer (must be a destination: a READ request's pages)."""
        return _kbuf_copy_kfunc(rt, ring_fd, index, offset, src, length, True)

