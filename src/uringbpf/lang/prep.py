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
    """Fill ``sqe`` as a NOP (for programs that build SQEs)."""
    prep_rw(sqe, IORING_OP_NOP, -1, 0, 0, 0)


@inline
def prep_read(sqe: ptr[Sqe], fd: s32, addr: u64, length: u32, offset: u64) -> None:
    """Fill ``sqe`` as IORING_OP_READ of ``length`` bytes at ``offset`` into ``addr``."""
    prep_rw(sqe, IORING_OP_READ, fd, addr, length, offset)


@inline
def prep_write(sqe: ptr[Sqe], fd: s32, addr: u64, length: u32, offset: u64) -> None:
    """Fill ``sqe`` as IORING_OP_WRITE of ``length`` bytes from ``addr`` at ``offset``."""
    prep_rw(sqe, IORING_OP_WRITE, fd, addr, length, offset)


@inline
def prep_fsync(sqe: ptr[Sqe], fd: s32, fsync_flags: u32) -> None:
    """Fill ``sqe`` as IORING_OP_FSYNC."""
    prep_rw(sqe, _u.IORING_OP_FSYNC, fd, 0, 0, 0)
    sqe.fsync_flags = fsync_flags


@inline
def prep_timeout(sqe: ptr[Sqe], ts_addr: u64, count: u64, flags: u32) -> None:
    """``ts_addr``: user address of a ``struct __kernel_timespec``."""
    prep_rw(sqe, _u.IORING_OP_TIMEOUT, -1, ts_addr, 1, count)
    sqe.timeout_flags = flags


@inline
def prep_link_timeout(sqe: ptr[Sqe], ts_addr: u64, flags: u32) -> None:
    """Fill ``sqe`` as IORING_OP_LINK_TIMEOUT (timespec at ``ts_addr``)."""
    prep_rw(sqe, _u.IORING_OP_LINK_TIMEOUT, -1, ts_addr, 1, 0)
    sqe.timeout_flags = flags


@inline
def prep_poll_add(sqe: ptr[Sqe], fd: s32, poll_mask: u32) -> None:
    """Fill ``sqe`` as IORING_OP_POLL_ADD for ``poll_mask``."""
    prep_rw(sqe, _u.IORING_OP_POLL_ADD, fd, 0, 0, 0)
    sqe.poll32_events = poll_mask


@inline
def prep_msg_ring(sqe: ptr[Sqe], target_fd: s32, res: u32, data: u64, flags: u32) -> None:
    """Fill ``sqe`` as IORING_OP_MSG_RING to the ring ``target_fd``."""
    prep_rw(sqe, _u.IORING_OP_MSG_RING, target_fd, _u.IORING_MSG_DATA, res, data)
    sqe.msg_ring_flags = flags


@inline
def prep_cancel(sqe: ptr[Sqe], user_data: u64, flags: u32) -> None:
    """Fill ``sqe`` as IORING_OP_ASYNC_CANCEL of ``user_data``."""
    prep_rw(sqe, _u.IORING_OP_ASYNC_CANCEL, -1, user_data, 0, 0)
    sqe.cancel_flags = flags
