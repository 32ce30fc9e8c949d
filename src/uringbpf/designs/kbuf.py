"""Registered kernel buffers (Linux 6.15 ublk zero copy) and a ublk-like request source.

The kernel design (io_uring/rsrc.c, drivers/block/ublk_drv.c; facts in
docs/designs/kbuf.md): a *request source* (the ublk driver) owns block requests whose pages
the server never maps. The server fetches requests with ``IORING_OP_URING_CMD``
(``UBLK_U_IO_FETCH_REQ`` / ``UBLK_U_IO_COMMIT_AND_FETCH_REQ``), registers a request's pages
under an index of its ring's *sparse* buffer table (``UBLK_U_IO_REGISTER_IO_BUF`` or
automatically with ``UBLK_F_AUTO_BUF_REG``) and then moves data with READ_FIXED/WRITE_FIXED
(and the vectored forms) whose ``sqe->addr`` is an *offset* into the request, never an
address.

This kernel (6.18) has the buffer table but no ublk device we can drive from a test, so:

* :class:`RequestSource` plays the driver. Its pages are ordinary anonymous ``mmap`` memory,
  so a registration is a real ``IORING_REGISTER_BUFFERS_UPDATE`` into the ring's sparse
  table and the **real kernel** performs the READ_FIXED/WRITE_FIXED on the request's pages:
  true zero copy.
* :class:`KbufRing` is the server's ring: the kernel ring plus the two things the kernel
  would do for a kernel buffer and cannot do here because it sees a user buffer. On the
  submit path it (1) diverts URING_CMD SQEs addressed to a source's character-device fd to
  the source and (2) rewrites fixed-buffer SQEs that name a kernel-buffer slot: direction
  check (-EFAULT), range check (-EFAULT), ``offset -> address`` translation (also of every
  ``iov_base`` of the vectored forms), and a node reference held until the CQE (so an
  unregister while the op is in flight does not release the request). A refused SQE becomes a
  ``NOP`` with ``IORING_NOP_INJECT_RESULT`` carrying the errno, so the kernel still completes
  it in SQ order with its own ``user_data`` and link semantics.
* A fetched request reaches the server as a **real CQE in the real CQ**: the source owns a
  small private ring and posts ``IORING_OP_MSG_RING`` (``IORING_MSG_DATA``: ``res`` = 0 or
  ``-ENODEV``, ``user_data`` = the FETCH SQE's ``user_data``) to the server ring.

Everything runs on the real kernel io_uring; nothing here is a simulator.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import mmap
import os
import threading
import weakref
from ctypes import Structure, c_int32, c_uint16, c_uint32, c_uint64, sizeof
from dataclasses import dataclass
from typing import Callable

from ..uring import prep, uapi as u
from ..uring.kernel import KernelBackend

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


def _native():
    from .. import native
    lib = native.load("kbuf")
    lib.kbuf_copy.restype = c_uint64
    lib.kbuf_copy.argtypes = [c_uint64, c_uint64, c_uint64]
    lib.kbuf_crc32c.restype = c_uint32
    lib.kbuf_crc32c.argtypes = [c_uint32, c_uint64, c_uint64]
    return lib


_lib = None


def native_lib():
    """The compiled ``native/kbuf.c`` (copy and crc32c on raw addresses)."""
    global _lib
    if _lib is None:
        _lib = _native()
    return _lib


def crc32c(addr: int, length: int, crc: int = 0) -> int:
    """crc32c of ``length`` bytes at native address ``addr`` (continue from ``crc``)."""
    return native_lib().kbuf_crc32c(crc, addr, length)


def crc32c_bytes(data: bytes, crc: int = 0) -> int:
    buf = ctypes.create_string_buffer(bytes(data), max(len(data), 1))
    return crc32c(ctypes.addressof(buf), len(data), crc)


# --- the buffer table --------------------------------------------------------------------
class KbufNode:
    """One registered buffer: address, length, direction mask and a reference count.

    The table holds one reference while the slot names the node; every in-flight op (and
    every KFIXED user) holds one more. When the count reaches zero ``release`` runs: for a
    request buffer that drops the request's reference, as ``imu->release`` does in the kernel.
    """

    __slots__ = ("addr", "length", "direction", "kernel", "refs", "release", "owner")

    def __init__(self, addr: int, length: int, direction: int, kernel: bool,
                 release: Callable[[], None] | None = None, owner=None):
        self.addr, self.length, self.direction, self.kernel = addr, length, direction, kernel
        self.refs, self.release, self.owner = 1, release, owner


class KbufTable:
    """A ring's sparse buffer table with the merged 6.15 semantics for kernel buffers.

    Slots are mirrored into the kernel's own table with ``IORING_REGISTER_BUFFERS_UPDATE``
    (so the kernel resolves ``buf_index`` and pins the pages itself); this object keeps what
    the kernel would know and we must enforce: which slots hold *kernel* (request) buffers,
    their direction and length, and their references.
    """

    def __init__(self, ring_fd: int, nr: int, register: bool = True):
        if not 0 <= nr <= IORING_MAX_REG_BUFFERS:
            raise ValueError(f"buffer table size must be 0..{IORING_MAX_REG_BUFFERS}")
        self.ring_fd = ring_fd
        self.nodes: list[KbufNode | None] = [None] * nr
        #: what each slot of the *kernel's* table holds: (addr, len) or None
        self.pinned: list[tuple[int, int] | None] = [None] * nr
        self.lock = threading.RLock()
        if nr and register:
            reg = u.IoUringRsrcRegister(nr=nr, flags=u.IORING_RSRC_REGISTER_SPARSE)
            ret = _register(ring_fd, u.IORING_REGISTER_BUFFERS2, ctypes.addressof(reg),
                            sizeof(reg))
            if ret < 0:
                raise OSError(-ret, f"registering a sparse table of {nr} buffers: "
                                    f"{os.strerror(-ret)}")
        _by_fd[ring_fd] = self

    def __len__(self) -> int:
        return len(self.nodes)

    def _update(self, index: int, addr: int, length: int) -> int:
        iov = u.Iovec(addr or None, length)
        upd = u.IoUringRsrcUpdate2(offset=index, data=ctypes.addressof(iov), nr=1)
        ret = _register(self.ring_fd, u.IORING_REGISTER_BUFFERS_UPDATE, ctypes.addressof(upd),
                        sizeof(upd))
        return 0 if ret == 1 else (ret if ret < 0 else -errno.EIO)

    def _pin(self, index: int, addr: int, length: int) -> int:
        """Make the kernel's slot hold ``[addr, addr+len)`` (nothing if addr is 0)."""
        want = (addr, length) if addr else None
        if self.pinned[index] == want:
            return 0
        ret = self._update(index, addr, length)
        if ret == 0:
            self.pinned[index] = want
        return ret

    # io_buffer_register_bvec / io_buffer_unregister_bvec
    def register_kbuf(self, index: int, addr: int, length: int, direction: int,
                      release: Callable[[], None] | None = None, owner=None,
                      pin: tuple[int, int] | None = None) -> int:
        """Install a kernel buffer: 0, -EINVAL (index out of range), -EBUSY (occupied).

        ``pin``: what the kernel's slot should hold. None pins exactly the buffer (one
        BUFFERS_UPDATE per registration and per unregistration; the kernel enforces the range
        too). A ``(base, size)`` span containing the buffer (the source's whole page region)
        is pinned once and left in place across registrations, so a registration costs no
        syscall; the request's range is then enforced by :meth:`import_fixed` alone, and a
        slot that is empty here but still pinned in the kernel is refused (-EFAULT) on the
        submit path, exactly as the kernel refuses an empty slot.
        """
        with self.lock:
            if not 0 <= index < len(self.nodes):
                return -errno.EINVAL
            if self.nodes[index] is not None:
                return -errno.EBUSY
            if pin is not None and not (pin[0] <= addr and addr + length <= pin[0] + pin[1]):
                raise ValueError("pin span must contain the buffer")
            ret = self._pin(index, *(pin or (addr, length)))
            if ret < 0:
                return ret
            self.nodes[index] = KbufNode(addr, length, direction, True, release, owner)
            return 0

    def unregister_kbuf(self, index: int) -> int:
        """Drop the table's reference: 0, -EINVAL (out of range or empty), -EBUSY (user buffer)."""
        with self.lock:
            if not 0 <= index < len(self.nodes):
                return -errno.EINVAL
            node = self.nodes[index]
            if node is None:
                return -errno.EINVAL
            if not node.kernel:
                return -errno.EBUSY
            if self.pinned[index] == (node.addr, node.length):
                self._pin(index, 0, 0)         # exact pin: empty the kernel's slot too
            self.nodes[index] = None
        self.put(node)
        return 0

    def register_user(self, index: int, buffer) -> int:
        """Put an ordinary user buffer in a slot (``io_uring_register_buffers_update_tag``).

        Returns 0, -EINVAL (out of range) or -EBUSY (the slot holds a kernel buffer).
        """
        from ..uring.buffers import buffer_address
        addr, length, keep = buffer_address(buffer, True, "fixed buffer")
        with self.lock:
            if not 0 <= index < len(self.nodes):
                return -errno.EINVAL
            old = self.nodes[index]
            if old is not None and old.kernel:
                return -errno.EBUSY
            ret = self._pin(index, addr, length)
            if ret < 0:
                return ret
            self.nodes[index] = KbufNode(addr, length, KBUF_DIR_BOTH, False, None, keep)
        return 0

    def unregister_user(self, index: int) -> int:
        with self.lock:
            if not 0 <= index < len(self.nodes) or self.nodes[index] is None:
                return -errno.EINVAL
            if self.nodes[index].kernel:
                return -errno.EBUSY
            self._pin(index, 0, 0)
            self.nodes[index] = None
        return 0

    def lookup(self, index: int) -> tuple[int, int, int] | None:
        """``(addr, len, direction)`` of a slot, or None if empty/out of range.

        For other designs (IORING_OP_BPF KFIXED descriptors, programs): ``addr`` is the native
        address of the pages (this process's memory); the *offset* a KFIXED descriptor names
        is added to it after :meth:`import_fixed` checked range and direction.
        """
        with self.lock:
            if not 0 <= index < len(self.nodes) or self.nodes[index] is None:
                return None
            node = self.nodes[index]
            return node.addr, node.length, node.direction

    def is_kernel(self, index: int) -> bool:
        with self.lock:
            return 0 <= index < len(self.nodes) and self.nodes[index] is not None and \
                self.nodes[index].kernel

    def needs_import(self, index: int) -> bool:
        """Must a fixed op on this slot go through :meth:`import_fixed`? True for kernel
        buffers and for slots empty here but still pinned in the kernel (-> -EFAULT)."""
        with self.lock:
            if not 0 <= index < len(self.nodes):
                return False
            node = self.nodes[index]
            return node.kernel if node is not None else self.pinned[index] is not None

    def import_fixed(self, index: int, offset: int, length: int, ddir: int
                     ) -> tuple[KbufNode | None, int]:
        """io_import_fixed for a kernel buffer: ``(node, address)`` with a reference taken,
        or ``(None, -errno)``.

        ``ddir`` is KBUF_DIR_DEST when the op writes into the buffer (READ_FIXED) and
        KBUF_DIR_SOURCE when it reads from it (WRITE_FIXED). ``offset`` is relative to the
        buffer's base address 0. Range or direction violations give -EFAULT; an empty or
        out-of-range slot -EFAULT as in io_find_buf_node's callers.
        """
        with self.lock:
            if not 0 <= index < len(self.nodes) or self.nodes[index] is None:
                return None, -errno.EFAULT
            node = self.nodes[index]
            if offset < 0 or length < 0 or offset + length > node.length:
                return None, -errno.EFAULT
            if not node.direction & ddir:
                return None, -errno.EFAULT
            node.refs += 1
            return node, node.addr + offset

    def get(self, node: KbufNode) -> None:
        with self.lock:
            node.refs += 1

    def put(self, node: KbufNode) -> None:
        with self.lock:
            node.refs -= 1
            done = node.refs == 0
        if done and node.release is not None:
            node.release()

    def close(self) -> None:
        """Ring teardown (io_rsrc_data_free): drop the table's reference on every slot."""
        if _by_fd.get(self.ring_fd) is self:
            del _by_fd[self.ring_fd]
        with self.lock:
            nodes, self.nodes = self.nodes, [None] * len(self.nodes)
        for node in nodes:
            if node is not None:
                self.put(node)


