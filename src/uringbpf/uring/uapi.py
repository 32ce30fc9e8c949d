"""Linux 7.1 ``include/uapi/linux/io_uring.h`` in one module: constants and ctypes layouts.

Every constant exists under its kernel name (``IORING_OP_READ``, ``IOSQE_IO_LINK``,
``IORING_SETUP_SQ_REWIND``) *and* under a short name for the Python API, made by a fixed
rule so nobody has to guess:

* ``IORING_`` is dropped:  ``IORING_OP_READ`` -> ``OP_READ``, ``IORING_SETUP_NO_SQARRAY`` ->
  ``SETUP_NO_SQARRAY``, ``IORING_ENTER_GETEVENTS`` -> ``ENTER_GETEVENTS``,
  ``IORING_CQE_F_MORE`` -> ``CQE_F_MORE``, ``IORING_FEAT_NODROP`` -> ``FEAT_NODROP``.
* ``IOSQE_`` becomes ``SQE_``: ``IOSQE_IO_LINK`` -> ``SQE_IO_LINK``.

Layouts (``Sqe``, ``Cqe``, ``IoUringParams`` ...) are ctypes structures so a view is just
``Sqe.from_address(addr)`` over ring memory: zero copy, and the same bytes the kernel reads.
Sources: torvalds/linux include/uapi/linux/io_uring.h and axboe/liburing
src/include/liburing/io_uring.h (see docs/ring.md for the exact revisions checked).
"""

from __future__ import annotations

import ctypes
from ctypes import (Structure, Union, c_int32, c_uint8, c_uint16, c_uint32, c_uint64,
                    c_int64, sizeof)

# --- opcodes (enum io_uring_op) -------------------------------------------------------
_OPS = """NOP READV WRITEV FSYNC READ_FIXED WRITE_FIXED POLL_ADD POLL_REMOVE SYNC_FILE_RANGE
SENDMSG RECVMSG TIMEOUT TIMEOUT_REMOVE ACCEPT ASYNC_CANCEL LINK_TIMEOUT CONNECT FALLOCATE
OPENAT CLOSE FILES_UPDATE STATX READ WRITE FADVISE MADVISE SEND RECV OPENAT2 EPOLL_CTL
SPLICE PROVIDE_BUFFERS REMOVE_BUFFERS TEE SHUTDOWN RENAMEAT UNLINKAT MKDIRAT SYMLINKAT
LINKAT MSG_RING FSETXATTR SETXATTR FGETXATTR GETXATTR SOCKET URING_CMD SEND_ZC SENDMSG_ZC
READ_MULTISHOT WAITID FUTEX_WAIT FUTEX_WAKE FUTEX_WAITV FIXED_FD_INSTALL FTRUNCATE BIND
LISTEN RECV_ZC EPOLL_WAIT READV_FIXED WRITEV_FIXED PIPE NOP128 URING_CMD128""".split()
for _i, _n in enumerate(_OPS):
    globals()["IORING_OP_" + _n] = _i
IORING_OP_LAST = len(_OPS)
#: opcode number -> name without prefix ("READ"), for messages and the disassembler.
OP_NAMES: dict[int, str] = dict(enumerate(_OPS))

# --- sqe->flags ---------------------------------------------------------------------
IOSQE_FIXED_FILE_BIT, IOSQE_IO_DRAIN_BIT, IOSQE_IO_LINK_BIT, IOSQE_IO_HARDLINK_BIT, \
    IOSQE_ASYNC_BIT, IOSQE_BUFFER_SELECT_BIT, IOSQE_CQE_SKIP_SUCCESS_BIT = range(7)
IOSQE_FIXED_FILE = 1 << 0
IOSQE_IO_DRAIN = 1 << 1
IOSQE_IO_LINK = 1 << 2
IOSQE_IO_HARDLINK = 1 << 3
IOSQE_ASYNC = 1 << 4
IOSQE_BUFFER_SELECT = 1 << 5
IOSQE_CQE_SKIP_SUCCESS = 1 << 6

IORING_FILE_INDEX_ALLOC = 0xFFFFFFFF

