"""asyncio on top of a real io_uring: ``await ring.read(...)`` suspends the task, the
ring's completions wake it.

How it fits together (docs/aio.md has the user guide):

* **Submission.** An operation claims an SQE (``Ring.prep_*`` with a fresh ``user_data``;
  read/write/recv/send write theirs in C, native/aioreap.c ``prep_rw``),
  stores one ``asyncio.Future`` under that ``user_data`` and, if it is the first of this
  event-loop iteration, schedules one ``flush`` with ``loop.call_soon``. Every SQE prepared
  during the iteration therefore goes to the kernel in **one** ``io_uring_enter``.
* **Completion.** An eventfd registered with ``IORING_REGISTER_EVENTFD`` is watched with
  ``loop.add_reader``. On readiness: one ``read`` of the eventfd, then every ready CQE is
  reaped by one C loop over the CQ ring memory (native/aioreap.c: the result goes into the
  future there) and the CQ head is advanced once with ``Ring.cq_advance``, which
  also drops the buffers the ring kept alive for those requests. After a flush the CQ is
  reaped too, so requests the kernel completed inline (page-cache reads) wake their tasks
  without waiting for the selector.
* **Cancellation.** When a task awaiting an operation is cancelled, an
  ``IORING_OP_ASYNC_CANCEL`` for its ``user_data`` is queued. The future stays registered
  until the request's own CQE arrives (``-ECANCELED``, or its real result if it won the
  race); the :class:`~uringbpf.uring.ring.Ring` keeps the buffer alive until that CQE is
  reaped, so the kernel never writes into freed memory.
* **Errors.** A negative CQE result ``-errno`` raises ``OSError(errno, strerror)`` (the
  subclass Python picks for that errno, e.g. ``FileNotFoundError``); an operation with
  ``timeout=`` whose linked timeout fired raises ``TimeoutError``.

Streams: :meth:`AioRing.stream` turns a connected socket into an :class:`AioStream`: one
multishot recv into a provided-buffer ring feeds it, writes are queued without a task
wake-up, and its CQEs go to the stream object while the CQ is reaped (no future per CQE).

The designs: :meth:`AioRing.chain` submits ``IORING_OP_BPF`` chains of an
:class:`~uringbpf.designs.ops.OpsRing` (its emulated enter waits for the kernel part of the
chain, so that flush runs in a worker thread while new operations queue), and
:class:`RingThread` runs a ``loop_step`` program (Linux 7.1 loop design) whose native loop
blocks in ``io_uring_enter`` until the program stops, in a dedicated thread that owns the
SINGLE_ISSUER ring.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import errno
import functools
import importlib.machinery
import importlib.util
import os
import socket
import sysconfig
import threading
from collections import deque
from typing import Any, Callable, Coroutine

from . import native
from .uring import buffers as bf
from .uring import uapi as u
from .uring.ring import Ring, RingClosedError, SubmissionQueueFull

__all__ = ["AioRing", "AioStream", "Chain", "RingThread", "open_ring"]

_M32 = 0xFFFFFFFF
_LINK = u.IOSQE_IO_LINK
_CANCELED = -errno.ECANCELED
_OP_READ, _OP_WRITE = u.IORING_OP_READ, u.IORING_OP_WRITE
_OP_RECV, _OP_SEND = u.IORING_OP_RECV, u.IORING_OP_SEND
_TIME = -errno.ETIME
_MORE = u.IORING_CQE_F_MORE
_Future = asyncio.Future
_Socket = socket.socket
_CANCEL_EVERYTHING = u.IORING_ASYNC_CANCEL_ANY | u.IORING_ASYNC_CANCEL_ALL
#: the longest operation timeout: its __kernel_timespec seconds must fit an s64
_MAX_TIMEOUT = float(2 ** 62)


def _error(res: int, what: str) -> OSError:
    """``-errno`` -> the OSError subclass Python uses for that errno."""
    return OSError(-res, f"{what}: {os.strerror(-res)}")


# Buffers of requests still in the kernel when their AioRing was closed: never freed.
_graveyard: list = []

_from_buffer = ctypes.c_char.from_buffer
_addressof = ctypes.addressof


def _buffer(buf: Any, writable: bool, nbytes: int | None) -> tuple[int, int, Any]:
    """(address, length, keep-alive) of ``buf``; the hot path for bytearray/memoryview.

    ``c_char.from_buffer`` refuses read-only and non-contiguous buffers and exports the
    buffer (a bytearray cannot be resized while the keep-alive lives); anything else,
    and empty buffers, take the general path of ``uring.buffers``.
    """
    t = type(buf)
    if t is bytearray or t is memoryview:
        try:
            keep = _from_buffer(buf)
        except (TypeError, ValueError, BufferError):
            addr, n, keep = bf.buffer_address(buf, writable)
        else:
            addr, n = _addressof(keep), len(buf) if t is bytearray else buf.nbytes
    elif t is bf.Buffer:
        addr, n, keep = buf.addr, buf.size, buf.export()
    else:
        addr, n, keep = bf.buffer_address(buf, writable)
    if nbytes is not None:
        if not 0 <= nbytes <= n:
            raise ValueError(f"nbytes={nbytes} but the buffer has {n} bytes")
        n = nbytes
    return addr, n, keep


_native_lock = threading.Lock()
_native_mod: Any = None


def _native() -> Any:
    """The ``_aioreap`` extension (native/aioreap.c: the CQ reaping loop), compiled and
    cached on first use like ``Ring.fast()``'s."""
    global _native_mod
    with _native_lock:
        if _native_mod is None:
            path = str(native.build("aioreap", ["-I", sysconfig.get_paths()["include"]]))
            name = "uringbpf._aioreap"
            loader = importlib.machinery.ExtensionFileLoader(name, path)
            mod = importlib.util.module_from_spec(
                importlib.util.spec_from_file_location(name, path, loader=loader))
            loader.exec_module(mod)
            _native_mod = mod
        return _native_mod