def _register(fd: int, opcode: int, arg: int, nr: int) -> int:
    from ..uring import syscalls
    return syscalls.io_uring_register(fd, opcode, arg, nr)


_tables: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
#: ring fd -> its table, for programs (kfuncs name a ring by its fd, as IORING_OP_BPF does)
_by_fd: "weakref.WeakValueDictionary[int, KbufTable]" = weakref.WeakValueDictionary()


def table_by_fd(ring_fd: int) -> KbufTable | None:
    return _by_fd.get(ring_fd)


def kbuf_table(ring) -> KbufTable:
    """The kernel-buffer table of ``ring`` (a :class:`KbufRing`, or any ring registered with
    :func:`attach_table`). Raises LookupError if the ring has none."""
    table = getattr(ring, "kbuf", None)
    if not isinstance(table, KbufTable):
        try:
            table = _tables.get(ring)
        except TypeError:
            table = None
    if table is None:
        raise LookupError("this ring has no kernel-buffer table (create it with KbufRing or "
                          "attach_table)")
    return table


def attach_table(ring, nr: int, *, registered: bool = False) -> KbufTable:
    """Give a general :class:`uringbpf.Ring` a kernel-buffer table of ``nr`` slots.

    Registers the sparse table (unless ``registered``: the ring already did with
    ``register_buffers_sparse(nr)``) and adds an SQE filter that applies the kernel-buffer
    rules to READ/WRITE(V)_FIXED: direction and range (-EFAULT), ``offset -> address``.
    Kernel buffers are then installed with :meth:`KbufTable.register_kbuf`. The general ring
    has no completion hook, so here an op does *not* hold a node reference until its CQE
    (the kernel's own pin still keeps the pages valid); :class:`KbufRing` is the complete
    model (references, the ublk command channel).
    """
    table = KbufTable(ring.fd, nr, register=not registered)
    _tables[ring] = table
    recent: collections.deque = collections.deque(maxlen=4096)   # translated iovec arrays

    def kbuf_filter(sqe) -> int:
        ddir = _FIXED_OPS.get(sqe.opcode)
        if ddir is None or not table.needs_import(sqe.buf_index):
            return 0
        if sqe.opcode in _VECTORED:
            node, arr, err = import_vec(table, sqe, ddir)
            if node is None:
                return err
            recent.append(arr)   # the kernel copies the iovecs at submit (FEAT_SUBMIT_STABLE)
        else:
            node, addr = table.import_fixed(sqe.buf_index, sqe.addr, sqe.len, ddir)
            if node is None:
                return addr
            sqe.addr = addr
        table.put(node)
        return 0

    ring.add_sqe_filter(kbuf_filter)
    return table


