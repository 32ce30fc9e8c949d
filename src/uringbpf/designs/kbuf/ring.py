"""``KbufRing``: the server's ring, with the kernel-buffer rules on its submit and
completion paths (see the package docstring)."""

from __future__ import annotations

import collections
import ctypes
import errno
import os
import struct
from ctypes import c_uint32
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...uring import uapi as u
from ...uring.kernel import KernelBackend
from .nativelib import kb_lib
from .table import KbufTable
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
# user_data values with the top 16 bits set are the ring's own tokens (KB_TOKEN_BASE in
# kbuf.c); a rewritten NOP keeps the link/drain/async/skip flags (KB_NOP_KEEP there)
_LINK_FLAGS = u.IOSQE_IO_LINK | u.IOSQE_IO_HARDLINK
#: flags, fd, cmd_op, addr, user_data of an SQE (offsets 1, 4, 8, 16, 32)
_SQE_HEAD = struct.Struct("<xB2xiI4xQ8xQ")


# kb_reap's record kinds (KB_REC_* in kbuf.c) and its batch size
_REC_CQE, _REC_DEFERRED, _REC_RELEASE = 0, 1, 2
_REAP_BATCH = 256


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
        #: token -> the command a linked chain runs when it reaches it (UNREGISTER_IO_BUF)
        self._deferred: dict[int, "collections.abc.Callable[[], int]"] = {}
        self._diverters: dict[int, "RequestSource"] = {}
        self.kbuf = KbufTable(self.fd, buffers)
        # The per-SQE and per-CQE kernel-buffer work (import of fixed ops, references held
        # until the CQE, tokens) runs in kbuf.c once per batch, on the table's context.
        self._lib = kb_lib()
        self._ctx = self.kbuf.ctx
        self._lib.kb_ring_attach(self._ctx, self._b.sqes_addr, self._sq_array, self._sq_mask,
                                 ctypes.addressof(self._cq_head), ctypes.addressof(self._cq_tail),
                                 self._cq_mask, self._cqes)
        self._recs = (ctypes.c_int64 * (5 * _REAP_BATCH))()
        self._rec_view = memoryview(self._recs).cast("B").cast("q")
        self._reaping = 0
        self.closed = False
        self._ncmd = 0                 # diverted commands (a plain int: per-I/O path)

    @property
    def stats(self) -> collections.Counter:
        """Counters: ``uring_cmd`` (diverted commands), ``kbuf_import`` (fixed ops on kernel
        buffers translated), ``kbuf_refused`` (fixed ops refused with an errno)."""
        return +collections.Counter(uring_cmd=self._ncmd,
                                    kbuf_import=self._lib.kb_stat(self._ctx, 0),
                                    kbuf_refused=self._lib.kb_stat(self._ctx, 1))

    # -- SQ side
    def get_sqe(self) -> u.Sqe | None:
        """A zeroed SQE in the kernel's SQE array, or None if the SQ is full."""
        if self.closed:
            raise ValueError("ring is closed")   # its SQ/CQ mappings are gone
        if self._tail - self._sq_head.value >= self._sq_entries:
            return None
        idx = self._tail & self._sq_mask
        self._sqe_mem[idx * 64:idx * 64 + 64] = _ZERO_SQE
        self._tail += 1
        return u.Sqe.from_address(self._b.sqes_addr + idx * 64)

    def queue_sqe_bytes(self, raw: bytes) -> bool:
        """Queue a whole 64-byte SQE given as bytes (one copy into the SQ; False if full).

        For servers that keep prepared commands as bytes (``struct.pack``) instead of filling
        a ctypes SQE field by field: the submit path treats it like any other SQE.
        """
        if self.closed:
            raise ValueError("ring is closed")
        if self._tail - self._sq_head.value >= self._sq_entries:
            return False
        if len(raw) != 64:
            raise ValueError("an SQE is 64 bytes")
        idx = self._tail & self._sq_mask
        self._sqe_mem[idx * 64:idx * 64 + 64] = raw
        self._tail += 1
        return True

    def sq_space_left(self) -> int:
        """Free SQEs (io_uring_sq_space_left)."""
        if self.closed:
            raise ValueError("ring is closed")
        return self._sq_entries - (self._tail - self._sq_head.value)

    def register_source(self, source: "RequestSource") -> None:
        """Route URING_CMD SQEs on ``source.char_fd`` to ``source`` (its command channel)."""
        if self._lib.kb_divert_add(self._ctx, source.char_fd) < 0:
            raise ValueError("too many request sources on one ring")
        self._diverters[source.char_fd] = source
        source._rings.add(self)

    def _divert(self, pos: int) -> None:
        """Run the URING_CMD at SQ position ``pos`` on its request source; the SQE becomes
        a NOP (kb_nop) that completes in SQ order, or is skipped when the source parks it."""
        off = (pos & self._sq_mask) * 64
        flags, fd, cmd_op, addr, user_data = _SQE_HEAD.unpack_from(self._sqe_mem, off)
        cmd = UblksrvIoCmd.from_buffer_copy(self._sqe_mem, off + u.SQE_CMD_OFFSET)
        kind, value = self._diverters[fd].handle_cmd(self, cmd_op, cmd, addr, user_data, flags)
        self._ncmd += 1
        if kind == "done":        # completed at issue: the kernel posts it in SQ order
            self._lib.kb_nop(self._ctx, pos, value, flags, user_data)
        elif kind == "parked":    # the source posts the CQE later (MSG_RING)
            self._lib.kb_nop(self._ctx, pos, 0, u.IOSQE_CQE_SKIP_SUCCESS, user_data)
        else:                     # "deferred": run when the chain reaches it
            token = self._lib.kb_pend_new(self._ctx, user_data, -1,
                                          1 if flags & u.IOSQE_CQE_SKIP_SUCCESS else 0, 1)
            if not token:
                raise MemoryError("kbuf token pool")
            self._deferred[token] = value
            self._lib.kb_nop(self._ctx, pos, 0, flags & ~u.IOSQE_CQE_SKIP_SUCCESS, token)

    def submit(self) -> int:
        """Translate the new SQEs, publish them, io_uring_enter. Returns the kernel's count."""
        return self._submit(0, 0)

    def _submit(self, wait_nr: int, flags: int, timeout: float | None = None) -> int:
        if self.closed:
            raise ValueError("ring is closed")
        n = self._tail - self._flushed
        # kbuf.c publishes the new SQEs and imports fixed ops on kernel buffers in one call;
        # it stops at each URING_CMD for a request source (Python's command channel), whose
        # effect (a registration) the SQEs after it must see.
        pos, end, scan = self._flushed & 0xFFFFFFFF, self._tail & 0xFFFFFFFF, self._lib.kb_scan
        while pos != end:
            pos = scan(self._ctx, pos, end)
            if pos == end:
                break
            self._divert(pos)
            pos = (pos + 1) & 0xFFFFFFFF
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
        # kbuf.c drains the CQ: tokens of imported ops drop their node reference and get the
        # application's user_data back; what is left for Python are the completions, the
        # deferred commands and the release callbacks, in CQ order.
        buf, recs, ready = self._recs, self._rec_view, self._ready
        if self._reaping:
            # a release or deferred callback reaped this ring again: the outer loop still
            # reads its records, so this call gets a buffer of its own
            buf = (ctypes.c_int64 * (5 * _REAP_BATCH))()
            recs = memoryview(buf).cast("B").cast("q")
        self._reaping += 1
        try:
            self._reap_into(buf, recs, ready)
        finally:
            self._reaping -= 1

    def _reap_into(self, buf, recs, ready) -> None:
        while True:
            n = self._lib.kb_reap(self._ctx, buf, _REAP_BATCH)
            for i in range(0, 5 * n, 5):
                kind, ud, res, fl = recs[i], recs[i + 1], recs[i + 2], recs[i + 3]
                if kind == _REC_CQE:
                    ready.append(KbufCompletion(ud & 0xFFFFFFFFFFFFFFFF, res, fl))
                elif kind == _REC_RELEASE:
                    self.kbuf._released(recs[i + 4])
                else:
                    fn = self._deferred.pop(recs[i + 4] & 0xFFFFFFFFFFFFFFFF)
                    if res >= 0:
                        res = fn()
                    if not (fl >> 32 and res >= 0):
                        ready.append(KbufCompletion(ud & 0xFFFFFFFFFFFFFFFF, res,
                                                    fl & 0xFFFFFFFF))
            if n < _REAP_BATCH - 1:
                return

    def peek_cqe(self) -> KbufCompletion | None:
        """The next completion after the kbuf layer's CQE processing, or None (no wait)."""
        if not self._ready:
            if self.closed:
                raise ValueError("ring is closed")   # its CQ mapping is gone
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
        while self._lib.kb_inflight(self._ctx) and deadline:
            self._submit(1, u.IORING_ENTER_GETEVENTS, 0.1)
            self._reap()
            deadline -= 1
        self.closed = True
        for source in list(self._diverters.values()):
            source._ring_closed(self)
        self._diverters.clear()
        self._lib.kb_divert_clear(self._ctx)
        self.kbuf.close()
        self._deferred.clear()
        left = self._lib.kb_inflight(self._ctx)
        released = (ctypes.c_int64 * max(left, 1))()
        for i in range(self._lib.kb_pend_drain(self._ctx, released, left)):
            self.kbuf._released(released[i])
        self._b.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