# --- io_uring_setup() flags ---------------------------------------------------------
IORING_SETUP_IOPOLL = 1 << 0
IORING_SETUP_SQPOLL = 1 << 1
IORING_SETUP_SQ_AFF = 1 << 2
IORING_SETUP_CQSIZE = 1 << 3
IORING_SETUP_CLAMP = 1 << 4
IORING_SETUP_ATTACH_WQ = 1 << 5
IORING_SETUP_R_DISABLED = 1 << 6
IORING_SETUP_SUBMIT_ALL = 1 << 7
IORING_SETUP_COOP_TASKRUN = 1 << 8
IORING_SETUP_TASKRUN_FLAG = 1 << 9
IORING_SETUP_SQE128 = 1 << 10
IORING_SETUP_CQE32 = 1 << 11
IORING_SETUP_SINGLE_ISSUER = 1 << 12
IORING_SETUP_DEFER_TASKRUN = 1 << 13
IORING_SETUP_NO_MMAP = 1 << 14
IORING_SETUP_REGISTERED_FD_ONLY = 1 << 15
IORING_SETUP_NO_SQARRAY = 1 << 16
IORING_SETUP_HYBRID_IOPOLL = 1 << 17
IORING_SETUP_CQE_MIXED = 1 << 18
IORING_SETUP_SQE_MIXED = 1 << 19
#: Linux 7.1: SQEs are always fetched from index 0 of the SQE array; head/tail unused.
IORING_SETUP_SQ_REWIND = 1 << 20

# --- per-opcode flags ---------------------------------------------------------------
IORING_URING_CMD_FIXED = 1 << 0
IORING_URING_CMD_MULTISHOT = 1 << 1
IORING_URING_CMD_MASK = IORING_URING_CMD_FIXED | IORING_URING_CMD_MULTISHOT

IORING_FSYNC_DATASYNC = 1 << 0

IORING_TIMEOUT_ABS = 1 << 0
IORING_TIMEOUT_UPDATE = 1 << 1
IORING_TIMEOUT_BOOTTIME = 1 << 2
IORING_TIMEOUT_REALTIME = 1 << 3
IORING_LINK_TIMEOUT_UPDATE = 1 << 4
IORING_TIMEOUT_ETIME_SUCCESS = 1 << 5
IORING_TIMEOUT_MULTISHOT = 1 << 6
IORING_TIMEOUT_IMMEDIATE_ARG = 1 << 7
IORING_TIMEOUT_CLOCK_MASK = IORING_TIMEOUT_BOOTTIME | IORING_TIMEOUT_REALTIME
IORING_TIMEOUT_UPDATE_MASK = IORING_TIMEOUT_UPDATE | IORING_LINK_TIMEOUT_UPDATE

SPLICE_F_FD_IN_FIXED = 1 << 31

IORING_POLL_ADD_MULTI = 1 << 0
IORING_POLL_UPDATE_EVENTS = 1 << 1
IORING_POLL_UPDATE_USER_DATA = 1 << 2
IORING_POLL_ADD_LEVEL = 1 << 3

IORING_ASYNC_CANCEL_ALL = 1 << 0
IORING_ASYNC_CANCEL_FD = 1 << 1
IORING_ASYNC_CANCEL_ANY = 1 << 2
IORING_ASYNC_CANCEL_FD_FIXED = 1 << 3
IORING_ASYNC_CANCEL_USERDATA = 1 << 4
IORING_ASYNC_CANCEL_OP = 1 << 5

IORING_RECVSEND_POLL_FIRST = 1 << 0
IORING_RECV_MULTISHOT = 1 << 1
IORING_RECVSEND_FIXED_BUF = 1 << 2
IORING_SEND_ZC_REPORT_USAGE = 1 << 3
IORING_RECVSEND_BUNDLE = 1 << 4
IORING_SEND_VECTORIZED = 1 << 5
IORING_NOTIF_USAGE_ZC_COPIED = 1 << 31

IORING_ACCEPT_MULTISHOT = 1 << 0
IORING_ACCEPT_DONTWAIT = 1 << 1
IORING_ACCEPT_POLL_FIRST = 1 << 2

IORING_MSG_DATA = 0
IORING_MSG_SEND_FD = 1
IORING_MSG_RING_CQE_SKIP = 1 << 0
IORING_MSG_RING_FLAGS_PASS = 1 << 1

IORING_FIXED_FD_NO_CLOEXEC = 1 << 0

IORING_NOP_INJECT_RESULT = 1 << 0
IORING_NOP_FILE = 1 << 1
IORING_NOP_FIXED_FILE = 1 << 2
IORING_NOP_FIXED_BUFFER = 1 << 3
IORING_NOP_TW = 1 << 4
IORING_NOP_CQE32 = 1 << 5

# --- cqe->flags ---------------------------------------------------------------------
IORING_CQE_F_BUFFER = 1 << 0
IORING_CQE_F_MORE = 1 << 1
IORING_CQE_F_SOCK_NONEMPTY = 1 << 2
IORING_CQE_F_NOTIF = 1 << 3
IORING_CQE_F_BUF_MORE = 1 << 4
IORING_CQE_F_SKIP = 1 << 5
IORING_CQE_F_32 = 1 << 15
IORING_CQE_BUFFER_SHIFT = 16