def import_vec(table: KbufTable, sqe, ddir: int):
    """READV_FIXED/WRITEV_FIXED on a kernel buffer: every ``iov_base`` is an offset.

    Builds a translated iovec array, points ``sqe->addr`` at it and returns
    ``(node, array, 0)`` with one node reference taken, or ``(None, None, -errno)``.
    """
    nr = sqe.len
    if not 0 < nr <= 1024:
        return None, None, -errno.EINVAL
    raw = _read_user(sqe.addr, nr * sizeof(u.Iovec))
    if raw is None:
        return None, None, -errno.EFAULT
    src = (u.Iovec * nr).from_buffer_copy(raw)
    out = (u.Iovec * nr)()
    node = None
    for i in range(nr):
        n, addr = table.import_fixed(sqe.buf_index, src[i].iov_base or 0, src[i].iov_len, ddir)
        if n is None:
            if node is not None:
                table.put(node)
            return None, None, addr
        if node is None:
            node = n
        else:
            table.put(n)          # one reference per request, as in the kernel
        out[i].iov_base, out[i].iov_len = addr, src[i].iov_len
    sqe.addr = ctypes.addressof(out)
    return node, out, 0


# --- the server ring ---------------------------------------------------------------------
@dataclass(slots=True)
class Completion:
    """A CQE after the kbuf layer's completion processing (copied out of the CQ)."""

    user_data: int
    res: int
    flags: int


_ZERO_SQE = bytes(64)
_TOKEN_BASE = 0xFFFF << 48      # user_data values the ring uses for its own bookkeeping
_FIXED_OPS = {u.IORING_OP_READ_FIXED: KBUF_DIR_DEST, u.IORING_OP_WRITE_FIXED: KBUF_DIR_SOURCE,
              u.IORING_OP_READV_FIXED: KBUF_DIR_DEST, u.IORING_OP_WRITEV_FIXED: KBUF_DIR_SOURCE}
_VECTORED = {u.IORING_OP_READV_FIXED, u.IORING_OP_WRITEV_FIXED}
_LINK_FLAGS = u.IOSQE_IO_LINK | u.IOSQE_IO_HARDLINK
_NOP_KEEP_FLAGS = (u.IOSQE_IO_LINK | u.IOSQE_IO_HARDLINK | u.IOSQE_IO_DRAIN | u.IOSQE_ASYNC
                   | u.IOSQE_CQE_SKIP_SUCCESS)


class _Pending:
    """Bookkeeping for an SQE whose CQE the ring must post-process."""

    __slots__ = ("user_data", "skip_success", "node", "keep", "deferred")

    def __init__(self, user_data, skip_success, node=None, keep=None, deferred=None):
        self.user_data, self.skip_success = user_data, skip_success
        self.node, self.keep, self.deferred = node, keep, deferred


