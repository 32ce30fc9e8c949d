"""liburing's ``io_uring_prep_*`` on raw SQE views and raw integers.

These fill an :class:`~.uapi.Sqe` exactly as liburing's inline helpers do and know nothing
about Python object lifetimes, so designs (and BPF-side code paths) can prepare SQEs in any
SQE-shaped memory. :class:`~.ring.Ring` wraps them, converting buffers and keeping them alive.
"""

from __future__ import annotations

import ctypes

from . import uapi as u

U64 = (1 << 64) - 1


def prep_rw(sqe: u.Sqe, op: int, fd: int, addr: int, length: int, offset: int) -> u.Sqe:
    """Fill the common fields (opcode, fd, addr, len, off) like liburing's ``io_uring_prep_rw``."""
    sqe.opcode = op
    sqe.fd = fd
    sqe.off = offset & U64
    sqe.addr = addr & U64
    sqe.len = length & 0xFFFFFFFF
    return sqe


def prep_nop(sqe: u.Sqe, inject: int | None = None) -> u.Sqe:
    """A NOP; ``inject`` makes it complete with that result (IORING_NOP_INJECT_RESULT)."""
    prep_rw(sqe, u.IORING_OP_NOP, -1, 0, 0, 0)
    if inject is not None:
        sqe.nop_flags = u.IORING_NOP_INJECT_RESULT
        sqe.len = inject & 0xFFFFFFFF
    return sqe


def prep_timeout(sqe: u.Sqe, ts_addr: int, count: int, flags: int) -> u.Sqe:
    """IORING_OP_TIMEOUT with the ``__kernel_timespec`` at ``ts_addr``, completing after ``count``
    CQEs or the time."""
    prep_rw(sqe, u.IORING_OP_TIMEOUT, -1, ts_addr, 1, count)
    sqe.timeout_flags = flags
    return sqe


def prep_link_timeout(sqe: u.Sqe, ts_addr: int, flags: int) -> u.Sqe:
    """IORING_OP_LINK_TIMEOUT for the previous linked request (timespec at ``ts_addr``)."""
    prep_rw(sqe, u.IORING_OP_LINK_TIMEOUT, -1, ts_addr, 1, 0)
    sqe.timeout_flags = flags
    return sqe


def prep_poll_add(sqe: u.Sqe, fd: int, poll_mask: int) -> u.Sqe:
    """IORING_OP_POLL_ADD on ``fd`` for the events in ``poll_mask``."""
    prep_rw(sqe, u.IORING_OP_POLL_ADD, fd, 0, 0, 0)
    sqe.poll32_events = poll_mask & 0xFFFFFFFF
    return sqe


def prep_msg_ring(sqe: u.Sqe, target_fd: int, res: int, data: int, flags: int = 0) -> u.Sqe:
    """IORING_OP_MSG_RING: post a CQE (``res``, user_data ``data``) on the ring ``target_fd``."""
    prep_rw(sqe, u.IORING_OP_MSG_RING, target_fd, u.IORING_MSG_DATA, res, data)
    sqe.msg_ring_flags = flags
    return sqe


def prep_cancel(sqe: u.Sqe, user_data: int, flags: int = 0) -> u.Sqe:
    """IORING_OP_ASYNC_CANCEL of the request with ``user_data``."""
    prep_rw(sqe, u.IORING_OP_ASYNC_CANCEL, -1, user_data, 0, 0)
    sqe.cancel_flags = flags
    return sqe


def prep_uring_cmd(sqe: u.Sqe, fd: int, cmd_op: int, cmd: bytes, sqe_size: int) -> u.Sqe:
    """IORING_OP_URING_CMD ``cmd_op`` on ``fd`` with ``cmd`` copied into the SQE (ValueError if it
    does not fit)."""
    room = sqe_size - u.SQE_CMD_OFFSET
    if len(cmd) > room:
        raise ValueError(f"uring_cmd payload is {len(cmd)} bytes; this ring's SQEs hold {room}"
                         " (use IORING_SETUP_SQE128 for 80)")
    prep_rw(sqe, u.IORING_OP_URING_CMD, fd, 0, 0, 0)
    sqe.cmd_op = cmd_op
    ctypes.memmove(ctypes.addressof(sqe) + u.SQE_CMD_OFFSET, cmd, len(cmd))
    return sqe