# --- mmap offsets -------------------------------------------------------------------
IORING_OFF_SQ_RING = 0
IORING_OFF_CQ_RING = 0x8000000
IORING_OFF_SQES = 0x10000000
IORING_OFF_PBUF_RING = 0x80000000
IORING_OFF_PBUF_SHIFT = 16
IORING_OFF_MMAP_MASK = 0xF8000000

# --- sq_ring->flags / cq_ring->flags ------------------------------------------------
IORING_SQ_NEED_WAKEUP = 1 << 0
IORING_SQ_CQ_OVERFLOW = 1 << 1
IORING_SQ_TASKRUN = 1 << 2
IORING_CQ_EVENTFD_DISABLED = 1 << 0

# --- io_uring_enter() flags ---------------------------------------------------------
IORING_ENTER_GETEVENTS = 1 << 0
IORING_ENTER_SQ_WAKEUP = 1 << 1
IORING_ENTER_SQ_WAIT = 1 << 2
IORING_ENTER_EXT_ARG = 1 << 3
IORING_ENTER_REGISTERED_RING = 1 << 4
IORING_ENTER_ABS_TIMER = 1 << 5
IORING_ENTER_EXT_ARG_REG = 1 << 6
IORING_ENTER_NO_IOWAIT = 1 << 7

# --- io_uring_params->features ------------------------------------------------------
IORING_FEAT_SINGLE_MMAP = 1 << 0
IORING_FEAT_NODROP = 1 << 1
IORING_FEAT_SUBMIT_STABLE = 1 << 2
IORING_FEAT_RW_CUR_POS = 1 << 3
IORING_FEAT_CUR_PERSONALITY = 1 << 4
IORING_FEAT_FAST_POLL = 1 << 5
IORING_FEAT_POLL_32BITS = 1 << 6
IORING_FEAT_SQPOLL_NONFIXED = 1 << 7
IORING_FEAT_EXT_ARG = 1 << 8
IORING_FEAT_NATIVE_WORKERS = 1 << 9
IORING_FEAT_RSRC_TAGS = 1 << 10
IORING_FEAT_CQE_SKIP = 1 << 11
IORING_FEAT_LINKED_FILE = 1 << 12
IORING_FEAT_REG_REG_RING = 1 << 13
IORING_FEAT_RECVSEND_BUNDLE = 1 << 14
IORING_FEAT_MIN_TIMEOUT = 1 << 15
IORING_FEAT_RW_ATTR = 1 << 16
IORING_FEAT_NO_IOWAIT = 1 << 17

# --- io_uring_register() opcodes (enum io_uring_register_op) ------------------------
_REG = """REGISTER_BUFFERS UNREGISTER_BUFFERS REGISTER_FILES UNREGISTER_FILES REGISTER_EVENTFD
UNREGISTER_EVENTFD REGISTER_FILES_UPDATE REGISTER_EVENTFD_ASYNC REGISTER_PROBE
REGISTER_PERSONALITY UNREGISTER_PERSONALITY REGISTER_RESTRICTIONS REGISTER_ENABLE_RINGS
REGISTER_FILES2 REGISTER_FILES_UPDATE2 REGISTER_BUFFERS2 REGISTER_BUFFERS_UPDATE
REGISTER_IOWQ_AFF UNREGISTER_IOWQ_AFF REGISTER_IOWQ_MAX_WORKERS REGISTER_RING_FDS
UNREGISTER_RING_FDS REGISTER_PBUF_RING UNREGISTER_PBUF_RING REGISTER_SYNC_CANCEL
REGISTER_FILE_ALLOC_RANGE REGISTER_PBUF_STATUS REGISTER_NAPI UNREGISTER_NAPI REGISTER_CLOCK
REGISTER_CLONE_BUFFERS REGISTER_SEND_MSG_RING REGISTER_ZCRX_IFQ REGISTER_RESIZE_RINGS
REGISTER_MEM_REGION REGISTER_QUERY REGISTER_ZCRX_CTRL REGISTER_BPF_FILTER""".split()
for _i, _n in enumerate(_REG):
    globals()["IORING_" + _n] = _i
IORING_REGISTER_LAST = len(_REG)
IORING_REGISTER_USE_REGISTERED_RING = 1 << 31

