"""``KbufRing``: the server's ring, with the kernel-buffer rules on its submit and
completion paths (see the package docstring)."""

from __future__ import annotations

import collections
import ctypes
import errno
import os
from ctypes import c_uint32
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...uring import uapi as u
from ...uring.ring import deny_sqe
from ...uring.kernel import KernelBackend
from .table import _FIXED_OPS, _VECTORED, KbufTable, import_vec
from .uapi import UblksrvIoCmd

if TYPE_CHECKING:
    from .source import RequestSource


# --- the server ring ---------------------------------------------------------------------
@dataclass(slots=True)
class KbufCompletion:
    """A CQE after the kbuf layer's completion processing (copied out of the CQ)."""

    user_data: int
    res: int
    flags: int


_ZERO_SQE = bytes(64)
_TOKEN_BASE = 0xFFFF << 48      # user_data values the ring uses for its own bookkeeping
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
        self._ready: collections.deque[KbufCompletion] = collections.deque()
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
        """Free SQEs (io_uring_sq_space_left)."""
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
        sqe.flags = flags
        sqe.user_data = user_data
        deny_sqe(sqe, res, _NOP_KEEP_FLAGS)  # a NOP has no file and no buffer group

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
                self._ready.append(KbufCompletion(ud, res, fl))
                continue
            if pend.node is not None:
                self.kbuf.put(pend.node)
            if pend.deferred is not None and res >= 0:
                res = pend.deferred()
            if not (pend.skip_success and res >= 0):
                self._ready.append(KbufCompletion(pend.user_data, res, fl))

    def peek_cqe(self) -> KbufCompletion | None:
        """The next completion after the kbuf layer's CQE processing, or None (no wait)."""
        if not self._ready:
            self._reap()
        return self._ready.popleft() if self._ready else None

    def wait_cqe(self, timeout: float | None = None) -> KbufCompletion | None:
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
