"""The native engine of the BPF-requests design (``designs/requests/requests.c``).

Same behaviour as :class:`~.requests.RequestsEngine` (the tests run both), but the state
— tokens, requests, the ready/parked queues, CQ 0's backlog — lives in C, and one
``rq_pump()`` call drains the kernel CQ, routes CQEs, wakes parked requests and runs
programs.  With JIT programs (their helpers bound to the C twins) no Python runs per
CQE: Python only decides when to pump and when to block in ``io_uring_enter``.

Interpreted programs still work: C calls them through a ctypes trampoline.
"""

from __future__ import annotations

import ctypes
import errno
import threading
import time
from ctypes import POINTER, c_int, c_int32, c_uint32, c_uint64, c_void_p
from typing import Any, Sequence

from pathlib import Path

from ... import native
from ...bpf.memory import BpfRuntimeError
from ...callbacks import barrier, route_escapes
from . import engine as R

#: The C of this engine (built by :func:`uringbpf.native.load` on first use).
NATIVE_SOURCE = Path(__file__).resolve().with_name("requests.c")

_PROG_FN = ctypes.CFUNCTYPE(c_uint64, c_uint64, c_uint64, c_uint64, c_uint64, c_uint64)
_SUBMIT_FN = ctypes.CFUNCTYPE(ctypes.c_int64, c_uint64)
class RqCqDesc(ctypes.Structure):
    """One CQ as the native engine sees it: address, entries, overflow policy."""
    _fields_ = [("addr", c_uint64), ("entries", c_uint32), ("keep_overflow", c_uint32)]


def _set_prototypes(L: ctypes.CDLL) -> None:
    L.rq_create.restype = c_void_p
    L.rq_create.argtypes = [c_int, c_uint32, c_uint32, POINTER(c_uint32), c_uint32,
                            POINTER(RqCqDesc), c_uint64, c_uint64, c_uint64, c_uint32,
                            c_uint64, c_uint64, c_uint64, c_uint64, c_uint32, c_uint32, c_int]
    for name in ("rq_pool_addr",):
        getattr(L, name).restype = c_uint64
        getattr(L, name).argtypes = [c_void_p]
    L.rq_pool_size.restype = c_uint64
    L.rq_req_size.restype = c_uint64
    L.rq_set_slots.argtypes = [c_void_p, c_uint32, POINTER(c_uint64), POINTER(c_uint64),
                               POINTER(c_int32)]
    L.rq_filter.argtypes = [c_void_p, c_uint64]
    L.rq_filter.restype = c_int
    L.rq_pump.argtypes = [c_void_p, c_uint32, c_int]
    L.rq_pump.restype = c_int
    L.rq_wait.argtypes = [c_void_p, c_uint32, c_uint32, c_uint32, ctypes.c_int64]
    L.rq_wait.restype = c_int
    L.rq_cancel_all.argtypes = [c_void_p, c_int32, c_int]
    L.rq_close.argtypes = [c_void_p]
    L.rq_request_close.argtypes = [c_void_p]
    L.rq_request_close.restype = None
    L.rq_destroy.argtypes = [c_void_p]
    L.rq_cq_flush.argtypes = [c_void_p, c_uint32]
    L.rq_emit.argtypes = [c_void_p, c_uint32, c_uint64, c_int32, c_uint32]
    for name in ("rq_kernel_seen", "rq_live", "rq_tags", "rq_take_sq_queued",
                 "rq_parked_count"):
        getattr(L, name).restype = c_uint32
        getattr(L, name).argtypes = [c_void_p]
    for name in ("rq_faulted_slot", "rq_ready_count"):
        getattr(L, name).restype = c_int32
        getattr(L, name).argtypes = [c_void_p]
    L.rq_stats.argtypes = [c_void_p, POINTER(c_uint64)]
    native.set_register_prototypes(L, ("rq_h_queue_sqe", "rq_h_emit_cqe", "rq_h_reap_cqe",
                                       "rq_h_copy_to_user"))
    L.rq_set_py_fallback.argtypes = [c_uint32, c_uint64]
    L.rq_set_py_submit.argtypes = [c_void_p, c_uint64]
    L.rq_set_stop.argtypes = [c_void_p, c_uint64]
    if L.rq_req_size() > R.CTX_BUF_SIZE:
        raise RuntimeError("designs/requests/requests.c struct rq_req outgrew CTX_BUF_SIZE")


def lib() -> ctypes.CDLL:
    """The loaded designs/requests/requests.c (built on first use), with its prototypes."""
    return native.load(NATIVE_SOURCE, configure=_set_prototypes)