IORING_RSRC_REGISTER_SPARSE = 1 << 0
IORING_REGISTER_FILES_SKIP = -2
IO_URING_OP_SUPPORTED = 1 << 0

IORING_RESTRICTION_REGISTER_OP = 0
IORING_RESTRICTION_SQE_OP = 1
IORING_RESTRICTION_SQE_FLAGS_ALLOWED = 2
IORING_RESTRICTION_SQE_FLAGS_REQUIRED = 3
IORING_RESTRICTION_LAST = 4

IORING_REGISTER_SRC_REGISTERED = 1 << 0
IORING_REGISTER_DST_REPLACE = 1 << 1


# --- layouts -----------------------------------------------------------------------
class IoSqringOffsets(Structure):
    """``struct io_sqring_offsets``: where the SQ ring's words are in its mmap."""
    _fields_ = [("head", c_uint32), ("tail", c_uint32), ("ring_mask", c_uint32),
                ("ring_entries", c_uint32), ("flags", c_uint32), ("dropped", c_uint32),
                ("array", c_uint32), ("resv1", c_uint32), ("user_addr", c_uint64)]


class IoCqringOffsets(Structure):
    """``struct io_cqring_offsets``: where the CQ ring's words and CQEs are in its mmap."""
    _fields_ = [("head", c_uint32), ("tail", c_uint32), ("ring_mask", c_uint32),
                ("ring_entries", c_uint32), ("overflow", c_uint32), ("cqes", c_uint32),
                ("flags", c_uint32), ("resv1", c_uint32), ("user_addr", c_uint64)]


class IoUringParams(Structure):
    """``struct io_uring_params``: io_uring_setup's argument and result."""
    _fields_ = [("sq_entries", c_uint32), ("cq_entries", c_uint32), ("flags", c_uint32),
                ("sq_thread_cpu", c_uint32), ("sq_thread_idle", c_uint32),
                ("features", c_uint32), ("wq_fd", c_uint32), ("resv", c_uint32 * 3),
                ("sq_off", IoSqringOffsets), ("cq_off", IoCqringOffsets)]


class _OffU(Union):
    _fields_ = [("off", c_uint64), ("addr2", c_uint64), ("cmd_op", c_uint32)]


class _LevelOpt(Structure):
    _fields_ = [("level", c_uint32), ("optname", c_uint32)]


class _AddrU(Union):
    _anonymous_ = ("_lo",)
    _fields_ = [("addr", c_uint64), ("splice_off_in", c_uint64), ("_lo", _LevelOpt)]


_OP_FLAG_NAMES = ("rw_flags fsync_flags poll32_events sync_range_flags msg_flags timeout_flags "
                  "accept_flags cancel_flags open_flags statx_flags fadvise_advice splice_flags "
                  "rename_flags unlink_flags hardlink_flags xattr_flags msg_ring_flags "
                  "uring_cmd_flags waitid_flags futex_flags install_fd_flags nop_flags "
                  "pipe_flags").split()


class _OpFlagsU(Union):
    _fields_ = [("poll_events", c_uint16)] + [(n, c_uint32) for n in _OP_FLAG_NAMES]


class _BufU(Union):
    _pack_ = 1
    _fields_ = [("buf_index", c_uint16), ("buf_group", c_uint16)]


class _FileU(Union):
    _fields_ = [("splice_fd_in", c_int32), ("file_index", c_uint32), ("zcrx_ifq_idx", c_uint32),
                ("optlen", c_uint32), ("addr_len", c_uint16), ("write_stream", c_uint8)]


class _Addr3(Structure):
    _fields_ = [("addr3", c_uint64), ("__pad2", c_uint64)]


class _Attr(Structure):
    _fields_ = [("attr_ptr", c_uint64), ("attr_type_mask", c_uint64)]


class _TailU(Union):
    # cq_idx: the 2021 "BPF requests" RFC put a u16 CQ index at byte 48 (over addr3).
    _anonymous_ = ("_a3", "_at")
    _fields_ = [("_a3", _Addr3), ("_at", _Attr), ("optval", c_uint64), ("cq_idx", c_uint16)]


class Sqe(Structure):
    """struct io_uring_sqe (64 bytes). Use ``Sqe.from_address(addr)`` for a view."""

    _anonymous_ = ("_u_off", "_u_addr", "_u_flags", "_u_buf", "_u_file", "_u_tail")
    _fields_ = [("opcode", c_uint8), ("flags", c_uint8), ("ioprio", c_uint16), ("fd", c_int32),
                ("_u_off", _OffU), ("_u_addr", _AddrU), ("len", c_uint32),
                ("_u_flags", _OpFlagsU), ("user_data", c_uint64), ("_u_buf", _BufU),
                ("personality", c_uint16), ("_u_file", _FileU), ("_u_tail", _TailU)]