class AioRing:
    """An io_uring driven by the running asyncio event loop.

    ``AioRing(entries=256, *, ring=None, flags=0, backend="auto")``

    * ``entries``: SQ size of the ring created here (the CQ gets twice as many entries);
      more operations than that may be in flight: a full SQ is submitted early.
    * ``ring``: drive an existing :class:`~uringbpf.uring.ring.Ring` instead (it is not
      closed by :meth:`close`); used for design rings such as ``designs.ops.OpsRing``.
    * ``flags``/``backend``: passed to ``Ring`` (``backend="threads"`` works too: the
      thread-pool backend signals the registered eventfd like the kernel does).

    The ring binds to the event loop of its first operation; use it from that loop only.
    Every operation accepts ``timeout=`` (seconds): the request is linked to an
    ``IORING_OP_LINK_TIMEOUT`` and ``TimeoutError`` is raised when it fires.
    """

    def __init__(self, entries: int = 256, *, ring: Ring | None = None, flags: int = 0,
                 backend: str = "auto", notify: str = "auto"):
        if notify not in ("auto", "eventfd", "ring"):
            raise ValueError(f"notify must be 'auto', 'eventfd' or 'ring', not {notify!r}")
        ext = _native()     # built before anything needs closing
        self._native_reap, self._native_prep = ext.reap, ext.prep_rw
        if ring is None:
            if flags & u.IORING_SETUP_SQ_REWIND:
                raise ValueError("AioRing cannot drive an IORING_SETUP_SQ_REWIND ring")
            ring = Ring(entries, cq_entries=2 * entries, flags=flags, backend=backend)
            self._owns_ring = True
        else:
            if ring.closed:
                raise RingClosedError("AioRing(ring=...): the ring is closed")
            if ring.sq_rewind:
                # slots 0..n-1 are rewritten on every submit: not a queue tasks can share
                raise ValueError("AioRing cannot drive an IORING_SETUP_SQ_REWIND ring")
            self._owns_ring = False
        self.ring = ring
        self._closed = False
        # An enter hook that waits (designs.ops.OpsRing with IORING_SETUP_BPF_EXT: the
        # BPF op runs after the kernel part of its chain completed) must not run on the
        # event loop thread.
        self._blocking_enter = getattr(ring, "ops", None) is not None
        # Readiness: the kernel ring fd itself polls readable while CQEs (or deferred
        # completions) wait, which saves the eventfd read per batch and the eventfd signal
        # per CQE. The thread-pool backend has no pollable ring, and a ring whose enter
        # hands batches to a worker thread must not be polled level-triggered while the
        # CQ is left alone: both use the eventfd.
        # A DEFER_TASKRUN ring queues completions as task work that only an enter runs;
        # queueing it signals a registered eventfd but does not wake pollers of the ring
        # fd (a recv that completes later would never wake the loop): eventfd too.
        deferred = bool(ring.backend == "kernel"
                        and ring.kernel_flags & u.IORING_SETUP_DEFER_TASKRUN)
        pollable = ring.backend == "kernel" and not self._blocking_enter and not deferred
        if notify == "auto":
            notify = "ring" if pollable else "eventfd"
        elif notify == "ring" and not pollable:
            if self._owns_ring:
                ring.close()
            raise ValueError("notify='ring' needs a kernel ring without DEFER_TASKRUN whose "
                             "enter does not wait")
        #: how CQ readiness reaches the event loop: ``"ring"`` (the ring fd) or ``"eventfd"``
        self.notify = notify
        self._efd = -1
        if notify == "eventfd":
            self._efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            arg = ctypes.c_int32(self._efd)
            ret = ring.register(u.IORING_REGISTER_EVENTFD, ctypes.addressof(arg), 1)
            if ret < 0:
                os.close(self._efd)
                if self._owns_ring:
                    ring.close()
                raise _error(ret, f"IORING_REGISTER_EVENTFD on a {ring.backend} ring")
        # A word view of the CQ ring (the SQ flags word below) and the addresses the
        # native reaping loop reads, from the documented ring contract; ``_cq_keep`` (a
        # CQE view, which references the mapped region) keeps the mapping alive until
        # _release_ring drops both.
        self._cq_keep = ring.cqe_view(0)
        size = ring.params.cq_off.cqes + ring.cq_entries * ring.cqe_size
        mem = (ctypes.c_char * size).from_address(ring.cq_ring_addr)
        self._cqw = memoryview(mem).cast("B").cast("I")
        self._cq_entries = ring.cq_entries
        off = ring.params.cq_off
        self._reap_args = (ring.cq_ring_addr + off.head, ring.cq_ring_addr + off.tail,
                           ring.cq_ring_addr + off.cqes, ring.cq_mask, ring.cqe_size)
        self._others: list = []         # CQEs the native loop leaves to Python
        # what the native prep_rw needs to claim and write an SQE like Ring.prep_rw
        self._sq_layout = (ring.sq_head_addr, ring.sqes_addr, ring.sq_mask, ring.sq_entries,
                           ring.sqe_size)
        self._late: list = []
        # The SQ flags word lives in the same mapping when the kernel has one mmap for
        # both rings (FEAT_SINGLE_MMAP, Linux 5.4+, and the thread-pool backend).
        single = ring.backend == "threads" or ring.features & u.IORING_FEAT_SINGLE_MMAP
        self._sq_flags_i = ((ring.sq_flags_addr - ring.cq_ring_addr) >> 2) if single else -1
        # DEFER_TASKRUN rings post CQEs only inside io_uring_enter(GETEVENTS).
        self._getevents = bool(ring.kernel_flags & u.IORING_SETUP_DEFER_TASKRUN)
        self._busy = False
        self._idle: asyncio.Event | None = None
        self._deferred_cancels: list[int] = []
        self._futs: dict[int, asyncio.Future] = {}
        # user_data -> the AioStream whose multishot recv or send it is (no future per CQE)
        self._sinks: dict[int, "AioStream"] = {}
        self._bufring: _BufRing | None = None
        # keep-alives of in-flight prep_rw requests, dropped when their CQE is reaped
        self._keeps: dict[int, Any] = {}
        self._ud = 1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_scheduled = False
        # SQEs in flight without a future of their own (cancels, linked timeouts)
        self._untracked = 0
        # Ring.close() of a ring this AioRing drives (its own, or one passed in) ends the
        # AioRing first: otherwise tasks awaiting its CQEs would wait forever (a closed
        # ring fd is never readable again)
        self._close_hook = self._on_ring_close
        ring.add_close_hook(self._close_hook)
        #: ``(user_data, res)`` of the last CQEs that arrived for cancelled operations.
        self.late_completions: deque = deque(maxlen=64)
        #: counters: ``enters`` (flushes that called io_uring_enter), ``wakeups``
        #: (eventfd readiness callbacks), ``reaped`` (CQEs), ``cancels`` (ASYNC_CANCELs sent).
        self.stats = {"enters": 0, "wakeups": 0, "reaped": 0, "cancels": 0}

    # ------------------------------------------------------------------ plumbing
    def _bind(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise RingClosedError("the AioRing is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            if self.notify == "ring":
                self._reader_fd = self.ring.fd
                loop.add_reader(self._reader_fd, self._on_ring)
            else:
                self._reader_fd = self._efd
                loop.add_reader(self._reader_fd, self._on_cq)
        elif self._loop is not loop:
            raise RuntimeError("this AioRing belongs to another event loop")
        return loop

    def _next_ud(self) -> int:
        ud = self._ud
        self._ud = ud + 1
        return ud

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Submit everything prepared in this loop iteration: one io_uring_enter."""
        self._flush_scheduled = False
        if self._closed or self._busy:
            return
        ring = self.ring
        if self._blocking_enter and ring.sq_ready():
            self._flush_in_thread()
            return
        if self._getevents:
            # DEFER_TASKRUN: the same enter submits and runs the deferred completions
            ret = ring.enter(ring.flush_sq(), 0, u.IORING_ENTER_GETEVENTS)
            self.stats["enters"] += 1
        else:
            n = ring.flush_sq()
            ret = ring.enter(n, 0, 0) if n else 0
            if n:
                self.stats["enters"] += 1
        if ret >= 0:
            if ring.sq_ready():     # the kernel took fewer than published: go on next time
                self._schedule_flush()
        elif ret != -errno.EINTR:
            if ret not in (-errno.EAGAIN, -errno.EBUSY):
                self._fail_all(_error(ret, "io_uring_enter"))
                return
            # CQ overflow backlog / no memory: reap, then try again next iteration
            self._schedule_flush()
        self._reap()

    def _flush_in_thread(self) -> None:
        """Submit through a waiting enter hook in a worker thread; meanwhile new
        operations wait for :attr:`_idle` and the CQ is not reaped (the hook rewrites
        CQEs in place while it waits for a chain)."""
        self._busy = True
        if self._idle is None:
            self._idle = asyncio.Event()
        self._idle.clear()
        fut = self._loop.run_in_executor(None, self.ring.submit)
        fut.add_done_callback(self._flushed_in_thread)

    def _flushed_in_thread(self, fut: asyncio.Future) -> None:
        self._busy = False
        self._idle.set()
        if self._closed:
            return
        for ud in self._deferred_cancels:
            if ud in self._futs:
                self._cancel(ud)
        self._deferred_cancels.clear()
        exc = fut.exception()
        if exc is not None:
            self._fail_all(exc)
            return
        self.stats["enters"] += 1
        self._reap()
        if self.ring.sq_ready():
            self._schedule_flush()

    def _submit_now(self) -> None:
        """The SQ is full: submit what is queued before preparing more (never mid-chain)."""
        if self._busy:
            raise SubmissionQueueFull("the SQ is full while an IORING_OP_BPF chain is "
                                      "being submitted; use a larger ring")
        self.ring.submit()
        self.stats["enters"] += 1

    def _on_ring(self) -> None:
        """Ring fd readiness (level-triggered): reap; an empty CQ ends the readiness."""
        self.stats["wakeups"] += 1
        if self._getevents:
            self.ring.enter(0, 0, u.IORING_ENTER_GETEVENTS)
        self._reap()

    def _on_cq(self) -> None:
        """Eventfd readiness: one eventfd read per batch, then reap everything."""
        try:
            os.eventfd_read(self._efd)
        except BlockingIOError:
            pass
        self.stats["wakeups"] += 1
        if not self._busy:
            if self._getevents:
                self.ring.enter(0, 0, u.IORING_ENTER_GETEVENTS)
            self._reap()

    def _reap(self) -> None:
        """Every ready CQE in one native pass over ring memory (futures get their results
        there); one CQ head update."""
        cqw = self._cqw
        while True:
            others, late = self._others, self._late
            n = self._native_reap(*self._reap_args, self._futs, self._keeps, others, late)
            if n:
                if others:
                    sinks = self._sinks
                    for ud, res, fl in others:
                        sink = sinks.get(ud)
                        if sink is None:
                            self._untracked -= 1
                        else:
                            if not fl & _MORE:      # its last CQE
                                del sinks[ud]
                            sink._cqe(ud, res, fl)
                    others.clear()
                if late:
                    self.late_completions.extend(late)
                    late.clear()
                self.stats["reaped"] += n
                self.ring.cq_advance(n)     # also releases the requests' buffers
            # CQEs the kernel could not post while the CQ was full wait in its overflow
            # list until an io_uring_enter(GETEVENTS) flushes them.
            if self._sq_flags_i >= 0:
                if not cqw[self._sq_flags_i] & u.IORING_SQ_CQ_OVERFLOW:
                    if n < self._cq_entries:
                        return
                    continue        # the CQ was full: more may have been posted since
                self.ring.enter(0, 0, u.IORING_ENTER_GETEVENTS)
            elif n < self._cq_entries or self.ring.peek_cqe() is None:
                return

    def _fail_all(self, exc: BaseException) -> None:
        for fut in self._futs.values():
            if not fut.done():
                fut.set_exception(exc)

    def _cancel(self, ud: int) -> None:
        """Ask the kernel to cancel request ``ud``; its CQE still arrives (-ECANCELED)."""
        if self._closed:
            return
        if self._busy:                  # a worker is inside this ring's enter: later
            self._deferred_cancels.append(ud)
            return
        try:
            self.ring.prep_cancel(ud, user_data=self._next_ud())
        except SubmissionQueueFull:
            self._submit_now()
            self.ring.prep_cancel(ud, user_data=self._next_ud())
        self._untracked += 1
        self.stats["cancels"] += 1
        self._schedule_flush()

    async def _wait_idle(self) -> None:
        while self._busy:
            await self._idle.wait()

    def _prep(self, prep: Callable, args: tuple, kw: dict, timeout: float | None) -> int:
        """Claim an SQE (plus one for a linked timeout) and return the op's user_data."""
        if timeout is not None and not 0 <= timeout <= _MAX_TIMEOUT:
            # checked before the SQE is claimed: a linked timeout refused after its
            # request was queued would leave that request linked to the next SQE
            raise ValueError(f"timeout must be in 0..{_MAX_TIMEOUT:g} s, not {timeout!r}")
        ud = self._next_ud()
        ring = self.ring
        if timeout is None:
            try:
                prep(*args, user_data=ud, **kw)
            except SubmissionQueueFull:
                self._submit_now()
                prep(*args, user_data=ud, **kw)
            return ud
        if ring.sq_space_left() < 2:
            self._submit_now()
        prep(*args, user_data=ud, flags=kw.pop("flags", 0) | _LINK, **kw)
        ring.prep_link_timeout(timeout, user_data=self._next_ud())
        self._untracked += 1
        return ud

    async def _op(self, what: str, prep: Callable, args: tuple, kw: dict,
                  timeout: float | None) -> int:
        """The common path of every operation: prep, await the CQE, map errors."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._closed:
            self._bind()
        if self._busy:
            await self._wait_idle()
        ud = self._prep(prep, args, kw, timeout)
        fut = loop.create_future()
        self._futs[ud] = fut
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        try:
            res = await fut
        except asyncio.CancelledError:
            if self._futs.get(ud) is fut:       # the request is still in the kernel
                self._cancel(ud)
            raise
        if res < 0:
            if res == _CANCELED and timeout is not None:
                raise TimeoutError(f"{what}: no completion within {timeout} s")
            raise _error(res, what)
        return res

    async def _rw(self, op: int, fd: Any, buf: Any, writable: bool, nbytes: int | None,
                  offset: int, op_flags: int, what: str, timeout: float | None) -> int:
        """The hot path (read/write/recv/send) in one coroutine frame: the buffer's
        address, one SQE (written in C, or by ``Ring.prep_rw`` for fd objects and linked
        timeouts), one future; the buffer's keep-alive stays in this frame, or in
        :attr:`_keeps` until the CQE is reaped if the await ends first (:meth:`_park`)."""
        # ``_buffer`` inlined for the common case (a whole bytearray or a writable
        # memoryview, no nbytes): a function call per operation is a measurable share
        t = type(buf)
        if nbytes is None and (t is bytearray or t is memoryview):
            try:
                keep = _from_buffer(buf)
            except (TypeError, ValueError, BufferError):
                addr, n, keep = _buffer(buf, writable, None)
            else:
                addr, n = _addressof(keep), len(buf) if t is bytearray else buf.nbytes
        else:
            addr, n, keep = _buffer(buf, writable, nbytes)
        if timeout is not None and not 0 <= timeout <= _MAX_TIMEOUT:
            # checked before the SQE is claimed: a linked timeout refused after its
            # request was queued would leave that request linked to the next SQE
            raise ValueError(f"timeout must be in 0..{_MAX_TIMEOUT:g} s, not {timeout!r}")
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._closed:
            self._bind()
        if self._busy:
            await self._wait_idle()
        if type(fd) is _Socket:
            # Ring.prep_rw converts other fd objects with a Python function call; an int
            # takes its inline range check
            fd = fd.fileno()
        ud = self._ud
        self._ud = ud + 1
        ring = self.ring
        if timeout is None and type(fd) is int:
            # Ring.prep_rw's work in C (the Python version is most of an await's own cost)
            if not self._native_prep(self._sq_layout, ring, op, fd, addr, n, offset, op_flags,
                                     ud):
                self._prep_after_submit(op, fd, addr, n, offset, op_flags, ud)
        elif timeout is None:       # an fd object: Ring.prep_rw converts it
            try:
                ring.prep_rw(op, fd, addr, n, offset, op_flags=op_flags, user_data=ud)
            except SubmissionQueueFull:
                self._submit_now()
                ring.prep_rw(op, fd, addr, n, offset, op_flags=op_flags, user_data=ud)
        else:
            if ring.sq_space_left() < 2:
                self._submit_now()
            ring.prep_rw(op, fd, addr, n, offset, op_flags=op_flags, user_data=ud, flags=_LINK)
            ring.prep_link_timeout(timeout, user_data=self._next_ud())
            self._untracked += 1
        fut = _Future(loop=loop)     # the C future loop.create_future() makes, one call less
        self._futs[ud] = fut
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        # ``keep`` (the buffer's export) lives in this frame while the request is in the
        # kernel (a dict entry per operation less); only when the await ends early is it
        # parked where the request's CQE releases it
        done = False
        try:
            res = await fut
            done = True
        except asyncio.CancelledError:
            if self._futs.get(ud) is fut:       # the request is still in the kernel
                self._cancel(ud)
            raise
        finally:
            if not done and keep is not None:
                self._park(ud, fut, keep)
        if res < 0:
            if res == _CANCELED and timeout is not None:
                raise TimeoutError(f"{what}: no completion within {timeout} s")
            raise _error(res, what)
        return res

    def _prep_after_submit(self, op: int, fd: int, addr: int, n: int, offset: int,
                           op_flags: int, ud: int) -> None:
        """The SQ was full for the native prep: submit what is queued, then prepare."""
        self._submit_now()
        if not self._native_prep(self._sq_layout, self.ring, op, fd, addr, n, offset,
                                 op_flags, ud):
            raise SubmissionQueueFull(f"all {self.ring.sq_entries} SQEs are queued and the "
                                      "kernel took none of them")

    def _park(self, ud: int, fut: asyncio.Future, keep: Any) -> None:
        """An operation's await ended before its CQE was reaped (cancelled, ring closed,
        failed enter): keep its buffer alive until the kernel is done with it."""
        if self._futs.get(ud) is fut:
            self._keeps[ud] = keep      # released when its CQE is reaped
        elif self._closed:
            _graveyard.append(keep)     # closed with the request possibly in the kernel

    # ------------------------------------------------------------------ operations
    # read/write/recv/send are plain functions returning the ``_rw`` coroutine: an
    # ``async def`` wrapper would add a second coroutine frame to create and resume per
    # operation. Nothing runs before the await either way (errors surface when awaited).
    def read(self, fd: Any, buf: Any, offset: int = -1, *, nbytes: int | None = None,
             timeout: float | None = None) -> Coroutine[Any, Any, int]:
        """``await read(fd, buf, offset=-1)``: read into the writable ``buf`` at
        ``offset`` (-1: the file position); returns the byte count."""
        return self._rw(_OP_READ, fd, buf, True, nbytes, offset, 0, "read", timeout)

    def write(self, fd: Any, buf: Any, offset: int = -1, *, nbytes: int | None = None,
              timeout: float | None = None) -> Coroutine[Any, Any, int]:
        """``await write(fd, buf, offset=-1)``: write ``buf`` at ``offset`` (-1: the file
        position); returns the byte count."""
        return self._rw(_OP_WRITE, fd, buf, False, nbytes, offset, 0, "write", timeout)

    async def readv(self, fd: Any, bufs: list, offset: int = -1, *,
                    timeout: float | None = None) -> int:
        """preadv into a list of writable buffers; returns the byte count."""
        return await self._op("readv", self.ring.prep_readv, (fd, bufs, offset), {}, timeout)

    async def writev(self, fd: Any, bufs: list, offset: int = -1, *,
                     timeout: float | None = None) -> int:
        """pwritev of a list of buffers; returns the byte count."""
        return await self._op("writev", self.ring.prep_writev, (fd, bufs, offset), {}, timeout)

    def recv(self, sock: Any, buf: Any, msg_flags: int = 0, *,
             nbytes: int | None = None,
             timeout: float | None = None) -> Coroutine[Any, Any, int]:
        """``await recv(sock, buf)``: recv into the writable ``buf``; returns the byte
        count (0: peer closed)."""
        return self._rw(_OP_RECV, sock, buf, True, nbytes, 0, msg_flags, "recv", timeout)

    def send(self, sock: Any, buf: Any, msg_flags: int = 0, *,
             nbytes: int | None = None,
             timeout: float | None = None) -> Coroutine[Any, Any, int]:
        """``await send(sock, buf)``: send ``buf``; returns the byte count (may be short,
        like send(2))."""
        return self._rw(_OP_SEND, sock, buf, False, nbytes, 0, msg_flags, "send", timeout)

    async def sendall(self, sock: Any, data: Any, *, timeout: float | None = None) -> None:
        """send until every byte of ``data`` went out."""
        view = memoryview(data).cast("B")
        while view:
            n = await self.send(sock, view, timeout=timeout)
            view = view[n:]

    async def accept(self, sock: Any, flags: int = socket.SOCK_CLOEXEC, *,
                     timeout: float | None = None) -> int:
        """accept4(sock, NULL, NULL, flags): the new connection's fd."""
        return await self._op("accept", self.ring.prep_accept, (sock, flags), {}, timeout)

    async def connect(self, sock: Any, address: Any, *, timeout: float | None = None) -> None:
        """connect(sock, address) (``(host, port)`` or an AF_UNIX path)."""
        await self._op("connect", self.ring.prep_connect, (sock, address), {}, timeout)

    async def openat(self, path: Any, flags: int = os.O_RDONLY, mode: int = 0o644, *,
                     dfd: int = -100, timeout: float | None = None) -> int:
        """openat(dfd, path, flags | O_CLOEXEC, mode): the new fd."""
        return await self._op(f"openat {os.fsdecode(path)!r}", self.ring.prep_openat,
                              (path, flags | os.O_CLOEXEC, mode), {"dfd": dfd}, timeout)

    async def close_fd(self, fd: int) -> None:
        """close(fd) through the ring (IORING_OP_CLOSE). (``close()`` closes the ring.)"""
        await self._op("close", self.ring.prep_close, (fd,), {}, None)

    async def fsync(self, fd: Any, *, datasync: bool = False,
                    timeout: float | None = None) -> None:
        """fsync (or fdatasync with ``datasync=True``)."""
        await self._op("fsync", self.ring.prep_fsync,
                       (fd, u.IORING_FSYNC_DATASYNC if datasync else 0), {}, timeout)

    async def nop(self) -> int:
        """A NOP round trip through the ring (returns 0)."""
        return await self._op("nop", self.ring.prep_nop, (), {}, None)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the kernel's clock (IORING_OP_TIMEOUT; its -ETIME is success)."""
        try:
            await self._op("timeout", self.ring.prep_timeout, (seconds,), {}, None)
        except OSError as exc:        # -ETIME: the timeout expired, which is the point
            if exc.errno != errno.ETIME:
                raise

    # ------------------------------------------------------------------ chains
    def chain(self, *, hard: bool = False) -> "Chain":
        """A linked chain of operations (``IOSQE_IO_LINK``; ``hard=True``: HARDLINK)."""
        return Chain(self, hard)

    async def _run_chain(self, chain: "Chain") -> list[int]:
        items = chain._items
        if not items:
            return []
        loop = self._bind()
        ring = self.ring
        if len(items) > ring.sq_entries:
            raise ValueError(f"a chain of {len(items)} does not fit in {ring.sq_entries} SQEs")
        if self._busy:
            await self._wait_idle()
        if ring.sq_space_left() < len(items):
            self._submit_now()      # chains never cross a submit: make room first
        link = u.IOSQE_IO_HARDLINK if chain.hard else u.IOSQE_IO_LINK
        uds: list[int] = []
        last = len(items) - 1
        sqe = None
        try:
            for k, (prep, args, kw) in enumerate(items):
                ud = self._next_ud()
                flags = link if k < last else 0
                if prep is None:        # read/write/recv/send: the prep_rw hot path
                    op, fd, addr, n, offset, op_flags = args
                    sqe = ring.prep_rw(op, fd, addr, n, offset, op_flags=op_flags,
                                       user_data=ud, flags=flags)
                    if kw is not None:
                        self._keeps[ud] = kw
                else:
                    sqe = prep(*args, user_data=ud, flags=flags, **kw)
                uds.append(ud)
        except BaseException:  # why: whatever stops the chain (also cancellation) must cut it first; re-raised
            # A member was refused before reaching the SQ: end the chain at the members
            # already queued (they run and complete unobserved) instead of linking them
            # to whatever is submitted next.
            if sqe is not None:
                sqe.flags &= ~link
            self._untracked += len(uds)
            self._schedule_flush()
            raise
        futs = [loop.create_future() for _ in uds]
        for ud, fut in zip(uds, futs):
            self._futs[ud] = fut
        self._schedule_flush()
        try:
            # Members complete in chain order: awaiting the last one first costs one
            # wake-up for the whole chain (the others are done by then).
            for fut in reversed(futs):
                await fut
        except asyncio.CancelledError:
            for ud, fut in zip(uds, futs):
                if self._futs.get(ud) is fut:
                    fut.cancel()            # its CQE is a late completion now
                    self._cancel(ud)
            raise
        return [fut.result() for fut in futs]

    # ------------------------------------------------------------------ streams
    def stream(self, sock: Any) -> "AioStream":
        """A connected stream socket as an :class:`AioStream` (``read``/``write``/
        ``drain``, like asyncio's StreamReader/StreamWriter): one multishot recv into
        provided buffers feeds it, writes are sent without a task wake-up each.

        Needs a kernel ring (provided buffer rings, Linux 5.19+, multishot recv, 6.0+).
        """
        self._bind()
        if self.ring.backend != "kernel":
            raise ValueError("AioRing.stream needs a kernel ring (provided buffers, "
                             "multishot recv); use recv/send on the threads backend")
        fd = sock if type(sock) is int else sock.fileno()
        if fd < 0:
            raise ValueError("AioRing.stream: the socket is closed")
        # two multishot recvs on one socket would split its bytes between two streams
        if any(st._fd == fd and st._recv_ud for st in self._sinks.values()):
            raise ValueError(f"fd {fd} already has an open AioStream on this ring")
        if self._bufring is None:
            self._bufring = _BufRing(self.ring, _STREAM_BGID, _STREAM_BUFFERS, _STREAM_BUFSIZE)
        return AioStream(self, sock)

    # ------------------------------------------------------------------ closing
    def _on_ring_close(self, ring: Ring) -> None:
        """The ring is being closed under this AioRing (ring.close() by its user): fail the
        waiting operations now. Design hooks that ran before this one (an OpsRing's) have
        already ended any enter a worker thread was in, so the hand-over is over too."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._shut()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._shut()
            return
        # another thread: futures belong to the event loop thread; the ring memory this
        # AioRing reads stays mapped through its own views until _shut drops them
        done = concurrent.futures.Future()

        def shut() -> None:
            try:
                self._shut()
            finally:
                done.set_result(None)
        loop.call_soon_threadsafe(shut)
        if loop.is_running():
            done.result(timeout=5)

    def close(self) -> None:
        """Close now. Operations still waiting raise :class:`RingClosedError`; buffers of
        requests still in the kernel stay alive (the Ring parks them, see docs/ring.md).
        Idempotent."""
        if self._closed:
            return
        if self._busy:
            raise RuntimeError("an IORING_OP_BPF batch is being handed to the ring by a worker "
                               "thread: use 'await aclose()', which waits for it")
        self._shut()

    def _shut(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._busy = False
        if self._idle is not None:
            self._idle.set()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._reader_fd)
        exc = RingClosedError("the AioRing was closed with this operation in flight")
        for fut in self._futs.values():
            if not fut.done() and not fut.get_loop().is_closed():
                fut.set_exception(exc)
        self._futs.clear()
        for stream in set(self._sinks.values()):
            stream._ring_closed(exc)
        self._sinks.clear()
        if self._keeps:         # the kernel may still write into these
            _graveyard.append(list(self._keeps.values()))
            self._keeps.clear()
        self._release_ring()

    def _release_ring(self) -> None:
        ring = self.ring
        if self._bufring is not None:
            self._bufring.release(ring)
            self._bufring = None
        self._cqw = None
        self._reap_args = ()
        self._cq_keep = None
        if not ring.closed:
            ring.remove_close_hook(self._close_hook)
        if self._owns_ring:
            ring.close()
        elif not ring.closed and self._efd >= 0:
            ring.register(u.IORING_UNREGISTER_EVENTFD, 0, 0)
        if self._efd >= 0:
            os.close(self._efd)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Cancel everything in flight (IORING_ASYNC_CANCEL_ANY | ALL), wait up to ``timeout``
        seconds for the CQEs (waiting tasks see ``OSError(ECANCELED)``), then close."""
        if self._closed:
            return
        if self.inflight and self._loop is not None:
            if self._busy:
                await self._wait_idle()
            try:
                self.ring.prep_cancel(0, _CANCEL_EVERYTHING,
                                      user_data=self._next_ud())
            except SubmissionQueueFull:
                self._submit_now()
                self.ring.prep_cancel(0, _CANCEL_EVERYTHING,
                                      user_data=self._next_ud())
            self._untracked += 1
            self._flush()
            deadline = self._loop.time() + timeout
            while self.inflight and self._loop.time() < deadline:
                await asyncio.sleep(0.001)
        self.close()

    @property
    def inflight(self) -> int:
        """SQEs prepared and not completed yet (CQE not reaped), cancels included."""
        return len(self._futs) + self._untracked + len(self._sinks)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`/:meth:`aclose`."""
        return self._closed

    async def __aenter__(self) -> "AioRing":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"inflight={self.inflight}"
        return f"<AioRing {state} ring={self.ring!r}>"


#: the provided-buffer group AioStreams receive into: its id, buffer count and size
_STREAM_BGID, _STREAM_BUFFERS, _STREAM_BUFSIZE = 0x7A10, 512, 8192
_BUF_STRUCT = 16        # struct io_uring_buf {u64 addr; u32 len; u16 bid; u16 resv}


class _BufRing:
    """A provided-buffer ring (IORING_REGISTER_PBUF_RING): ``count`` buffers of ``size``
    bytes the kernel picks from for multishot recvs. A buffer goes back to the ring as
    soon as its bytes are copied out (:meth:`take`), so the ring is rarely empty; when it
    is, a recv ends with -ENOBUFS and its stream re-arms."""

    def __init__(self, ring: Ring, bgid: int, count: int, size: int):
        self.bgid, self.count, self.size, self._mask = bgid, count, size, count - 1
        self.ring_mem = bf.Buffer(count * _BUF_STRUCT)
        self.data = bf.Buffer(count * size)
        self._dview = self.data.view
        v = self.ring_mem.view
        self._q, self._w, self._h = v.cast("Q"), v.cast("I"), v.cast("H")
        self._tail = 0
        self._reg = (ctypes.c_uint64 * 5)(self.ring_mem.addr, count | (bgid << 32), 0, 0, 0)
        ret = ring.register(u.IORING_REGISTER_PBUF_RING, ctypes.addressof(self._reg), 1)
        if ret < 0:
            raise _error(ret, "IORING_REGISTER_PBUF_RING")
        for bid in range(count):
            self._put(bid)

    def _put(self, bid: int) -> None:
        i = self._tail & self._mask
        self._q[2 * i] = self.data.addr + bid * self.size
        self._w[4 * i + 2] = self.size
        self._h[8 * i + 6] = bid
        self._tail = t = (self._tail + 1) & 0xFFFF
        self._h[7] = t          # the ring's tail (bufs[0].resv): published last

    def take(self, bid: int, n: int) -> bytes:
        """The ``n`` bytes the kernel put in buffer ``bid``; the buffer goes back."""
        off = bid * self.size
        data = self._dview[off:off + n].tobytes()
        self._put(bid)
        return data

    def release(self, ring: Ring) -> None:
        if not ring.closed:
            ret = ring.register(u.IORING_UNREGISTER_PBUF_RING, ctypes.addressof(self._reg), 1)
            if ret < 0:         # still registered: the kernel may write into the buffers
                _graveyard.append(self)


class AioStream:
    """A connected stream socket driven by an :class:`AioRing` (``AioRing.stream(sock)``).

    * ``await read(n=65536)``: up to ``n`` bytes, ``b""`` at end of stream. One multishot
      ``IORING_OP_RECV`` with provided buffers stays armed for the whole connection: each
      arrival is one CQE, copied out and queued here; a task waits only when nothing is
      queued.
    * ``write(data)``: queue ``data`` (no await, like ``StreamWriter.write``); one
      ``IORING_OP_SEND`` (MSG_WAITALL) is in flight per stream, later writes are joined
      and sent when it completes, so bytes leave in order.
    * ``await drain()``: wait while more than 64 KiB are unsent; raises the error a send
      met (``OSError``), like ``StreamWriter.drain``.
    * Flow control: more than 256 KiB received and not read pauses receiving (the recv is
      cancelled, TCP's window then holds the peer back); reading below 128 KiB resumes it.
    * ``await aclose()``: cancel the recv, wait for queued writes; the socket stays open
      (close it yourself).
    """

    HIGH_WATER = 64 * 1024
    #: received-but-unread bytes above which receiving pauses (resumes below half)
    READ_HIGH_WATER = 256 * 1024

    def __init__(self, aio: AioRing, sock: Any):
        self._aio = aio
        self._sock = sock
        self._fd = sock if type(sock) is int else sock.fileno()
        self._chunks: deque = deque()
        self._eof = False
        self._error: BaseException | None = None
        self._reader: asyncio.Future | None = None
        self._recv_ud = 0
        self._send_ud = 0
        self._sending: Any = b""        # bytes of the send in flight
        self._sending_keep: Any = None
        self._pending: list = []
        self._pending_n = 0
        self._drainer: asyncio.Future | None = None
        self._closing = False
        self._queued = 0                # bytes received and not read yet
        self._paused = False            # recv cancelled because nobody reads
        self._take = aio._bufring.take
        self._arm()

    # -- the recv side
    def _arm(self) -> None:
        aio = self._aio
        ud = aio._next_ud()
        ring = aio.ring
        try:
            sqe = ring.prep_rw(_OP_RECV, self._fd, 0, 0, 0, user_data=ud,
                               flags=u.IOSQE_BUFFER_SELECT)
        except SubmissionQueueFull:
            aio._submit_now()
            sqe = ring.prep_rw(_OP_RECV, self._fd, 0, 0, 0, user_data=ud,
                               flags=u.IOSQE_BUFFER_SELECT)
        sqe.ioprio = u.IORING_RECV_MULTISHOT
        sqe.buf_group = _STREAM_BGID
        self._recv_ud = ud
        aio._sinks[ud] = self
        aio._schedule_flush()

    def _cqe(self, ud: int, res: int, flags: int) -> None:
        """A CQE of this stream's recv or send (called while the AioRing reaps)."""
        if ud == self._recv_ud:
            if res > 0:
                self._chunks.append(self._take(flags >> 16, res))
                self._queued += res
                if self._queued > self.READ_HIGH_WATER and not self._paused:
                    # nobody reads: stop receiving (the socket buffer, then TCP's window,
                    # holds the peer back), like a transport's pause_reading()
                    self._paused = True
                    self._aio._cancel(ud)
            if not flags & _MORE:       # the multishot recv ended
                self._recv_ud = 0
                if self._closing:       # cancelled by aclose()
                    self._eof = True
                elif self._paused and (res > 0 or res in (_CANCELED, -errno.ENOBUFS)):
                    if self._queued <= self.READ_HIGH_WATER // 2:    # read() caught up
                        self._paused = False
                        self._arm()
                elif res > 0 or res == -errno.ENOBUFS:
                    # the kernel may end a multishot at any CQE; -ENOBUFS: every buffer
                    # was in use, and they are back by now
                    self._arm()
                elif res == 0:
                    self._eof = True
                else:
                    self._error = _error(res, "recv")
            r = self._reader
            if r is not None and not r.done():
                r.set_result(None)
            return
        # the send in flight
        self._send_ud = 0
        sent, self._sending = self._sending, b""
        self._sending_keep = None
        if res < 0:
            self._error = _error(res, "send")
        elif res < len(sent):       # MSG_WAITALL makes this rare (a signal); send the rest
            self._pending.insert(0, sent[res:])
            self._pending_n += len(sent) - res
        if self._error is None and self._pending:
            data = self._pending[0] if len(self._pending) == 1 else bytearray().join(self._pending)
            self._pending.clear()
            self._pending_n = 0
            self._send(data)
        d = self._drainer
        if d is not None and not d.done() and (self._error is not None
                                               or self._pending_n + len(self._sending)
                                               <= self.HIGH_WATER // 2):
            d.set_result(None)

    def _ring_closed(self, exc: BaseException) -> None:
        if self._send_ud:       # the kernel may still read the send's bytes: never freed
            _graveyard.append((self._sending, self._sending_keep))
        self._error = exc
        for f in (self._reader, self._drainer):
            if f is not None and not f.done():
                f.set_result(None)

    async def read(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes (``n`` >= 1); ``b""`` at the end of the stream."""
        if type(n) is not int or n < 1:
            raise ValueError(f"read(n): n must be an int >= 1, not {n!r}")
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks.popleft()
                if len(data) > n:
                    chunks.appendleft(data[n:])
                    data = data[:n]
                self._queued -= len(data)
                if self._paused and not self._recv_ud and not self._eof and \
                        self._error is None and self._queued <= self.READ_HIGH_WATER // 2:
                    self._paused = False        # resume receiving
                    self._arm()
                return data
            if self._error is not None:
                raise self._error
            if self._eof:
                return b""
            self._reader = r = _Future(loop=self._aio._loop)
            try:
                await r
            finally:
                self._reader = None

    # -- the send side
    def _send(self, data: bytes) -> None:
        aio = self._aio
        ud = aio._ud                # _next_ud() and _schedule_flush() inlined: the hot path
        aio._ud = ud + 1
        ring = aio.ring
        # ``data`` is a bytearray of this stream's own: its buffer stays put, and
        # ``_sending`` keeps it (and the exported view) alive until the send's CQE
        keep = _from_buffer(data)
        addr, n = _addressof(keep), len(data)
        # Ring.prep_rw's work, in C
        if not aio._native_prep(aio._sq_layout, ring, _OP_SEND, self._fd, addr, n, 0,
                                _SEND_FLAGS, ud):
            aio._prep_after_submit(_OP_SEND, self._fd, addr, n, 0, _SEND_FLAGS, ud)
        self._sending = data
        self._sending_keep = keep
        self._send_ud = ud
        aio._sinks[ud] = self
        if not aio._flush_scheduled:
            aio._flush_scheduled = True
            aio._loop.call_soon(aio._flush)

    def write(self, data: Any) -> None:
        """Queue ``data`` for sending (bytes-like); returns at once."""
        if self._error is not None:
            raise self._error
        if self._closing:
            raise RuntimeError("write() on a closing AioStream")
        data = bytearray(data)      # a copy: the caller may reuse its buffer at once
        if not data:
            return
        if self._send_ud:
            self._pending.append(data)
            self._pending_n += len(data)
        else:
            self._send(data)

    async def drain(self) -> None:
        """Wait until at most 32 KiB are unsent if more than 64 KiB are; raise a send's
        error."""
        if self._error is not None:
            raise self._error
        if self._pending_n + len(self._sending) > self.HIGH_WATER:
            self._drainer = d = _Future(loop=self._aio._loop)
            try:
                await d
            finally:
                self._drainer = None
            if self._error is not None:
                raise self._error

    @property
    def queued(self) -> int:
        """Bytes received and not read yet."""
        return self._queued

    @property
    def paused(self) -> bool:
        """True while receiving is paused because more than READ_HIGH_WATER bytes wait."""
        return self._paused

    @property
    def at_eof(self) -> bool:
        """True once the peer ended the stream and every received byte was read."""
        return self._eof and not self._chunks

    async def aclose(self) -> None:
        """Stop receiving (the recv is cancelled) and wait for queued writes to go out."""
        if self._closing:
            return
        self._closing = True
        aio = self._aio
        if self._recv_ud and not aio._closed:
            aio._cancel(self._recv_ud)
        while (self._recv_ud or self._send_ud) and not aio._closed and self._error is None:
            self._reader = r = _Future(loop=aio._loop)
            self._drainer = r
            try:
                await r
            finally:
                self._reader = self._drainer = None


# a plain int: socket's IntFlag members make every ``&`` on the hot path an enum call
_SEND_FLAGS = int(socket.MSG_NOSIGNAL | socket.MSG_WAITALL)


class Chain:
    """Operations linked with ``IOSQE_IO_LINK`` (or HARDLINK), submitted together.

    Build it with the operation methods (each returns the chain), then
    ``results = await chain``: one raw result per member, in order — ``>= 0`` or ``-errno``,
    ``-ECANCELED`` for the members after a failed one, never an exception for a member's
    failure (a chain's outcome is usually read as a whole). :meth:`check` raises instead.
    ``link_timeout(seconds)`` bounds the member before it (IORING_OP_LINK_TIMEOUT).
    ``bpf(op_id, descs)`` adds an ``IORING_OP_BPF`` request (needs a ring from
    ``designs.ops.create_ring``).
    """

    def __init__(self, aring: AioRing, hard: bool = False):
        self._aring = aring
        self.hard = hard
        self._items: list[tuple[Callable, tuple, dict]] = []

    def _add(self, prep: Callable, *args: Any, **kw: Any) -> "Chain":
        self._items.append((prep, args, kw))
        return self

    def _rw(self, op: int, fd: Any, buf: Any, writable: bool, nbytes: int | None,
            offset: int, op_flags: int) -> "Chain":
        addr, n, keep = _buffer(buf, writable, nbytes)
        # (None, prep_rw arguments, keep-alive): see AioRing._run_chain
        self._items.append((None, (op, fd, addr, n, offset, op_flags), keep))
        return self

    def read(self, fd: Any, buf: Any, offset: int = -1, *, nbytes: int | None = None) -> "Chain":
        """Add a read (see :meth:`AioRing.read`)."""
        return self._rw(_OP_READ, fd, buf, True, nbytes, offset, 0)

    def write(self, fd: Any, buf: Any, offset: int = -1, *,
              nbytes: int | None = None) -> "Chain":
        """Add a write."""
        return self._rw(_OP_WRITE, fd, buf, False, nbytes, offset, 0)

    def readv(self, fd: Any, bufs: list, offset: int = -1) -> "Chain":
        """Add a readv."""
        return self._add(self._aring.ring.prep_readv, fd, bufs, offset)

    def writev(self, fd: Any, bufs: list, offset: int = -1) -> "Chain":
        """Add a writev."""
        return self._add(self._aring.ring.prep_writev, fd, bufs, offset)

    def recv(self, sock: Any, buf: Any, msg_flags: int = 0, *,
             nbytes: int | None = None) -> "Chain":
        """Add a recv."""
        return self._rw(_OP_RECV, sock, buf, True, nbytes, 0, msg_flags)

    def send(self, sock: Any, buf: Any, msg_flags: int = 0, *,
             nbytes: int | None = None) -> "Chain":
        """Add a send."""
        return self._rw(_OP_SEND, sock, buf, False, nbytes, 0, msg_flags)

    def fsync(self, fd: Any, *, datasync: bool = False) -> "Chain":
        """Add an fsync."""
        return self._add(self._aring.ring.prep_fsync, fd,
                         u.IORING_FSYNC_DATASYNC if datasync else 0)

    def close_fd(self, fd: int) -> "Chain":
        """Add a close(fd) (IORING_OP_CLOSE)."""
        return self._add(self._aring.ring.prep_close, fd)

    def nop(self, inject: int | None = None) -> "Chain":
        """Add a NOP (``inject``: complete with that result, IORING_NOP_INJECT_RESULT)."""
        return self._add(self._aring.ring.prep_nop, inject=inject)

    def timeout(self, seconds: float) -> "Chain":
        """Add an IORING_OP_TIMEOUT (completes with -ETIME after ``seconds``)."""
        return self._add(self._aring.ring.prep_timeout, seconds)

    def link_timeout(self, seconds: float) -> "Chain":
        """Bound the previous member to ``seconds`` (it completes with -ECANCELED and this
        member with -ETIME when the time runs out)."""
        if not self._items:
            raise ValueError("link_timeout must follow another operation")
        return self._add(self._aring.ring.prep_link_timeout, seconds)

    def bpf(self, op_id: int, descs: Any = None, *, nr: int | None = None,
            prog_flags: int = 0) -> "Chain":
        """Add an IORING_OP_BPF request (designs.ops; the ring must be an OpsRing)."""
        prep = getattr(self._aring.ring, "prep_bpf", None)
        if prep is None:
            raise TypeError("IORING_OP_BPF needs a ring from uringbpf.designs.ops.create_ring"
                            f", not {type(self._aring.ring).__name__}")
        return self._add(prep, op_id, descs, nr=nr, prog_flags=prog_flags)

    def __len__(self) -> int:
        return len(self._items)

    def __await__(self):
        return self._aring._run_chain(self).__await__()

    async def check(self) -> list[int]:
        """Submit and return the results; raise OSError for the first failed member."""
        results = await self._aring._run_chain(self)
        for res in results:
            if res < 0:
                raise _error(res, "chain")
        return results


class RingThread:
    """A dedicated thread for rings that must be entered from the thread that created
    them (``IORING_SETUP_SINGLE_ISSUER``/``DEFER_TASKRUN``, as the loop_step design
    requires) and for calls that block in ``io_uring_enter``.

    ``await rt.call(fn, *args)`` runs ``fn`` there and returns its result; the event loop
    stays responsive meanwhile (the native loop releases the GIL). Create the ring, load
    and attach the program, and run it all through ``call``::

        async with RingThread() as rt:
            ring = await rt.call(loop.make_ring, 8)
            obj, link = await rt.call(loop.nops_example, ring, 100_000)
            await rt.run_loop(link)      # one io_uring_enter: the loop until STOP
            await rt.call(lambda: (link.destroy(), obj.close(), ring.close()))
    """

    def __init__(self, name: str = "uringbpf-ring"):
        self._ex = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)

    async def call(self, fn: Callable, *args: Any, **kw: Any) -> Any:
        """``fn(*args, **kw)`` in the ring thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._ex, functools.partial(fn, *args, **kw))

    async def run_loop(self, link: Any) -> int:
        """Run a loop_step attachment (``obj.attach_struct_ops(...)`` of the loop design)
        until its program returns IOU_LOOP_STOP; ``-errno`` results raise OSError.

        Cancelling the awaiting task does not stop the program (the kernel loop has no
        cancellation either): the program decides when the loop ends.
        """
        ret = await self.call(link.run)
        if ret < 0:
            raise _error(ret, "loop_step run")
        return ret

    def close(self) -> None:
        """Wait for the current call and stop the thread."""
        self._ex.shutdown(wait=True)

    async def __aenter__(self) -> "RingThread":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)


def open_ring(entries: int = 256, **kw: Any) -> AioRing:
    """``AioRing(entries, **kw)``: for ``async with open_ring() as ring:``."""
    return AioRing(entries, **kw)