def _resync_sq(ring) -> None:
    """The C helper queued SQEs at the kernel SQ tail: move the ring's local tail along
    (valid because we only pump with no application SQE pending, see
    :meth:`NativeRequestsEngine.pump`)."""
    ring.sync_sq_tail()


class NativeRequestsEngine(R.RequestsEngine):
    """:class:`RequestsEngine` whose state and completion loop are in designs/requests/requests.c."""

    def __init__(self, ring, nr_cq: int = 0, cq_sizes: Sequence[int] | None = None, **options):
        self._e = None
        L = lib()
        super().__init__(ring, nr_cq, cq_sizes, **options)
        descs = (RqCqDesc * len(self.cqs))()
        for i, cq in enumerate(self.cqs):
            descs[i] = RqCqDesc(cq.addr, cq.entries, int(cq.keep_overflow))
        co = ring.params.cq_off
        offs = (c_uint32 * 6)(co.head, co.tail, co.ring_mask, co.ring_entries, co.overflow,
                              co.cqes)
        self._e = L.rq_create(ring.fd, ring.params.flags, self.cqe_size, offs, len(self.cqs),
                              descs, ring.cq_head_addr, ring.cq_tail_addr, ring.cqes_addr,
                              ring.cq_mask, ring.sq_head_addr, ring.sq_tail_addr,
                              ring.sq_array_addr, ring.kernel_sqes_addr, ring.sq_entries,
                              ring.sqe_size, int(self.serialize))
        if not self._e:
            raise MemoryError("rq_create failed")
        self._L = L
        L.rq_set_stop(self._e, ctypes.addressof(R.STOP))
        for cq in self.cqs:
            cq.flush_hook = (lambda i=cq.index: L.rq_cq_flush(self._e, i))
        self.pool_addr = L.rq_pool_addr(self._e)
        self.pool_size = L.rq_pool_size()
        R._NATIVE_POOLS[self.pool_addr] = self.pool_size
        self._keep: list = []
        self._py_submit = _SUBMIT_FN(barrier(self._submit_through_ring, _held_as_eintr))
        self._py_submit_on = False

    @property
    def native(self) -> bool:
        """True: requests run in native code."""
        return True

    # -- statistics and state, from C
    @property
    def stats(self) -> dict:
        """Counters: runs, completed, cancelled, kernel_cqes, faults, dropped."""
        if self._e is None:
            return self.__dict__.get("_py_stats", {})
        out = (c_uint64 * 6)()
        self._L.rq_stats(self._e, out)
        return {"runs": out[0], "completed": out[1], "cancelled": out[2],
                "kernel_cqes": out[3], "faults": out[4], "dropped": out[5]}

    @stats.setter
    def stats(self, value: dict) -> None:
        self.__dict__["_py_stats"] = value

    @property
    def busy(self) -> bool:
        """True if requests are ready to run."""
        return self._L.rq_ready_count(self._e) > 0

    def tokens_in_flight(self) -> int:
        """Kernel requests submitted on behalf of BPF requests and not completed."""
        return self._L.rq_tags(self._e)

    def nr_parked(self) -> int:
        """Number of requests waiting for a CQE."""
        return self._L.rq_parked_count(self._e)

    def parked(self) -> list:
        """Placeholders, one per parked request (the native engine keeps no Python objects)."""
        return [None] * self.nr_parked()

    def pending(self) -> int:
        """Requests not yet completed."""
        return self._L.rq_live(self._e) if self._e else 0

    # -- submit path
    def _on_sqe(self, sqe) -> int:
        if self._closed or self._e is None:
            return 0
        return self._L.rq_filter(self._e, R._sqe_address(sqe))

    # -- registration
    def register_bpf(self, programs: Sequence[Any], engine: str = "interp") -> int:
        """Register the programs (as the Python engine) and hand their entry points to native
        code."""
        ret = super().register_bpf(programs, engine)
        if ret:
            return ret
        n = len(self.slots)
        entries, words, sleepable = (c_uint64 * n)(), (c_uint64 * n)(), (c_int32 * n)()
        for i, slot in enumerate(self.slots):
            if slot is None:
                continue
            entries[i], words[i] = self._entry_for(slot)
            sleepable[i] = int(slot.sleepable)
            mem = getattr(slot.runtime, "mem", None)
            if mem is not None:
                try:
                    reg = mem.add(self.pool_addr, self.pool_size, True, "bpf_request_pool")
                    slot.__dict__.setdefault("_cq_regions", []).append(reg)
                except ValueError:
                    pass
            fn = self._jit_function(slot)
            if fn is not None and getattr(fn, "checked", False):
                fn.refresh_regions()
        return self._L.rq_set_slots(self._e, n, entries, words, sleepable)

    @staticmethod
    def _jit_function(slot):
        prog = slot.program
        if getattr(prog, "engine", None) == "jit":
            return prog.jit
        runner = slot.call
        return getattr(runner, "_fn", None)

    def _entry_for(self, slot) -> tuple[int, int]:
        """(native entry, address of its error word) for one slot."""
        fn = self._jit_function(slot)
        if fn is not None:
            return fn.address, fn.error_address
        word = c_uint64(0)
        call, errors = slot.call, self.errors

        def trampoline(ctx, _r2, _r3, _r4, _r5, _call=call):
            _call(ctx)
            return 0

        def failed(exc: BaseException, _args: tuple, _word=word) -> int:
            if isinstance(exc, KeyboardInterrupt):   # raised again once C has returned
                R.hold_interrupt(exc)
            else:                                    # the request completes with -EFAULT
                errors.append(exc)
                _word.value = 1
            return 0

        cb = _PROG_FN(barrier(trampoline, failed))
        self._keep.append((cb, word))
        return ctypes.cast(cb, c_void_p).value, ctypes.addressof(word)

    def unregister_bpf(self) -> int:
        """Unregister the programs here and in native code."""
        ret = super().unregister_bpf()
        if ret == 0:
            self._L.rq_set_slots(self._e, 0, None, None, None)
        return ret

    def _cancel_all(self, res: int, post: bool) -> None:
        self._L.rq_cancel_all(self._e, res, int(post))

    # -- program SQEs when other designs filter the ring in Python
    def _submit_through_ring(self, sqe_ptr: int) -> int:
        return self.queue_sqe(ctypes.string_at(sqe_ptr, 64))

    def _sync_filters(self) -> None:
        """Programs' SQEs must take the ring's filter path (C then submits through the ring)
        when C's own ``io_uring_enter`` (flush_sq in requests.c) would get around it:

        * a design other than ours filters in Python (e.g. the 7.0 cBPF filters);
        * the kernel SQ still holds SQEs the filters have not seen: a refused SQE ended
          the last batch and the rest wait for the next enter (uring/ring.py,
          ``_filter_slots``).  The kernel consumes from its SQ head, so C's enter would
          hand those to the kernel unfiltered (not denied, not routed to their CQ).
        """
        ring = self.ring
        through_ring = (any(f != self._on_sqe for f in ring.sqe_filters)
                        or (not ring.sq_rewind and ring.sq_ready() > 0))
        if through_ring != self._py_submit_on:
            addr = ctypes.cast(self._py_submit, c_void_p).value if through_ring else 0
            self._L.rq_set_py_submit(self._e, addr)
            self._py_submit_on = through_ring

    # -- the completion loop
    def pump(self, max_runs: int | None = None) -> int:
        """Run ready requests in native code (at most ``max_runs``); returns how many ran."""
        if self._closed or self._pumping or self._e is None:
            return 0
        budget = self.max_runs_per_enter if max_runs is None else max_runs
        ring, L = self.ring, self._L
        self._pumping = True
        me = threading.get_ident()
        self._waiters.append(me)        # close() from another thread waits for rq_pump
        try:
            if not ring.sq_rewind and ring.sq_ready():
                ring.submit()     # the C helper writes at the kernel tail: go after these
            self._sync_filters()
            advance = not ring.inflight_count
            head = self._k_head.value
            with route_escapes():
                runs = L.rq_pump(self._e, budget, int(advance))
            if not advance:
                n = (L.rq_kernel_seen(self._e) - head) & 0xFFFFFFFF
                if n:
                    self._k_advance(n)
            return self._after_native(runs)
        finally:
            self._pumping = False
            self._waiters.remove(me)

    def _after_native(self, ret: int) -> int:
        """Bring Python up to date after C ran programs: SQ tail, faults, interrupts."""
        L = self._L
        if L.rq_take_sq_queued(self._e):
            _resync_sq(self.ring)
        if ret == -1:
            self._record_fault(L.rq_faulted_slot(self._e))
            ret = 0
        R.raise_pending()
        return ret

    def wait(self, nr: int = 1, cq_idx: int = 0, timeout: float | None = None) -> int:
        """As :meth:`RequestsEngine.wait`, with the blocking loop in C (rq_wait)."""
        self._check_open()
        with self._waiting():
            return self._wait(nr, cq_idx, timeout)

    def _wait(self, nr: int, cq_idx: int, timeout: float | None) -> int:
        cq = self.cq(cq_idx)
        ring, L = self.ring, self._L
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._check_closing()
            self.pump()
            if cq.ready() >= nr:
                return 0
            if ring.inflight_count or (not ring.sq_rewind and ring.sq_ready()):
                return super().wait(nr, cq_idx, None if deadline is None
                                    else max(deadline - time.monotonic(), 0.0))
            left = -1 if deadline is None else int((deadline - time.monotonic()) * 1e9)
            if deadline is not None and left <= 0:
                return -errno.ETIME
            self._pumping = True
            try:
                self._sync_filters()
                with route_escapes():
                    ret = L.rq_wait(self._e, cq_idx, nr, self.max_runs_per_enter, left)
                ret = self._after_native(ret)
            finally:
                self._pumping = False
            if ret == 0 and cq.ready() >= nr:
                return 0
            if ret == -errno.ECANCELED and self._closing:
                self._check_closing()
            if ret == -errno.ETIME:
                return 0 if cq.ready() >= nr else -errno.ETIME
            if ret < 0 and ret not in (-errno.EINTR, -errno.EAGAIN):
                raise OSError(-ret, f"io_uring_enter: {errno.errorcode.get(-ret, ret)}")

    def _record_fault(self, index: int) -> None:
        slot = self.slots[index] if self.slots and 0 <= index < len(self.slots) else None
        exc = None
        fn = self._jit_function(slot) if slot is not None else None
        if fn is not None:
            exc = fn.take_error()
        if exc is None and fn is None:
            return          # a Python trampoline already recorded it
        if isinstance(exc, KeyboardInterrupt):
            R.hold_interrupt(exc)
            return
        self.errors.append(exc or BpfRuntimeError(f"program in slot {index} faulted"))

    def _end_waits(self) -> None:
        if self._e is not None and any(t != threading.get_ident() for t in self._waiters):
            self._L.rq_request_close(self._e)     # ends rq_wait within one wait slice
        super()._end_waits()

    def close(self) -> None:
        """Release the native engine, then the Python side (idempotent)."""
        if self._closed:
            return
        self._end_waits()
        if self._e is not None:
            self._L.rq_close(self._e)
        super().close()

    def __del__(self) -> None:
        e, self._e = getattr(self, "_e", None), None
        if e:
            R._NATIVE_POOLS.pop(getattr(self, "pool_addr", 0), None)
            self._L.rq_destroy(e)