class Sqe128(Structure):
    """A 128-byte SQE (IORING_SETUP_SQE128): the 64-byte SQE followed by 64 more bytes.

    ``cmd`` (80 bytes of command data) starts at byte 48 in both layouts.
    """

    _anonymous_ = ("base",)
    _fields_ = [("base", Sqe), ("_ext", c_uint8 * 64)]


class Cqe(Structure):
    """``struct io_uring_cqe`` (16 bytes)."""
    _fields_ = [("user_data", c_uint64), ("res", c_int32), ("flags", c_uint32)]


class Cqe32(Structure):
    """``struct io_uring_cqe`` of an IORING_SETUP_CQE32 ring (32 bytes)."""
    _fields_ = [("user_data", c_uint64), ("res", c_int32), ("flags", c_uint32),
                ("big_cqe", c_uint64 * 2)]


SQE_CMD_OFFSET = 48


class IoUringProbeOp(Structure):
    """``struct io_uring_probe_op``: one opcode and its flags."""
    _fields_ = [("op", c_uint8), ("resv", c_uint8), ("flags", c_uint16), ("resv2", c_uint32)]


class IoUringProbe(Structure):
    """``struct io_uring_probe`` with room for 256 opcodes."""
    _fields_ = [("last_op", c_uint8), ("ops_len", c_uint8), ("resv", c_uint16),
                ("resv2", c_uint32 * 3), ("ops", IoUringProbeOp * 256)]


class IoUringRsrcRegister(Structure):
    """``struct io_uring_rsrc_register`` (IORING_REGISTER_FILES2/BUFFERS2)."""
    _fields_ = [("nr", c_uint32), ("flags", c_uint32), ("resv2", c_uint64),
                ("data", c_uint64), ("tags", c_uint64)]


class IoUringRsrcUpdate(Structure):
    """``struct io_uring_rsrc_update`` (IORING_REGISTER_FILES_UPDATE)."""
    _fields_ = [("offset", c_uint32), ("resv", c_uint32), ("data", c_uint64)]


class IoUringRsrcUpdate2(Structure):
    """``struct io_uring_rsrc_update2`` (…_UPDATE2, with tags)."""
    _fields_ = [("offset", c_uint32), ("resv", c_uint32), ("data", c_uint64),
                ("tags", c_uint64), ("nr", c_uint32), ("resv2", c_uint32)]


class IoUringGeteventsArg(Structure):
    """``struct io_uring_getevents_arg`` (io_uring_enter with IORING_ENTER_EXT_ARG)."""
    _fields_ = [("sigmask", c_uint64), ("sigmask_sz", c_uint32), ("min_wait_usec", c_uint32),
                ("ts", c_uint64)]


class KernelTimespec(Structure):
    """struct __kernel_timespec (64-bit seconds and nanoseconds)."""

    _fields_ = [("tv_sec", c_int64), ("tv_nsec", c_int64)]

    @classmethod
    def from_seconds(cls, seconds: float) -> "KernelTimespec":
        """A timespec for ``seconds`` (>= 0), rounded to the nanosecond."""
        if seconds < 0:
            raise ValueError("timeout must be >= 0")
        ns = int(round(seconds * 1e9))
        return cls(ns // 1_000_000_000, ns % 1_000_000_000)


class Iovec(Structure):
    """``struct iovec``."""
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


assert sizeof(Sqe) == 64 and sizeof(Sqe128) == 128
assert sizeof(Cqe) == 16 and sizeof(Cqe32) == 32
assert sizeof(IoUringParams) == 120
assert Sqe.buf_index.offset == 40 and Sqe.personality.offset == 42
assert Sqe.splice_fd_in.offset == 44 and Sqe.addr3.offset == 48 and Sqe.cq_idx.offset == 48

# --- short names -------------------------------------------------------------------
for _n, _v in list(globals().items()):
    if _n.startswith("IORING_") and isinstance(_v, int):
        globals().setdefault(_n[len("IORING_"):], _v)
    elif _n.startswith("IOSQE_") and isinstance(_v, int):
        globals().setdefault("SQE_" + _n[len("IOSQE_"):], _v)
del _n, _v, _i

__all__ = [n for n in globals() if not n.startswith("_") and n not in
           ("annotations", "ctypes", "Structure", "Union", "c_int32", "c_uint8", "c_uint16",
            "c_uint32", "c_uint64", "c_int64", "sizeof")]