class KbufRing:
    """A kernel io_uring for a block server, with the kernel-buffer rules on its paths.

    A small self-contained ring (SQ/CQ in the kernel's mmaps, io_uring_enter via ctypes) so
    this design does not depend on the general :class:`uringbpf.Ring`; it adds exactly the
    submit-path and completion-path steps described in the module docstring. ``user_data``
    values with the top 16 bits all set are reserved for the ring's own bookkeeping.
    """

    def __init__(self, entries: int = 64, *, buffers: int = 64, cq_entries: int | None = None):
        params = u.IoUringParams()
        if cq_entries:
            params.flags |= u.IORING_SETUP_CQSIZE
            params.cq_entries = cq_entries
        self._b = KernelBackend(entries, params)
        self.fd = self._b.fd
        p = self._b.params
        sq, cq = self._b.sq_ring_addr, self._b.cq_ring_addr
        self._sq_head = c_uint32.from_address(sq + p.sq_off.head)
        self._sq_tail = c_uint32.from_address(sq + p.sq_off.tail)
        self._sq_mask = c_uint32.from_address(sq + p.sq_off.ring_mask).value
        self._sq_entries = p.sq_entries
        self._sq_array = sq + p.sq_off.array
        self._cq_head = c_uint32.from_address(cq + p.cq_off.head)
        self._cq_tail = c_uint32.from_address(cq + p.cq_off.tail)
        self._cq_mask = c_uint32.from_address(cq + p.cq_off.ring_mask).value
        self._cqes = cq + p.cq_off.cqes
        # Zeroing SQEs through a memoryview instead of ctypes.memset: a ctypes call drops and
        # re-takes the GIL, which costs microseconds when the block-layer thread is busy.
        self._sqe_mem = memoryview((ctypes.c_char * self._b.sqes_size).from_address(
            self._b.sqes_addr)).cast("B")
        self._tail = self._sq_tail.value
        self._flushed = self._tail
        self._ready: collections.deque[Completion] = collections.deque()
        self._pending: dict[int, _Pending] = {}
        self._next_token = 0
        self._diverters: dict[int, "RequestSource"] = {}
        self.kbuf = KbufTable(self.fd, buffers)
        self.closed = False
        self.stats = collections.Counter()

    # -- SQ side
    def get_sqe(self) -> u.Sqe | None:
        """A zeroed SQE in the kernel's SQE array, or None if the SQ is full."""
        if self._tail - self._sq_head.value >= self._sq_entries:
            return None
        idx = self._tail & self._sq_mask
        self._sqe_mem[idx * 64:idx * 64 + 64] = _ZERO_SQE
        self._tail += 1
        return u.Sqe.from_address(self._b.sqes_addr + idx * 64)

    def sq_space_left(self) -> int:
        return self._sq_entries - (self._tail - self._sq_head.value)

    def register_source(self, source: "RequestSource") -> None:
        """Route URING_CMD SQEs on ``source.char_fd`` to ``source`` (its command channel)."""
        self._diverters[source.char_fd] = source
        source._rings.add(self)

    def _token(self, pending: _Pending) -> int:
        self._next_token = (self._next_token + 1) & 0xFFFFFFFFFFFF
        token = _TOKEN_BASE | self._next_token
        self._pending[token] = pending
        return token

    def _to_nop(self, sqe: u.Sqe, res: int | None, flags: int, user_data: int) -> None:
        """Rewrite an SQE in place as NOP (optionally injecting ``res``), keeping its flags."""
        off = ctypes.addressof(sqe) - self._b.sqes_addr
        self._sqe_mem[off:off + 64] = _ZERO_SQE
        sqe.opcode = u.IORING_OP_NOP
        sqe.fd = -1
        flags &= _NOP_KEEP_FLAGS          # a NOP has no file and no buffer group
        if res is not None:
            sqe.nop_flags = u.IORING_NOP_INJECT_RESULT
            sqe.len = res & 0xFFFFFFFF
        sqe.flags = flags
        sqe.user_data = user_data

    def _translate(self, sqe: u.Sqe) -> None:
        op = sqe.opcode
        if op == u.IORING_OP_URING_CMD and sqe.fd in self._diverters \
                and not sqe.flags & u.IOSQE_FIXED_FILE:
            self._divert(sqe, self._diverters[sqe.fd])
        elif op in _FIXED_OPS and self.kbuf.needs_import(sqe.buf_index):
            self._import(sqe, _FIXED_OPS[op])

    def _divert(self, sqe: u.Sqe, source: "RequestSource") -> None:
        off = ctypes.addressof(sqe) - self._b.sqes_addr
        cmd = UblksrvIoCmd.from_buffer_copy(self._sqe_mem, off + u.SQE_CMD_OFFSET)
        flags, user_data, cmd_op, addr = sqe.flags, sqe.user_data, sqe.cmd_op, sqe.addr
        kind, value = source.handle_cmd(self, cmd_op, cmd, addr, user_data, flags)
        self.stats["uring_cmd"] += 1
        if kind == "done":        # completed at issue: the kernel posts it in SQ order
            self._to_nop(sqe, value, flags, user_data)
        elif kind == "parked":    # the source posts the CQE later (MSG_RING)
            self._to_nop(sqe, None, u.IOSQE_CQE_SKIP_SUCCESS, user_data)
        else:                     # "deferred": run when the chain reaches it
            pend = _Pending(user_data, bool(flags & u.IOSQE_CQE_SKIP_SUCCESS), deferred=value)
            self._to_nop(sqe, None, flags & ~u.IOSQE_CQE_SKIP_SUCCESS, self._token(pend))

    def _import(self, sqe: u.Sqe, ddir: int) -> None:
        flags, user_data = sqe.flags, sqe.user_data
        if sqe.opcode in _VECTORED:
            node, keep, err = import_vec(self.kbuf, sqe, ddir)
        else:
            node, addr = self.kbuf.import_fixed(sqe.buf_index, sqe.addr, sqe.len, ddir)
            err = addr if node is None else 0
            keep = None
            if node is not None:
                sqe.addr = addr
        if err:
            self.stats["kbuf_refused"] += 1
            self._to_nop(sqe, err, flags, user_data)
            return
        self.stats["kbuf_import"] += 1
        pend = _Pending(user_data, bool(flags & u.IOSQE_CQE_SKIP_SUCCESS), node, keep)
        sqe.flags = flags & ~u.IOSQE_CQE_SKIP_SUCCESS
        sqe.user_data = self._token(pend)

    def submit(self) -> int:
        """Translate the new SQEs, publish them, io_uring_enter. Returns the kernel's count."""
        return self._submit(0, 0)

    def _submit(self, wait_nr: int, flags: int, timeout: float | None = None) -> int:
        if self.closed:
            raise ValueError("ring is closed")
        n = self._tail - self._flushed
        for i in range(self._flushed, self._tail):
            idx = i & self._sq_mask
            self._translate(u.Sqe.from_address(self._b.sqes_addr + idx * 64))
            c_uint32.from_address(self._sq_array + 4 * idx).value = idx
        self._flushed = self._tail
        self._sq_tail.value = self._tail
        if not n and not wait_nr and self._sq_head.value == self._tail:
            return 0
        # everything published and not yet consumed (an earlier enter may have stopped short)
        to_submit = (self._tail - self._sq_head.value) & 0xFFFFFFFF
        ret = self._b.enter(to_submit, wait_nr, flags, timeout=timeout)
        if ret < 0 and ret not in (-errno.ETIME, -errno.EINTR, -errno.EAGAIN, -errno.EBUSY):
            raise OSError(-ret, f"io_uring_enter: {os.strerror(-ret)}")
        return ret

    # -- CQ side
    def _reap(self) -> None:
        head, tail = self._cq_head.value, self._cq_tail.value
        while head != tail:
            cqe = u.Cqe.from_address(self._cqes + (head & self._cq_mask) * 16)
            ud, res, fl = cqe.user_data, cqe.res, cqe.flags
            head += 1
            self._cq_head.value = head
            pend = self._pending.pop(ud, None) if ud >= _TOKEN_BASE else None
            if pend is None:
                self._ready.append(Completion(ud, res, fl))
                continue
            if pend.node is not None:
                self.kbuf.put(pend.node)
            if pend.deferred is not None and res >= 0:
                res = pend.deferred()
            if not (pend.skip_success and res >= 0):
                self._ready.append(Completion(pend.user_data, res, fl))

    def peek_cqe(self) -> Completion | None:
        if not self._ready:
            self._reap()
        return self._ready.popleft() if self._ready else None

    def wait_cqe(self, timeout: float | None = None) -> Completion | None:
        """Submit pending SQEs and wait for one completion (None on timeout)."""
        c = self.peek_cqe()
        if c is not None:
            return c        # queued SQEs wait for the next wait/submit: fewer syscalls
        while True:
            ret = self._submit(1, u.IORING_ENTER_GETEVENTS, timeout)   # submit + wait at once
            c = self.peek_cqe()
            if c is not None or ret == -errno.ETIME:
                return c

    def close(self) -> None:
        """Ring teardown: release every table slot and every in-flight reference, then tell
        the sources (they fail what this ring had fetched and not committed)."""
        if self.closed:
            return
        # The kernel's ring exit waits for in-flight requests before it frees the buffer
        # table; do the same (bounded) so no op still writes into pages we hand back.
        deadline = 50
        while any(p.node is not None for p in self._pending.values()) and deadline:
            self._submit(1, u.IORING_ENTER_GETEVENTS, 0.1)
            self._reap()
            deadline -= 1
        self.closed = True
        for source in list(self._diverters.values()):
            source._ring_closed(self)
        self._diverters.clear()
        self.kbuf.close()
        pend, self._pending = self._pending, {}
        for p in pend.values():
            if p.node is not None:
                self.kbuf.put(p.node)
        self._b.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _IoVec(Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_libc = ctypes.CDLL(None, use_errno=True)
_vm_readv = _libc.process_vm_readv
_vm_readv.restype = ctypes.c_ssize_t
_vm_readv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
                      ctypes.c_ulong, ctypes.c_ulong]


