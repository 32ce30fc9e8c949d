"""The sparse buffer table with the merged 6.15 kernel-buffer semantics.

``KbufTable`` mirrors a ring's kernel table (IORING_REGISTER_BUFFERS2 sparse +
BUFFERS_UPDATE) and keeps what the kernel would know about *kernel* buffers: direction,
length, references, release callbacks. ``attach_table`` applies its rules to a general
``uringbpf.Ring`` through an SQE filter.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import os
import threading
import weakref
from ctypes import sizeof
from typing import Callable

from ...uring import syscalls
from ...uring import uapi as u
from ...uring.buffers import buffer_address
from ...uring.syscalls import read_user as _read_user
from .nativelib import kb_lib
from .uapi import IORING_MAX_REG_BUFFERS, KBUF_DIR_BOTH, KBUF_DIR_DEST, KBUF_DIR_SOURCE

_FIXED_OPS = {u.IORING_OP_READ_FIXED: KBUF_DIR_DEST, u.IORING_OP_WRITE_FIXED: KBUF_DIR_SOURCE,
              u.IORING_OP_READV_FIXED: KBUF_DIR_DEST, u.IORING_OP_WRITEV_FIXED: KBUF_DIR_SOURCE}
_VECTORED = {u.IORING_OP_READV_FIXED, u.IORING_OP_WRITEV_FIXED}
# a slot as kbuf.c's submit path sees it (KB_SLOT_* there)
_SLOT_PLAIN, _SLOT_KERNEL, _SLOT_STALE = 0, 1, 2


# --- the buffer table --------------------------------------------------------------------
class KbufNode:
    """One registered buffer: address, length, direction mask and a reference count.

    The table holds one reference while the slot names the node; every in-flight op (and
    every KFIXED user) holds one more. When the count reaches zero ``release`` runs: for a
    request buffer that drops the request's reference, as ``imu->release`` does in the kernel.
    The count lives in ``kbuf.c`` (node ``nid`` of the table's context), where the submit and
    completion paths take and drop the references of in-flight ops without Python.
    """

    __slots__ = ("addr", "length", "direction", "kernel", "release", "owner", "nid", "_table")

    def __init__(self, addr: int, length: int, direction: int, kernel: bool,
                 release: Callable[[], None] | None = None, owner=None, *, nid: int = -1,
                 table: "KbufTable | None" = None):
        self.addr, self.length, self.direction, self.kernel = addr, length, direction, kernel
        # the table, not its bare context: a node kept by a caller keeps the C context alive
        self.release, self.owner, self.nid, self._table = release, owner, nid, table

    @property
    def refs(self) -> int:
        """References held on the node (0 once released)."""
        if self._table is None:
            return 0
        return max(0, kb_lib().kb_node_refs(self._table.ctx, self.nid))


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
        lib = kb_lib()
        self.ctx = lib.kb_ctx_new(nr)
        if not self.ctx:
            raise MemoryError("kbuf table context")
        # freed with the table object, never earlier: nodes and in-flight ops name it
        weakref.finalize(self, lib.kb_ctx_free, self.ctx)
        #: node id -> node, for every node with references left (release runs at zero)
        self._live: dict[int, KbufNode] = {}
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
            self._sync(index)
        return ret

    def _sync(self, index: int) -> None:
        """Mirror slot ``index`` into kbuf.c (what its submit path imports or refuses)."""
        node = self.nodes[index]
        if node is not None and node.kernel:
            kind, nid = _SLOT_KERNEL, node.nid
        else:
            kind = _SLOT_STALE if node is None and self.pinned[index] is not None else _SLOT_PLAIN
            nid = -1
        kb_lib().kb_slot_set(self.ctx, index, nid, kind)

    def _new_node(self, addr: int, length: int, direction: int, kernel: bool,
                  release: Callable[[], None] | None, owner) -> KbufNode:
        nid = kb_lib().kb_node_new(self.ctx, addr, length, direction)
        if nid < 0:
            raise MemoryError("kbuf node pool")
        node = KbufNode(addr, length, direction, kernel, release, owner, nid=nid, table=self)
        self._live[nid] = node
        return node

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
            # node and slot in one call (the per-I/O path of zero copy)
            nid = kb_lib().kb_slot_install(self.ctx, index, addr, length, direction)
            if nid < 0:
                raise MemoryError("kbuf node pool")
            node = KbufNode(addr, length, direction, True, release, owner, nid=nid, table=self)
            self._live[nid] = node
            self.nodes[index] = node
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
            # empty the slot and drop the table's reference in one call
            left = kb_lib().kb_slot_drop(self.ctx, index, _SLOT_PLAIN if self.pinned[index]
                                         is None else _SLOT_STALE, node.nid)
        if left == 0:
            self._released(node.nid)
        return 0

    def register_user(self, index: int, buffer) -> int:
        """Put an ordinary user buffer in a slot (``io_uring_register_buffers_update_tag``).

        Returns 0, -EINVAL (out of range) or -EBUSY (the slot holds a kernel buffer).
        """
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
            self.nodes[index] = self._new_node(addr, length, KBUF_DIR_BOTH, False, None, keep)
            self._sync(index)
        if old is not None:
            self.put(old)
        return 0

    def unregister_user(self, index: int) -> int:
        """Empty a slot holding a user buffer: 0, -EINVAL (out of range or a kernel buffer)."""
        with self.lock:
            if not 0 <= index < len(self.nodes) or self.nodes[index] is None:
                return -errno.EINVAL
            if self.nodes[index].kernel:
                return -errno.EBUSY
            old = self.nodes[index]
            self._pin(index, 0, 0)
            self.nodes[index] = None
            self._sync(index)
        self.put(old)
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
        """True when slot ``index`` holds a kernel (request) buffer."""
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
            kb_lib().kb_node_get(self.ctx, node.nid)
            return node, node.addr + offset

    def get(self, node: KbufNode) -> None:
        """Take one more reference on ``node`` (an op in flight, a KFIXED user)."""
        with self.lock:
            if kb_lib().kb_node_get(self.ctx, node.nid) < 0:
                raise ValueError("the node was already released")

    def put(self, node: KbufNode) -> None:
        """Drop a reference on ``node``; the last one runs its release callback."""
        with self.lock:
            left = kb_lib().kb_node_put(self.ctx, node.nid)
            if left < 0:
                raise ValueError("the node was already released")
        if left == 0:
            self._released(node.nid)

    def _released(self, nid: int) -> None:
        """Node ``nid`` lost its last reference (in :meth:`put` or in kbuf.c's CQ reap)."""
        node = self._live.pop(nid)
        if node.release is not None:
            node.release()

    def close(self) -> None:
        """Ring teardown (io_rsrc_data_free): drop the table's reference on every slot."""
        if _by_fd.get(self.ring_fd) is self:
            del _by_fd[self.ring_fd]
        with self.lock:
            nodes, self.nodes = self.nodes, [None] * len(self.nodes)
            for index in range(len(self.nodes)):
                self._sync(index)
        for node in nodes:
            if node is not None:
                self.put(node)


def _register(fd: int, opcode: int, arg: int, nr: int) -> int:
    return syscalls.io_uring_register(fd, opcode, arg, nr)


_tables: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
#: ring fd -> its table, for programs (kfuncs name a ring by its fd, as IORING_OP_BPF does)
_by_fd: "weakref.WeakValueDictionary[int, KbufTable]" = weakref.WeakValueDictionary()


def table_by_fd(ring_fd: int) -> KbufTable | None:
    """The KbufTable of the ring with fd ``ring_fd``, or None."""
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
