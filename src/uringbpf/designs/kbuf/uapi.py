"""ublk's UAPI (include/uapi/linux/ublk_cmd.h) as far as the kbuf design uses it, and SQE
helpers for servers: commands, flags, ``struct ublksrv_io_cmd`` / ``ublksrv_io_desc``, the
AUTO_BUF_REG packing, and the fixed-buffer preps whose ``addr`` is an offset."""

from __future__ import annotations

import errno
from ctypes import Structure, c_int32, c_uint16, c_uint32, c_uint64, sizeof

from ...uring import prep, uapi as u

# --- ublk UAPI (include/uapi/linux/ublk_cmd.h) -------------------------------------------


def _iowr(nr: int, size: int = 16) -> int:
    """_IOWR('u', nr, struct ublksrv_io_cmd)."""
    return (3 << 30) | (size << 16) | (ord("u") << 8) | nr


UBLK_U_IO_FETCH_REQ = _iowr(0x20)
UBLK_U_IO_COMMIT_AND_FETCH_REQ = _iowr(0x21)
UBLK_U_IO_NEED_GET_DATA = _iowr(0x22)
UBLK_U_IO_REGISTER_IO_BUF = _iowr(0x23)
UBLK_U_IO_UNREGISTER_IO_BUF = _iowr(0x24)
assert UBLK_U_IO_REGISTER_IO_BUF == 0xC0107523 and UBLK_U_IO_UNREGISTER_IO_BUF == 0xC0107524

UBLK_F_SUPPORT_ZERO_COPY = 1 << 0
UBLK_F_AUTO_BUF_REG = 1 << 11

UBLK_IO_OP_READ, UBLK_IO_OP_WRITE, UBLK_IO_OP_FLUSH, UBLK_IO_OP_DISCARD = 0, 1, 2, 3
UBLK_IO_OP_WRITE_SAME, UBLK_IO_OP_WRITE_ZEROES = 4, 5
UBLK_IO_F_FUA = 1 << 13
UBLK_IO_F_NEED_REG_BUF = 1 << 17
UBLK_AUTO_BUF_REG_FALLBACK = 1 << 0
UBLK_AUTO_BUF_REG_F_MASK = UBLK_AUTO_BUF_REG_FALLBACK
UBLK_IO_RES_OK = 0
UBLK_IO_RES_ABORT = -errno.ENODEV
SECTOR = 512

#: Direction bits of a buffer-table node, as the kernel's ``imu->dir``: ``1 << ITER_DEST`` (the
#: buffer may be written: READ requests) and ``1 << ITER_SOURCE`` (may be read: WRITE requests).
KBUF_DIR_DEST = 1 << 0
KBUF_DIR_SOURCE = 1 << 1
KBUF_DIR_BOTH = KBUF_DIR_DEST | KBUF_DIR_SOURCE
IORING_MAX_REG_BUFFERS = 1 << 14


class UblksrvIoCmd(Structure):
    """``struct ublksrv_io_cmd``: the 16-byte command in ``sqe->cmd``."""

    _fields_ = [("q_id", c_uint16), ("tag", c_uint16), ("result", c_int32), ("addr", c_uint64)]


class UblksrvIoDesc(Structure):
    """``struct ublksrv_io_desc``: per-tag descriptor the driver fills before the fetch CQE."""

    _fields_ = [("op_flags", c_uint32), ("nr_sectors", c_uint32), ("start_sector", c_uint64),
                ("addr", c_uint64)]


assert sizeof(UblksrvIoCmd) == 16 and sizeof(UblksrvIoDesc) == 24


def auto_buf_reg_to_sqe_addr(index: int, flags: int = 0, reserved0: int = 0,
                             reserved1: int = 0) -> int:
    """Pack ``struct ublk_auto_buf_reg`` into ``sqe->addr`` (ublk_auto_buf_reg_to_sqe_addr)."""
    return ((index & 0xFFFF) | (flags & 0xFF) << 16 | (reserved0 & 0xFF) << 24
            | (reserved1 & 0xFFFFFFFF) << 32)


# --- SQE helpers for servers ----------------------------------------------------------------
def prep_ublk_cmd(sqe: u.Sqe, char_fd: int, cmd_op: int, tag: int, *, result: int = 0,
                  addr: int = 0, q_id: int = 0, sqe_addr: int = 0) -> u.Sqe:
    """A ublk io command: URING_CMD on ``char_fd`` with ``struct ublksrv_io_cmd`` in ``cmd``.

    ``addr`` is ``ublksrv_io_cmd.addr`` (server buffer for FETCH in copy mode, buffer index
    for REGISTER/UNREGISTER); ``sqe_addr`` is ``sqe->addr`` (AUTO_BUF_REG data).
    """
    cmd = UblksrvIoCmd(q_id=q_id, tag=tag, result=result, addr=addr)
    prep.prep_uring_cmd(sqe, char_fd, cmd_op, bytes(cmd), 64)
    sqe.addr = sqe_addr
    return sqe


def prep_read_fixed(sqe: u.Sqe, fd: int, offset_in_buf: int, length: int, file_offset: int,
                    buf_index: int) -> u.Sqe:
    """READ_FIXED whose ``addr`` is an offset into registered buffer ``buf_index``."""
    prep.prep_rw(sqe, u.IORING_OP_READ_FIXED, fd, offset_in_buf, length, file_offset)
    sqe.buf_index = buf_index
    return sqe


def prep_write_fixed(sqe: u.Sqe, fd: int, offset_in_buf: int, length: int, file_offset: int,
                     buf_index: int) -> u.Sqe:
    """WRITE_FIXED whose ``addr`` is an offset into registered buffer ``buf_index``."""
    prep.prep_rw(sqe, u.IORING_OP_WRITE_FIXED, fd, offset_in_buf, length, file_offset)
    sqe.buf_index = buf_index
    return sqe


def prep_rwv_fixed(sqe: u.Sqe, write: bool, fd: int, iovecs_addr: int, nr: int,
                   file_offset: int, buf_index: int) -> u.Sqe:
    """READV_FIXED / WRITEV_FIXED: ``iov_base`` values are offsets into buffer ``buf_index``."""
    op = u.IORING_OP_WRITEV_FIXED if write else u.IORING_OP_READV_FIXED
    prep.prep_rw(sqe, op, fd, iovecs_addr, nr, file_offset)
    sqe.buf_index = buf_index
    return sqe


__all__ = [n for n in list(globals()) if n.isupper() or n in (
    "UblksrvIoCmd", "UblksrvIoDesc", "auto_buf_reg_to_sqe_addr", "prep_ublk_cmd",
    "prep_read_fixed", "prep_write_fixed", "prep_rwv_fixed")]