def _read_user(addr: int, size: int) -> bytes | None:
    """Read our own memory without risking a segfault (None plays the kernel's -EFAULT)."""
    if not addr:
        return None
    buf = ctypes.create_string_buffer(size)
    loc, rem = _IoVec(ctypes.addressof(buf), size), _IoVec(addr, size)
    ok = _vm_readv(os.getpid(), ctypes.byref(loc), 1, ctypes.byref(rem), 1, 0) == size
    return buf.raw if ok else None


# --- the request source (the ublk driver's role) ------------------------------------------
class BlockRequest:
    """One block request: op, byte offset, length and its pages (in the source's region).

    The block-layer side (e.g. the NBD front end) fills a WRITE's pages with :meth:`view`
    before :meth:`RequestSource.queue_rq`, reads a READ's pages after completion, then calls
    :meth:`free`. The server side never gets a Python view of them.
    """

    __slots__ = ("source", "op", "offset", "length", "flags", "slot", "addr", "tag", "result",
                 "committed", "refs", "done", "on_complete", "event", "fallback")

    def __init__(self, source, op, offset, length, flags, slot, addr):
        self.source, self.op, self.offset, self.length, self.flags = (source, op, offset,
                                                                      length, flags)
        self.slot, self.addr = slot, addr
        self.tag = -1
        self.result: int | None = None
        self.committed = False
        self.refs = 0                # kernel-buffer registrations still alive
        self.done = False
        self.on_complete: Callable[["BlockRequest"], None] | None = None
        self.event = threading.Event()
        self.fallback = False

    @property
    def has_data(self) -> bool:
        return self.op in (UBLK_IO_OP_READ, UBLK_IO_OP_WRITE) and self.length > 0

    def view(self) -> memoryview:
        """The request's pages as a writable memoryview (block-layer side only)."""
        return memoryview((ctypes.c_char * self.length).from_address(self.addr)).cast("B")

    def free(self) -> None:
        self.source._free_slot(self)


class _Tag:
    __slots__ = ("state", "ring", "user_data", "buf_addr", "auto", "auto_ring", "request")

    def __init__(self):
        self.state = "idle"          # idle -> parked (fetch armed) -> owned (server has a request)
        self.ring = None
        self.user_data = 0
        self.buf_addr = 0
        self.auto: tuple[int, int] | None = None      # (index, flags) for AUTO_BUF_REG
        self.auto_ring = None                          # ring the auto registration went into
        self.request: BlockRequest | None = None