def native_helper(name: str):
    """A C helper of designs/requests/requests.c, for the Python implementations to call."""
    return getattr(lib(), name)


def install_native_twins(helpers_table: dict) -> None:
    """Bind helpers 164-167 to their C twins; when the C is first loaded (by the JIT or
    by an engine), it gets the Python fallbacks. Compiles nothing now."""
    for hid, sym in ((R.BPF_FUNC_iouring_queue_sqe, "rq_h_queue_sqe"),
                     (R.BPF_FUNC_iouring_emit_cqe, "rq_h_emit_cqe"),
                     (R.BPF_FUNC_iouring_reap_cqe, "rq_h_reap_cqe"),
                     (R.BPF_FUNC_copy_to_user, "rq_h_copy_to_user")):
        helpers_table[hid].native = (NATIVE_SOURCE, sym)
    impls = {hid: helpers_table[hid].impl for hid in (
        R.BPF_FUNC_iouring_queue_sqe, R.BPF_FUNC_iouring_emit_cqe, R.BPF_FUNC_iouring_reap_cqe)}
    # prototypes first (rq_set_py_fallback takes a pointer), however the C is first loaded
    native.add_configure(NATIVE_SOURCE, _set_prototypes)
    native.add_configure(NATIVE_SOURCE, lambda L: _set_fallbacks(L, impls))


def _set_fallbacks(L, impls: dict) -> None:
    for which, hid in enumerate((R.BPF_FUNC_iouring_queue_sqe, R.BPF_FUNC_iouring_emit_cqe,
                                 R.BPF_FUNC_iouring_reap_cqe)):
        impl = impls[hid]

        def fallback(a1, a2, a3, a4, a5, _impl=impl):
            return int(_impl(None, a1, a2, a3, a4, a5)) & 0xFFFFFFFFFFFFFFFF

        cb = _PROG_FN(barrier(fallback, _held_as_efault))
        _FALLBACKS.append(cb)
        L.rq_set_py_fallback(which, ctypes.cast(cb, c_void_p).value)


_FALLBACKS: list = []


def _held_as_eintr(exc: BaseException, _args: tuple) -> int:
    """A program's SQE submitted through the ring raised: raised again once C has returned."""
    R.hold_interrupt(exc)
    return -errno.EINTR


def _held_as_efault(exc: BaseException, _args: tuple) -> int:
    """A Python helper fallback raised: the helper fails, the exception is raised after the run."""
    R.hold_interrupt(exc)
    return (-errno.EFAULT) & 0xFFFFFFFFFFFFFFFF
