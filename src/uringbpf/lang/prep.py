"""SQE preparation for programs, mirroring :mod:`uringbpf.uring.prep` (liburing's
``io_uring_prep_*``), written in the language itself: inlined into compiled programs,
plain Python calls in the application run."""

from __future__ import annotations

from ..uring import uapi as _u
from ..uring.uapi import Sqe
from .appmode import zero
from .module import inline
from .types import ptr, s32, u8, u32, u64

IORING_OP_NOP = _u.IORING_OP_NOP
IORING_OP_READ = _u.IORING_OP_READ
IORING_OP_WRITE = _u.IORING_OP_WRITE


@inline
def prep_rw(sqe: ptr[Sqe], op: u8, fd: s32, addr: u64, length: u32, offset: u64) -> None:
    """Clear the SQE and set the fields every read/write-style request has."""
    zero(sqe)
    sqe.opcode = op
    sqe.fd = fd
    sqe.off = offset
    sqe.addr = addr
    sqe.len = length


@inline
def prep_nop(sqe: ptr[Sqe]) -> None:
    prep_rw(sqe, IORING_OP_NOP, -1, 0, 0, 0)


@inline
def prep_read(sqe: ptr[Sqe], fd: s32, addr: u64, length: u32, offset: u64) -> None:
    prep_rw(sqe, IORING_OP_READ, fd, addr, length, offset)


@inline
def prep_write(sqe: ptr[Sqe], fd: s32, addr: u64, length: u32, offset: u64) -> None:
    prep_rw(sqe, IORING_OP_WRITE, fd, addr, length, offset)