class RequestSource:
    """Plays ublk_drv for one queue: block requests in, URING_CMD completions out.

    ``flags``: ``UBLK_F_SUPPORT_ZERO_COPY`` enables REGISTER/UNREGISTER_IO_BUF,
    ``UBLK_F_AUTO_BUF_REG`` the automatic registration; without either the source works in
    *copy mode*: FETCH's ``addr`` names the server's per-tag buffer and the source copies a
    WRITE's pages into it before the fetch CQE and a READ's result out of it at commit (in C).

    ``char_fd`` stands for ``/dev/ublkcN`` (an eventfd: a real descriptor nothing else uses);
    the server targets it with URING_CMD SQEs on a :class:`KbufRing` registered with
    :meth:`KbufRing.register_source`.
    """

    def __init__(self, queue_depth: int = 32, max_io_bytes: int = 1 << 20, flags: int = 0,
                 size: int = 0, pin: str = "region"):
        if not 1 <= queue_depth <= 4096:
            raise ValueError("queue_depth must be 1..4096")
        if max_io_bytes <= 0 or max_io_bytes % SECTOR:
            raise ValueError("max_io_bytes must be a positive multiple of 512")
        if pin not in ("region", "request"):
            raise ValueError("pin must be 'region' or 'request'")
        self.queue_depth, self.max_io_bytes, self.flags, self.size = (queue_depth, max_io_bytes,
                                                                      flags, size)
        self.pin = pin
        self.char_fd = os.eventfd(0, os.EFD_CLOEXEC)
        self._nslots = 2 * queue_depth
        self._region = mmap.mmap(-1, self._nslots * max_io_bytes,
                                 flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._region_addr = ctypes.addressof(ctypes.c_char.from_buffer(self._region))
        self._pin_span = (self._region_addr, len(self._region)) if pin == "region" else None
        self._free = list(range(self._nslots))
        self.descs = (UblksrvIoDesc * queue_depth)()     # "mmapped" descriptor array
        self._tags = [_Tag() for _ in range(queue_depth)]
        self._pending: collections.deque[BlockRequest] = collections.deque()
        self._lock = threading.RLock()
        self._slot_cv = threading.Condition(self._lock)
        self._driver = KernelBackend(64, u.IoUringParams())   # posts CQEs with MSG_RING
        self._driver_sqes = memoryview((ctypes.c_char * self._driver.sqes_size).from_address(
            self._driver.sqes_addr)).cast("B")
        self._rings: weakref.WeakSet = weakref.WeakSet()
        self.dead = False
        self.stats = collections.Counter()

    # -- block-layer side
    def alloc_request(self, op: int, offset: int, length: int, flags: int = 0,
                      timeout: float | None = None) -> BlockRequest:
        """A request with pages reserved (blocks while all page slots are in use)."""
        if op in (UBLK_IO_OP_READ, UBLK_IO_OP_WRITE):
            if length <= 0 or length > self.max_io_bytes or length % SECTOR or offset % SECTOR:
                raise ValueError(f"I/O must be 512-byte aligned and 1..{self.max_io_bytes} "
                                 f"bytes (offset {offset}, length {length})")
        else:
            # FLUSH and friends carry no data: no pages, so they never wait for a slot
            return BlockRequest(self, op, offset, 0, flags, -1, 0)
        with self._lock:
            while not self._free:
                if self.dead:
                    raise OSError(errno.ENODEV, "request source is dead")
                if not self._slot_cv.wait(timeout):
                    raise TimeoutError("no free request pages")
            slot = self._free.pop()
        addr = self._region_addr + slot * self.max_io_bytes
        return BlockRequest(self, op, offset, length, flags, slot, addr)

    def _free_slot(self, req: BlockRequest) -> None:
        with self._lock:
            if req.slot >= 0:
                self._free.append(req.slot)
                req.slot = -1
                self._slot_cv.notify()

    def queue_rq(self, req: BlockRequest,
                 on_complete: Callable[[BlockRequest], None] | None = None) -> None:
        """Hand a request to the server (blk-mq ``queue_rq``); ``on_complete`` runs once."""
        req.on_complete = on_complete
        with self._lock:
            if self.dead:
                self._finish(req, -errno.EIO)
                return
            self._pending.append(req)
            self.stats["queued"] += 1
            self._dispatch()

    def submit(self, op: int, offset: int, data: bytes | int = 0, flags: int = 0,
               timeout: float | None = 10.0) -> tuple[int, bytes]:
        """Synchronous convenience: run one request, return ``(result, read data)``."""
        length = data if isinstance(data, int) else len(data)
        req = self.alloc_request(op, offset, length, flags)
        try:
            if op == UBLK_IO_OP_WRITE:
                req.view()[:] = data
            self.queue_rq(req)
            if not req.event.wait(timeout):
                raise TimeoutError("request did not complete")
            out = bytes(req.view()) if op == UBLK_IO_OP_READ and req.result == length else b""
            return req.result, out
        finally:
            req.free()

    # -- dispatch and completion
    def _dispatch(self) -> None:
        while self._pending:
            tag_no = next((i for i, t in enumerate(self._tags) if t.state == "parked"), None)
            if tag_no is None:
                return
            req = self._pending.popleft()
            self._deliver(tag_no, req)

    def _deliver(self, tag_no: int, req: BlockRequest) -> None:
        tag = self._tags[tag_no]
        op_flags = req.op | (req.flags & ~0xFF)
        if tag.auto is not None and req.has_data:
            index, aflags = tag.auto
            ret = tag.ring.kbuf.register_kbuf(index, req.addr, req.length, _direction(req),
                                              self._release_cb(req), req, self._pin_span)
            if ret == 0:
                req.refs += 1
                tag.auto_ring = tag.ring
            elif aflags & UBLK_AUTO_BUF_REG_FALLBACK:
                op_flags |= UBLK_IO_F_NEED_REG_BUF
            else:
                # "the ublk I/O request fails silently; the uring_cmd won't be completed"
                self.stats["auto_reg_failed"] += 1
                self._finish(req, -errno.EIO)
                return
        desc = self.descs[tag_no]
        desc.op_flags = op_flags
        desc.nr_sectors = req.length // SECTOR
        desc.start_sector = req.offset // SECTOR
        desc.addr = tag.buf_addr
        if not self._zero_copy and req.op == UBLK_IO_OP_WRITE and req.length:
            native_lib().kbuf_copy(tag.buf_addr, req.addr, req.length)
            self.stats["copied_bytes"] += req.length
        req.tag = tag_no
        tag.request = req
        tag.state = "owned"
        self.stats["delivered"] += 1
        self._post(tag.ring, tag.user_data, UBLK_IO_RES_OK)

    @property
    def _zero_copy(self) -> bool:
        return bool(self.flags & (UBLK_F_SUPPORT_ZERO_COPY | UBLK_F_AUTO_BUF_REG))

    def _post(self, ring: KbufRing, user_data: int, res: int) -> None:
        """Post a CQE into ``ring``'s real CQ: IORING_OP_MSG_RING from the driver ring."""
        b = self._driver
        p = b.params
        sq = b.sq_ring_addr
        tail = c_uint32.from_address(sq + p.sq_off.tail)
        mask = c_uint32.from_address(sq + p.sq_off.ring_mask).value
        idx = tail.value & mask
        self._driver_sqes[idx * 64:idx * 64 + 64] = _ZERO_SQE
        sqe = u.Sqe.from_address(b.sqes_addr + idx * 64)
        prep.prep_msg_ring(sqe, ring.fd, res, user_data)
        sqe.flags = u.IOSQE_CQE_SKIP_SUCCESS
        c_uint32.from_address(sq + p.sq_off.array + 4 * idx).value = idx
        tail.value += 1
        ret = b.enter(1, 0, 0)
        if ret != 1:
            raise OSError(-ret if ret < 0 else errno.EIO, "posting a fetch completion failed")
        # Only failures produce a CQE on the driver ring (CQE_SKIP_SUCCESS): surface them.
        cq = b.cq_ring_addr
        head = c_uint32.from_address(cq + p.cq_off.head)
        ctail = c_uint32.from_address(cq + p.cq_off.tail).value
        if head.value != ctail:
            cmask = c_uint32.from_address(cq + p.cq_off.ring_mask).value
            cqe = u.Cqe.from_address(cq + p.cq_off.cqes + (head.value & cmask) * 16)
            err = cqe.res
            head.value = ctail
            raise OSError(-err, f"MSG_RING to the server ring failed: {os.strerror(-err)}")
        self.stats["posted"] += 1

    def _release_cb(self, req: BlockRequest) -> Callable[[], None]:
        def release() -> None:
            with self._lock:
                req.refs -= 1
                self._maybe_complete(req)
        return release

    def _maybe_complete(self, req: BlockRequest) -> None:
        if req.committed and req.refs == 0 and not req.done:
            self._finish(req, req.result)

    def _finish(self, req: BlockRequest, result: int) -> None:
        if req.done:
            return
        req.done = True
        req.result = result
        self.stats["completed"] += 1
        cb = req.on_complete
        req.event.set()
        if cb is not None:
            cb(req)

    # -- the command channel (what ublk_ch_uring_cmd does)
    def handle_cmd(self, ring: KbufRing, cmd_op: int, cmd: UblksrvIoCmd, sqe_addr: int,
                   user_data: int, sqe_flags: int):
        """Run one URING_CMD at issue time. Returns ``("done", res)``, ``("parked", None)``
        or ``("deferred", fn)`` (``fn() -> res`` runs when a linked chain reaches it)."""
        with self._lock:
            if cmd.q_id != 0 or cmd.tag >= self.queue_depth:
                return "done", -errno.EINVAL
            if cmd_op == UBLK_U_IO_REGISTER_IO_BUF:
                return "done", self._register_io_buf(ring, cmd)
            if cmd_op == UBLK_U_IO_UNREGISTER_IO_BUF:
                if not self._zero_copy:
                    return "done", -errno.EINVAL
                index = cmd.addr
                return "deferred", lambda: ring.kbuf.unregister_kbuf(index) \
                    if index < (1 << 16) else -errno.EINVAL
            if cmd_op not in (UBLK_U_IO_FETCH_REQ, UBLK_U_IO_COMMIT_AND_FETCH_REQ):
                return "done", -errno.EINVAL
            if self.dead:
                tag = self._tags[cmd.tag]
                if cmd_op == UBLK_U_IO_COMMIT_AND_FETCH_REQ and tag.state == "owned":
                    self._commit(ring, tag, cmd.result)    # finish it, but do not re-arm
                return "done", UBLK_IO_RES_ABORT
            if sqe_flags & _LINK_FLAGS:
                # a parked command cannot hold a link chain here (documented difference)
                return "done", -errno.EINVAL
            auto = None
            if self.flags & UBLK_F_AUTO_BUF_REG:
                index, aflags = sqe_addr & 0xFFFF, (sqe_addr >> 16) & 0xFF
                if sqe_addr >> 24 or aflags & ~UBLK_AUTO_BUF_REG_F_MASK:
                    return "done", -errno.EINVAL      # reserved fields must be zero
                auto = (index, aflags)
            if not self._zero_copy and not cmd.addr:
                return "done", -errno.EINVAL          # copy mode needs the server buffer
            if self._zero_copy and cmd.addr:
                return "done", -errno.EINVAL          # no user mapping: addr must be unset
            tag = self._tags[cmd.tag]
            if cmd_op == UBLK_U_IO_FETCH_REQ:
                if tag.state != "idle":
                    return "done", -errno.EINVAL      # each tag is fetched at most once
            else:
                # any of the server's rings may commit (and re-arm the tag there); an
                # automatic registration stays in the ring that fetched (see _commit)
                if tag.state != "owned":
                    return "done", -errno.EINVAL
                self._commit(ring, tag, cmd.result)
            tag.state, tag.ring, tag.user_data = "parked", ring, user_data
            tag.buf_addr = 0 if self._zero_copy else cmd.addr
            tag.auto = auto
            self._dispatch()
            return "parked", None

    def _register_io_buf(self, ring: KbufRing, cmd: UblksrvIoCmd) -> int:
        if not self._zero_copy:
            return -errno.EINVAL
        tag = self._tags[cmd.tag]
        req = tag.request
        if tag.state != "owned" or req is None or not req.has_data:
            return -errno.EINVAL
        if cmd.addr >= (1 << 16):
            return -errno.EINVAL
        ret = ring.kbuf.register_kbuf(cmd.addr, req.addr, req.length, _direction(req),
                                      self._release_cb(req), req, self._pin_span)
        if ret == 0:
            req.refs += 1
        return ret

    def _commit(self, ring: KbufRing, tag: _Tag, result: int) -> None:
        req = tag.request
        if tag.auto_ring is not None:
            # AUTO_BUF_REG undoes its registration only on the ring that fetched; a commit
            # from another ring leaves it to the server (UNREGISTER_IO_BUF there), else the
            # request never completes — the kernel's rule
            if tag.auto_ring is ring and tag.auto is not None:
                ring.kbuf.unregister_kbuf(tag.auto[0])     # -EINVAL if the server already did
            tag.auto_ring = None
        if not self._zero_copy and req.op == UBLK_IO_OP_READ and result > 0:
            n = min(result, req.length)
            native_lib().kbuf_copy(req.addr, tag.buf_addr, n)
            self.stats["copied_bytes"] += n
        tag.request = None
        tag.state = "idle"
        req.result = result
        req.committed = True
        self.stats["committed"] += 1
        self._maybe_complete(req)

    # -- teardown
    def _ring_closed(self, ring: KbufRing) -> None:
        """The server ring died: its parked fetches vanish, its requests fail (-EIO)."""
        with self._lock:
            for tag in self._tags:
                if tag.ring is ring:
                    req = tag.request
                    tag.state, tag.ring, tag.request, tag.auto_ring = "idle", None, None, None
                    if req is not None and not req.done:
                        req.committed = True
                        req.refs = 0
                        self._finish(req, -errno.EIO)
            if not any(t.state != "idle" for t in self._tags):
                self._kill()

    def _kill(self) -> None:
        self.dead = True
        while self._pending:
            self._finish(self._pending.popleft(), -errno.EIO)
        self._slot_cv.notify_all()

    def stop(self) -> None:
        """Stop the device: fail queued requests and abort every parked fetch (-ENODEV),
        which is how a ublk server learns to exit."""
        with self._lock:
            self._kill()
            for tag in self._tags:
                if tag.state == "parked":
                    tag.state = "idle"
                    self._post(tag.ring, tag.user_data, UBLK_IO_RES_ABORT)

    def close(self) -> None:
        with self._lock:
            if self.char_fd < 0:
                return
            self.stop()
            for tag in self._tags:
                req = tag.request
                if req is not None and not req.done:
                    req.committed, req.refs = True, 0
                    self._finish(req, -errno.EIO)
            self._driver.close()
            os.close(self.char_fd)
            self.char_fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _direction(req: BlockRequest) -> int:
    """A WRITE request's pages are only a source; a READ's only a destination."""
    return KBUF_DIR_SOURCE if req.op == UBLK_IO_OP_WRITE else KBUF_DIR_DEST


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
    prep.prep_rw(sqe, u.IORING_OP_READ_FIXED, fd, offset_in_buf, length, file_offset)
    sqe.buf_index = buf_index
    return sqe


def prep_write_fixed(sqe: u.Sqe, fd: int, offset_in_buf: int, length: int, file_offset: int,
                     buf_index: int) -> u.Sqe:
    prep.prep_rw(sqe, u.IORING_OP_WRITE_FIXED, fd, offset_in_buf, length, file_offset)
    sqe.buf_index = buf_index
    return sqe


def prep_rwv_fixed(sqe: u.Sqe, write: bool, fd: int, iovecs_addr: int, nr: int,
                   file_offset: int, buf_index: int) -> u.Sqe:
    op = u.IORING_OP_WRITEV_FIXED if write else u.IORING_OP_READV_FIXED
    prep.prep_rw(sqe, op, fd, iovecs_addr, nr, file_offset)
    sqe.buf_index = buf_index
    return sqe


# --- kfuncs: programs of any design read/write kernel buffers by (ring fd, index, offset) ----
def _kbuf_copy_kfunc(rt, ring_fd: int, index: int, offset: int, mem: int, length: int,
                     to_buffer: bool) -> int:
    """The shared body of bpf_kbuf_read/bpf_kbuf_write: import_fixed's checks, then copy.

    ``mem`` must be memory the program may touch (checked against ``rt.mem``, which holds
    the interpreter's stack and the object's maps); the buffer side is checked against the
    table (range and direction, -EFAULT), like a KFIXED descriptor of IORING_OP_BPF.
    """
    from ..bpf.memory import BpfMemoryError
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


def _register_kfuncs() -> None:
    from ..bpf import helpers as H
    if "bpf_kbuf_read" in H.KFUNCS:
        return
    A = H.Arg

    @H.kfunc("bpf_kbuf_read", (A.SCALAR, A.SCALAR, A.SCALAR, A.UNINIT_MEM, A.CONST_SIZE))
    def bpf_kbuf_read(rt, ring_fd, index, offset, dst, length):
        """int bpf_kbuf_read(u32 ring_fd, u32 buf_index, u64 offset, void *dst, u32 len):
        copy from a registered buffer (must be a source: a WRITE request's pages)."""
        return _kbuf_copy_kfunc(rt, ring_fd, index, offset, dst, length, False)

    @H.kfunc("bpf_kbuf_write", (A.SCALAR, A.SCALAR, A.SCALAR, A.MEM, A.CONST_SIZE))
    def bpf_kbuf_write(rt, ring_fd, index, offset, src, length):
        """int bpf_kbuf_write(u32 ring_fd, u32 buf_index, u64 offset, const void *src, u32 len):
        copy into a registered buffer (must be a destination: a READ request's pages)."""
        return _kbuf_copy_kfunc(rt, ring_fd, index, offset, src, length, True)


_register_kfuncs()
