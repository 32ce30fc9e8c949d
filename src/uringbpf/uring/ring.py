"""`Ring`: one io_uring, liburing-style, over the kernel's own ring memory.

The frontend does everything liburing does in user space (SQE allocation, SQ tail
publication, CQ head/tail arithmetic, keeping buffers alive) by reading and writing the
ring memory through ``memoryview`` word views. The *backend* provides that memory and the
two verbs that cross into "the kernel": ``enter`` and ``register``. Two backends exist:
``kernel`` (io_uring_setup + mmap, kernel.py) and ``threads`` (an in-process emulation
with the same memory layout, threads.py). Everything in this file is shared by both.

Hot-path notes (measured by bench/nop_loop.py): SQE/CQE views are created once per slot
and cached; ring words are read through ``memoryview`` indexing (cheaper than ctypes
attribute access); SQE fields written by :meth:`prep_nop` go through word views too.
x86-64 is TSO, so plain stores/loads give the release/acquire order liburing uses; on
weakly ordered CPUs this module would need explicit barriers (documented in docs/ring.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import logging
import weakref
from collections import namedtuple
from typing import Any, Callable, Iterator

from . import buffers as bf
from . import prep as pp
from . import region as rg
from . import sqrewind
from . import syscalls
from . import uapi as u
from .fast import fast_path
from .kernel import KernelBackend
from .threads import ThreadsBackend

log = logging.getLogger(__name__)

M32 = 0xFFFFFFFF
U64 = (1 << 64) - 1

#: A reaped completion (a copy: safe to keep after the CQ slot is reused).
Completion = namedtuple("Completion", "user_data res flags")

_KNOWN_SETUP = (1 << 21) - 1
_KNOWN_SQE_FLAGS = 0x7F
_LINK_FLAGS = u.IOSQE_IO_LINK | u.IOSQE_IO_HARDLINK
_DENY_KEEP_FLAGS = u.IOSQE_IO_LINK | u.IOSQE_IO_HARDLINK | u.IOSQE_IO_DRAIN
DENY_KEEP_FLAGS = _DENY_KEEP_FLAGS


def deny_sqe(sqe: Any, res: int | None, keep_flags: int = _DENY_KEEP_FLAGS,
             size: int | None = None) -> None:
    """Rewrite ``sqe`` in place into a NOP that completes with ``res`` (``-errno``).

    The one "deny" of every design (its C twin is ``uringbpf_deny_sqe`` in
    ``native/sqe.h``): the NOP keeps the SQE's ``user_data`` and only its flags in
    ``keep_flags`` (by default the link/drain flags, so the rest of its chain is cancelled
    as the kernel would), and ``IORING_NOP_INJECT_RESULT`` makes the kernel complete it,
    in SQ order, with ``res``. ``res=None`` gives a plain NOP (result 0). ``size`` bytes
    are cleared (default ``sizeof(sqe)``; 128 for SQE128 rings).
    """
    ud, flags = sqe.user_data, sqe.flags & keep_flags
    ctypes.memset(ctypes.addressof(sqe), 0, ctypes.sizeof(sqe) if size is None else size)
    sqe.opcode = u.IORING_OP_NOP
    sqe.flags = flags
    sqe.fd = -1
    if res is not None:
        sqe.len = res & M32
        sqe.nop_flags = u.IORING_NOP_INJECT_RESULT
    sqe.user_data = ud
_FALLBACK_ERRNOS = (errno.ENOSYS, errno.EPERM, errno.EACCES)
_MAX_ENTRIES = 32768
_MAX_CQ_ENTRIES = 2 * 32768 * 2

# Objects still referenced by requests that never completed before their ring was
# closed: kept forever rather than freed under the kernel's feet.
_graveyard: list = []
#: fd -> open Ring (Ring.by_fd); weak, so a dropped ring leaves by itself
_by_fd: "weakref.WeakValueDictionary[int, Ring]" = weakref.WeakValueDictionary()


from ..errors import RingClosedError, SubmissionQueueFull  # noqa: E402,F401  (defined in uringbpf.errors)


#: fn(ring) run at the end of every Ring's set-up (add_setup_hook)
_setup_hooks: list[Callable] = []


def add_setup_hook(fn: Callable) -> None:
    """Run ``fn(ring)`` on every :class:`Ring` once it is set up (hooks run in the order
    added; adding one twice is a no-op).

    For designs whose kernel state is per task and copied into each ring the task creates:
    the 7.0 task-level cBPF filters (``io_uring_register(-1, IORING_REGISTER_BPF_FILTER)``),
    which io_uring_create() clones into every new ring.  The ring layer knows no design.
    """
    if not callable(fn):
        raise TypeError("setup hook must be callable")
    if fn not in _setup_hooks:
        _setup_hooks.append(fn)


def _fileno(fd: Any) -> int:
    if isinstance(fd, int):
        if not -(1 << 31) <= fd < (1 << 31):
            raise ValueError(f"fd {fd} out of range")
        return fd
    if hasattr(fd, "fileno"):
        return fd.fileno()
    raise TypeError(f"fd must be an int or have fileno(), not {type(fd).__name__}")


class Ring:
    """One io_uring instance.

    ``Ring(entries, cq_entries=None, flags=0, backend="auto")``

    * ``entries``: SQ size (1..32768, rounded up to a power of two like the kernel does).
    * ``cq_entries``: CQ size; giving it adds ``IORING_SETUP_CQSIZE``.
    * ``flags``: ``IORING_SETUP_*``. ``IORING_SETUP_SQ_REWIND`` (Linux 7.1) is emulated when
      the kernel refuses it (see :attr:`emulated_flags` and docs/ring.md).
    * ``backend``: ``"kernel"``, ``"threads"`` or ``"auto"`` (kernel, or threads with a
      ``RuntimeWarning`` when io_uring_setup fails with ENOSYS/EPERM/EACCES).

    Contract attributes for other layers: ``fd``, ``params`` (``IoUringParams`` with
    ``sq_off``/``cq_off`` as the kernel returned them), ``sq_ring_addr``, ``cq_ring_addr``,
    ``sqes_addr`` (where SQE slot *i* lives for the application and BPF programs: the
    private array on an emulated SQ_REWIND ring), ``kernel_sqes_addr`` (the kernel's SQE
    mmap), ``sqe_size``, ``cqe_size``, ``sq_entries``, ``cq_entries``, ``flags`` (as
    requested), ``kernel_flags`` (as set up), ``emulated_flags``, ``backend``, ``features``,
    plus raw word addresses ``sq_head_addr``, ``sq_tail_addr``, ``sq_flags_addr``,
    ``sq_array_addr`` (0 without an SQ array), ``cq_head_addr``, ``cq_tail_addr``,
    ``cqes_addr`` and masks ``sq_mask``/``cq_mask``.
    """

    @staticmethod
    def by_fd(fd: int) -> "Ring":
        """The open :class:`Ring` of this process whose io_uring fd is ``fd`` (the
        kernel's ``io_uring_ctx_get_file``, for designs handed a ``ring_fd``).

        Raises ``OSError(EBADF)`` if ``fd`` is not an open file, ``OSError(EOPNOTSUPP)`` if
        it is not an io_uring or not one a :class:`Ring` of this process drives.
        """
        ring = _by_fd.get(fd)
        if ring is not None and not ring.closed:
            return ring
        try:
            target = os.readlink(f"/proc/self/fd/{int(fd)}")
        except (OSError, ValueError):
            raise OSError(errno.EBADF, f"ring_fd {fd} is not an open file") from None
        if target != "anon_inode:[io_uring]":
            raise OSError(errno.EOPNOTSUPP, f"ring_fd {fd} is not an io_uring ({target})")
        raise OSError(errno.EOPNOTSUPP, f"io_uring fd {fd} was not created by uringbpf.Ring")

    def __init__(self, entries: int = 64, cq_entries: int | None = None, flags: int = 0, *,
                 backend: str = "auto", sq_thread_idle: int = 0):
        if isinstance(entries, bool) or not isinstance(entries, int):
            raise TypeError("entries must be an int")
        if not 1 <= entries <= _MAX_ENTRIES:
            raise ValueError(f"entries must be in 1..{_MAX_ENTRIES}, got {entries}")
        if not isinstance(flags, int) or flags < 0 or flags & ~_KNOWN_SETUP:
            raise ValueError(f"unknown IORING_SETUP_* bits in {flags:#x}")
        if cq_entries is not None:
            if not isinstance(cq_entries, int) or not entries <= cq_entries <= _MAX_CQ_ENTRIES:
                raise ValueError(f"cq_entries must be in {entries}..{_MAX_CQ_ENTRIES}")
            flags |= u.IORING_SETUP_CQSIZE
        elif flags & u.IORING_SETUP_CQSIZE:
            raise ValueError("IORING_SETUP_CQSIZE needs cq_entries=")
        if backend not in ("auto", "kernel", "threads"):
            raise ValueError(f"backend must be 'auto', 'kernel' or 'threads', not {backend!r}")
        if flags & u.IORING_SETUP_SQ_REWIND and flags & u.IORING_SETUP_SQPOLL:
            raise ValueError("IORING_SETUP_SQ_REWIND cannot be combined with SQPOLL")
        self.flags = flags
        # closed until the ring is whole: if io_uring_setup or the mmaps fail, __del__ must
        # not try to close a ring that never existed
        self._closed = True
        self._be = self._setup(entries, cq_entries or 0, flags, backend, sq_thread_idle)
        with contextlib.ExitStack() as undo:    # no memory: the backend closes again
            undo.callback(self._be.close)
            self._init_memory()
            undo.pop_all()
        if self.fd >= 0:
            _by_fd[self.fd] = self
        # hooks (designs): see set_enter_hook / add_sqe_filter / add_register_hook
        self._enter_hook: Callable | None = None
        self._filters: list[Callable] = []
        self._register_hooks: list[Callable] = []
        # keep-alive bookkeeping (see _transfer / _release)
        self._slot_keep: dict[int, Any] = {}
        self._inflight: dict[int, list] = {}
        self._orphans: list = []
        self._fixed_bufs: list | None = None
        self._fixed_keep: Any = None
        self._update_direct()
        self._closed = False
        for fn in list(_setup_hooks):
            fn(self)

    def _update_direct(self) -> None:
        """submit*/wait may call the syscall directly when nothing sits on the enter path
        (kernel backend, no hook, no SQE filter, no REWIND handling): saves ~3 Python calls."""
        plain = (self._be.name == "kernel" and self._enter_hook is None and not self._filters
                 and not self.sq_rewind)
        self._direct_fd = self.fd if plain else -1

    # ------------------------------------------------------------------ set-up
    def _setup(self, entries: int, cq_entries: int, flags: int, backend: str, idle: int):
        self.emulated_flags = 0
        if backend in ("auto", "kernel"):
            try:
                return self._setup_backend(KernelBackend, entries, cq_entries, flags, idle)
            except OSError as exc:
                if backend == "kernel" or exc.errno not in _FALLBACK_ERRNOS:
                    raise
                log.warning("io_uring unavailable (%s); using the thread-pool backend",
                            exc.strerror)
        return self._setup_backend(ThreadsBackend, entries, cq_entries, flags, idle)

    def _setup_backend(self, cls, entries: int, cq_entries: int, flags: int, idle: int):
        def params(fl: int) -> u.IoUringParams:
            p = u.IoUringParams()
            p.flags, p.cq_entries, p.sq_thread_idle = fl, cq_entries, idle
            return p

        try:
            return cls(entries, params(flags))
        except OSError as exc:
            if not (flags & u.IORING_SETUP_SQ_REWIND and exc.errno == errno.EINVAL):
                raise
        # The kernel does not know SQ_REWIND (Linux < 7.1): emulate it (see _rewind_enter).
        be = cls(entries, params(flags & ~u.IORING_SETUP_SQ_REWIND))
        self.emulated_flags |= u.IORING_SETUP_SQ_REWIND
        log.info("IORING_SETUP_SQ_REWIND emulated: the kernel predates Linux 7.1")
        return be

    def _init_memory(self) -> None:
        be = self._be
        p = self.params = be.params
        self.backend: str = be.name
        self.fd: int = be.fd
        self.kernel_flags = p.flags
        if be.name == "threads":
            self.emulated_flags = self.flags
        self.features = p.features
        self.sq_entries, self.cq_entries = p.sq_entries, p.cq_entries
        self.sq_mask, self.cq_mask = p.sq_entries - 1, p.cq_entries - 1
        self.sqe_size = 128 if p.flags & u.IORING_SETUP_SQE128 else 64
        self.cqe_size = 32 if p.flags & u.IORING_SETUP_CQE32 else 16
        self.sq_ring_addr, self.cq_ring_addr = be.sq_ring_addr, be.cq_ring_addr
        self.kernel_sqes_addr = be.sqes_addr
        so, co = p.sq_off, p.cq_off
        self.sq_head_addr = be.sq_ring_addr + so.head
        self.sq_tail_addr = be.sq_ring_addr + so.tail
        self.sq_flags_addr = be.sq_ring_addr + so.flags
        self.sq_dropped_addr = be.sq_ring_addr + so.dropped
        self.sq_array_addr = 0 if p.flags & u.IORING_SETUP_NO_SQARRAY else be.sq_ring_addr + so.array
        self.cq_head_addr = be.cq_ring_addr + co.head
        self.cq_tail_addr = be.cq_ring_addr + co.tail
        self.cq_overflow_addr = be.cq_ring_addr + co.overflow
        self.cqes_addr = be.cq_ring_addr + co.cqes
        self._sqr = rg.u32_view(be.sq_region)
        self._cqr = rg.u32_view(be.cq_region)
        self._sq_head_i, self._sq_tail_i, self._sq_flags_i = so.head >> 2, so.tail >> 2, so.flags >> 2
        self._cq_head_i, self._cq_tail_i = co.head >> 2, co.tail >> 2
        self._sq_array_i = so.array >> 2
        self._ksqe_region = be.sqe_region
        self.sq_rewind = bool(self.flags & u.IORING_SETUP_SQ_REWIND)
        self.sq_rewind_emulated = bool(self.emulated_flags & u.IORING_SETUP_SQ_REWIND
                                       and not p.flags & u.IORING_SETUP_SQ_REWIND)
        if self.sq_rewind_emulated:
            # The 7.1 "SQE region": the application writes slots 0..n-1 here; enter copies
            # them to the kernel's SQE slots at the SQ tail (see _rewind_enter).
            self._sqe_region = rg.anonymous(self.sq_entries * self.sqe_size)
            self._rewinder: sqrewind.Rewinder | None = None   # its C is built on first use
        else:
            self._sqe_region = be.sqe_region
        self.sqes_addr = self._sqe_region.addr
        self._sqe_b = memoryview(self._sqe_region).cast("B")
        self._sqe_w = self._sqe_b.cast("I")
        self._sqe_q = self._sqe_b.cast("Q")
        cqb = memoryview(be.cq_region).cast("B")[co.cqes:co.cqes + p.cq_entries * self.cqe_size]
        self._cqe_q = cqb.cast("Q")
        self._cqe_i = cqb.cast("i")
        self._zero_sqe = bytes(self.sqe_size)
        self._sqe_cls = u.Sqe128 if self.sqe_size == 128 else u.Sqe
        self._cqe_cls = u.Cqe32 if self.cqe_size == 32 else u.Cqe
        self._sqe_views: list = [None] * p.sq_entries
        self._cqe_views: list = [None] * p.cq_entries
        self._sqe_words = self.sqe_size >> 2       # u32 words per SQE
        self._cqe_qw = self.cqe_size >> 3          # u64 words per CQE
        # liburing's local SQ state: SQEs handed out but not yet published
        if self.sq_rewind:
            self._sqe_head = self._sqe_tail = 0
        else:
            if self.sq_array_addr:
                # identity SQ array (what liburing does at init): slot i -> SQE i
                for i in range(p.sq_entries):
                    self._sqr[self._sq_array_i + i] = i
            self._sqe_head = self._sqe_tail = self._sqr[self._sq_tail_i]
        self._sqpoll = bool(p.flags & u.IORING_SETUP_SQPOLL)

    # ------------------------------------------------------------------ properties
    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self.fd}"
        return (f"<Ring {state} backend={self.backend} sq={self.sq_entries} "
                f"cq={self.cq_entries} flags={self.flags:#x}>")

    def __enter__(self) -> "Ring":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ SQ side
    def sqe_view(self, index: int):
        """The (cached, zero-copy) ``Sqe``/``Sqe128`` view of SQE slot ``index``."""
        v = self._sqe_views[index]
        if v is None:
            v = self._sqe_views[index] = self._sqe_cls.from_buffer(self._sqe_region,
                                                                    index * self.sqe_size)
        return v

    def cqe_view(self, index: int):
        """The (cached, zero-copy) ``Cqe``/``Cqe32`` view of CQ slot ``index``."""
        v = self._cqe_views[index]
        if v is None:
            v = self._cqe_views[index] = self._cqe_cls.from_buffer(
                self._be.cq_region, self.params.cq_off.cqes + index * self.cqe_size)
        return v

    def _next_slot(self) -> int:
        """Claim the next free SQE slot, zero it, and return its index."""
        t = self._sqe_tail
        if self.sq_rewind:
            if t >= self.sq_entries:
                raise SubmissionQueueFull(f"all {self.sq_entries} SQEs are queued; submit() first")
            idx = t
            self._sqe_tail = t + 1
        else:
            if (t - self._sqr[self._sq_head_i]) & M32 >= self.sq_entries:
                raise SubmissionQueueFull(f"all {self.sq_entries} SQEs are queued; submit() first")
            idx = t & self.sq_mask
            self._sqe_tail = (t + 1) & M32
        off = idx * self.sqe_size
        self._sqe_b[off:off + self.sqe_size] = self._zero_sqe
        if self._slot_keep:
            self._drop_slot_keep(idx)
        return idx

    def _drop_slot_keep(self, idx: int) -> None:
        """A slot is reused while it still holds a keep-alive nobody transferred (its SQE
        went to the kernel through native code or a hook): park it until close()."""
        old = self._slot_keep.pop(idx, None)
        if old is not None:
            self._orphans.append(old)

    def get_sqe(self):
        """A zeroed SQE view for the next request (unlike liburing, always zeroed).

        Raises :class:`SubmissionQueueFull` when every SQE is queued (never auto-submits).
        """
        return self.sqe_view(self._next_slot())

    def sq_ready(self) -> int:
        """SQEs handed out by get_sqe and not yet submitted (io_uring_sq_ready)."""
        if self.sq_rewind:
            return self._sqe_tail
        return (self._sqe_tail - self._sqr[self._sq_head_i]) & M32

    def sq_space_left(self) -> int:
        """SQEs that can still be claimed before a submit (io_uring_sq_space_left)."""
        return self.sq_entries - self.sq_ready()

    def flush_sq(self) -> int:
        """Publish SQEs handed out by get_sqe; return how many the kernel may consume."""
        t = self._sqe_tail
        if self.sq_rewind:
            return t          # keep-alives move in raw_enter, where the slots are consumed
        h = self._sqe_head
        if h != t:
            if self._slot_keep or self._inflight:
                self._transfer([(h + i) & self.sq_mask for i in range((t - h) & M32)])
            self._sqr[self._sq_tail_i] = t
            self._sqe_head = t
        return (t - self._sqr[self._sq_head_i]) & M32

    def submit(self) -> int:
        """Submit queued SQEs (io_uring_submit); returns how many the kernel consumed."""
        n = self.flush_sq()
        if self._sqpoll:
            if self._sqr[self._sq_flags_i] & u.IORING_SQ_NEED_WAKEUP:
                self._check(self.enter(0, 0, u.IORING_ENTER_SQ_WAKEUP), "io_uring_enter")
            return n
        if not n:
            return 0
        if self._direct_fd >= 0:
            return self._submitted(syscalls.io_uring_enter(self._direct_fd, n, 0, 0))
        return self._submitted(self.enter(n, 0, 0))

    def submit_and_wait(self, wait_nr: int = 1) -> int:
        """Submit queued SQEs and wait for at least ``wait_nr`` CQEs to be ready."""
        n = self.flush_sq()
        flags = u.IORING_ENTER_GETEVENTS if wait_nr else 0
        if self._direct_fd >= 0 and not self._sqpoll:
            return self._submitted(syscalls.io_uring_enter(self._direct_fd, n, wait_nr, flags))
        return self._submitted(self.enter(n, wait_nr, flags))

    def _submitted(self, ret: int) -> int:
        if self.sq_rewind:
            self._sqe_tail = 0
        if ret < 0:
            if ret == -errno.EINTR:
                return 0
            raise OSError(-ret, f"io_uring_enter: {os.strerror(-ret)}")
        return ret

    @staticmethod
    def _check(ret: int, what: str) -> int:
        if ret < 0:
            raise OSError(-ret, f"{what}: {os.strerror(-ret)}")
        return ret

    # ------------------------------------------------------------------ enter / hooks
    def enter(self, to_submit: int, min_complete: int = 0, flags: int = 0,
              sig: int | None = None, timeout: float | None = None) -> int:
        """io_uring_enter(2) as the application sees it: ``>= 0`` or ``-errno``.

        When an enter hook is set (the Linux 7.1 loop design replaces io_uring_enter),
        returns ``hook(ring, to_submit, min_complete, flags)`` instead.
        """
        hook = self._enter_hook
        if hook is not None:
            return hook(self, to_submit, min_complete, flags)
        return self.raw_enter(to_submit, min_complete, flags, sig, timeout)

    def raw_enter(self, to_submit: int, min_complete: int = 0, flags: int = 0,
                  sig: int | None = None, timeout: float | None = None) -> int:
        """io_uring_enter(2) on the backend, never the hook.

        SQE filters run here on every SQE about to be consumed, however it got into the
        ring; on an emulated SQ_REWIND ring this is where slots 0..to_submit-1 are handed
        to the kernel (see :meth:`sq_rewind_submit`).
        """
        if to_submit and self.sq_rewind:
            # slots 0..n-1 are consumed by this call, however they were filled
            self._sqe_tail = 0
            if self._slot_keep or self._inflight:
                self._transfer(range(min(to_submit, self.sq_entries)))
        if to_submit and self.sq_rewind_emulated:
            return self._rewind_enter(to_submit, min_complete, flags, sig, timeout)
        if to_submit and self._filters:
            if self.sq_rewind:
                stop = self._filter_slots(list(range(min(to_submit, self.sq_entries))),
                                          self._sqe_region)
            else:
                stop = self._filter_published(to_submit)
            if stop is not None:
                # a refused SQE ended the batch: the kernel's io_uring_enter returns the
                # count consumed (the refused one included) without waiting for CQEs
                return self._be.enter(stop, 0, flags & ~u.IORING_ENTER_GETEVENTS, sig, timeout)
        return self._be.enter(to_submit, min_complete, flags, sig, timeout)

    def sq_rewind_submit(self, nr: int, min_complete: int = 0, flags: int = 0) -> int:
        """Submit SQE slots ``0..nr-1`` of :attr:`sqes_addr` (SQ_REWIND semantics).

        Works on a native and an emulated SQ_REWIND ring; bypasses the enter hook (this is
        what the 7.1 ``bpf_io_uring_submit_sqes`` kfunc does). Returns the kernel's result.
        """
        if not self.sq_rewind:
            raise ValueError("sq_rewind_submit needs a ring set up with IORING_SETUP_SQ_REWIND")
        if not 0 <= nr <= self.sq_entries:
            raise ValueError(f"nr must be in 0..{self.sq_entries}")
        return self.raw_enter(nr, min_complete, flags)

    def _rewind_enter(self, nr: int, min_complete: int, flags: int, sig, timeout) -> int:
        """Emulated SQ_REWIND: copy slots 0..nr-1 to the kernel SQ, enter, retract the rest.

        Exactly what docs/ring.md tells native drivers to do, with the same C
        (native/sqrewind.h, shared with designs/loop/loop.c): the kernel ring is a normal
        head/tail ring; copies go at its tail, the filters run on the copies, the tail is
        published, enter, then the tail moves back to tail + consumed so unconsumed SQEs
        are dropped (the next submit starts again from slot 0, as with the real flag).
        """
        rw = self._rewinder
        if rw is None:
            rw = self._rewinder = sqrewind.Rewinder(
                self.sq_head_addr, self.sq_tail_addr, self.sq_array_addr,
                self.kernel_sqes_addr, self.sq_entries, self.sqe_size, self.sqes_addr)
        nr, tail = rw.stage(nr)
        if self._filters and nr:
            slots = [(tail + i) & self.sq_mask for i in range(nr)]
            stop = self._filter_slots(slots, self._ksqe_region)
            if stop is not None:   # a refused SQE ended the batch (see raw_enter)
                nr, min_complete, flags = stop, 0, flags & ~u.IORING_ENTER_GETEVENTS
        rw.publish(tail + nr)
        ret = self._be.enter(nr, min_complete, flags, sig, timeout)
        rw.publish(tail + (ret if ret > 0 else 0))
        return ret

    def set_enter_hook(self, fn: Callable | None) -> None:
        """Route :meth:`enter` (and so submit/wait) to ``fn(ring, to_submit, min_complete,
        flags) -> int``; ``None`` restores the kernel path. Used by the 7.1 loop design."""
        if fn is not None and not callable(fn):
            raise TypeError("enter hook must be callable or None")
        self._enter_hook = fn
        self._update_direct()

    def add_sqe_filter(self, fn: Callable) -> None:
        """Run ``fn(sqe_view) -> 0 | -errno`` on every SQE before the kernel consumes it.

        A denied SQE is rewritten into a NOP with ``IORING_NOP_INJECT_RESULT`` carrying the
        error and its own user_data: the kernel then completes it with that -errno without
        executing it.  A link chain with a denied member fails as a whole, as in the kernel
        (its other members complete with -ECANCELED, see :meth:`_fail_chain`), and a denied
        SQE that does not link on ends the submission batch unless SUBMIT_ALL. Filters
        run in the order added; the first non-zero result wins.
        """
        if not callable(fn):
            raise TypeError("SQE filter must be callable")
        if self._sqpoll:
            raise ValueError("SQE filters cannot run on an SQPOLL ring: the kernel thread "
                             "consumes SQEs without io_uring_enter")
        self._filters.append(fn)
        self._update_direct()

    def remove_sqe_filter(self, fn: Callable) -> None:
        """Remove a filter added with :meth:`add_sqe_filter`."""
        self._filters.remove(fn)
        self._update_direct()

    # --- what designs may read (they never write ring state directly) -----------------
    @property
    def sqe_filters(self) -> tuple[Callable, ...]:
        """The SQE filters added with :meth:`add_sqe_filter`, in order."""
        return tuple(self._filters)

    @property
    def inflight_count(self) -> int:
        """Submitted requests whose buffers the ring keeps alive until their CQE is reaped."""
        return len(self._inflight)

    def fixed_buffer(self, index: int) -> tuple[int, int] | None:
        """``(address, length)`` of registered buffer ``index`` (``register_buffers``), or
        None when there is none (out of range, sparse slot, nothing registered)."""
        bufs = self._fixed_bufs
        if not bufs or not 0 <= index < len(bufs) or bufs[index] is None:
            return None
        return bufs[index]

    def sync_sq_tail(self) -> None:
        """Native code of a design queued SQEs at the kernel's SQ tail itself: take that
        tail as the ring's own (liburing's ``sqe_head``/``sqe_tail``). Only valid while no
        application SQE is pending; a no-op with SQ_REWIND (slots restart at 0)."""
        if self.sq_rewind:
            return
        self._sqe_head = self._sqe_tail = self._sqr[self._sq_tail_i]

    def fast(self) -> Any:
        """Batch verbs in compiled code over this ring (:class:`uringbpf.uring.fast.FastPath`:
        ``prep_nops``/``reap``/``for_each_cqe``/``submit_and_wait`` on arrays, no per-CQE
        objects). Use as ``with ring.fast() as fp:``; see uring/fast.py for the contract."""
        return fast_path(self)

    def _filter_published(self, to_submit: int) -> int | None:
        head = self._sqr[self._sq_head_i]
        n = min(to_submit, (self._sqr[self._sq_tail_i] - head) & M32)
        slots = []
        for i in range(n):
            pos = (head + i) & self.sq_mask
            idx = self._sqr[self._sq_array_i + pos] if self.sq_array_addr else pos
            if idx < self.sq_entries:
                slots.append(idx)
        return self._filter_slots(slots, self._be.sqe_region)

    def _filter_slots(self, slots, region) -> int | None:
        """Run the SQE filters on ``slots`` in submission order.

        Returns None, or how many SQEs the kernel consumes when a refused one ends the
        batch: io_submit_sqes() stops at an SQE that fails before issue (the refused one
        is counted) unless the ring has IORING_SETUP_SUBMIT_ALL or the SQE links on
        (io_submit_fail_init then keeps assembling the chain). The rest stay queued,
        unfiltered, for the next enter, as in the kernel.

        A link chain with a refused member fails as a whole, none of it runs (see
        :meth:`_fail_chain`); so SQEs are only rewritten once their chain is complete.
        """
        size = self.sqe_size
        cls = self._sqe_cls
        submit_all = self.flags & u.IORING_SETUP_SUBMIT_ALL
        chain: list = []          # (view, res) of the chain being assembled
        failed = False
        for n, idx in enumerate(slots):
            view = cls.from_buffer(region, idx * size)
            res = 0
            for fn in self._filters:
                res = int(fn(view))
                if res:
                    res = res if res < 0 else -abs(res)
                    failed = True
                    break
            chain.append((view, res))
            if view.flags & _LINK_FLAGS:
                continue
            # the chain (or a lone SQE) ends here
            if failed:
                self._fail_chain(chain)
            chain, failed = [], False
            if res and not submit_all:
                return n + 1
        if failed:
            # io_submit_state_end() ends an open chain with the batch
            self._fail_chain(chain)
        return None

    @staticmethod
    def _fail_chain(chain: list) -> None:
        """Post what the kernel posts for a link chain with a refused member.

        io_submit_fail_init() (io_uring/io_uring.c) marks the refused request failed with
        its error and the chain's head with -ECANCELED (unless the head is the refused
        one), keeps assembling the chain, and io_queue_sqe_fallback() then fails the whole
        chain without issuing any of it, HARDLINK or not: the head completes with its
        result, and io_req_tw_fail_links() completes every later member with -ECANCELED,
        or with its own error if it was refused too.  Each member becomes a NOP injecting
        that result, hard-linked to the next one so the CQEs keep that order and nothing
        cancels them on the way.
        """
        last = len(chain) - 1
        for i, (view, res) in enumerate(chain):
            deny_sqe(view, res or -errno.ECANCELED, keep_flags=u.IOSQE_IO_DRAIN)
            if i < last:
                view.flags |= u.IOSQE_IO_HARDLINK

    # ------------------------------------------------------------------ CQ side
    def cq_ready(self) -> int:
        """CQEs posted and not yet advanced past (io_uring_cq_ready)."""
        return (self._cqr[self._cq_tail_i] - self._cqr[self._cq_head_i]) & M32

    def peek_cqe(self):
        """The next CQE as a zero-copy view, or None (io_uring_peek_cqe).

        The view stays valid until :meth:`cq_advance`/:meth:`cqe_seen`. Reads the CQ head
        from ring memory every time, so a BPF program advancing the head is respected.
        """
        cqr = self._cqr
        head = cqr[self._cq_head_i]
        if head != cqr[self._cq_tail_i]:
            i = head & self.cq_mask
            v = self._cqe_views[i]
            return v if v is not None else self.cqe_view(i)
        if self._sqr[self._sq_flags_i] & (u.IORING_SQ_CQ_OVERFLOW | u.IORING_SQ_TASKRUN):
            self.enter(0, 0, u.IORING_ENTER_GETEVENTS)
            if head != cqr[self._cq_tail_i]:
                return self.cqe_view(head & self.cq_mask)
        return None

    def wait_cqe(self, timeout: float | None = None):
        """Wait for a CQE and return its view (not consumed). Raises TimeoutError."""
        cqe = self.peek_cqe()
        if cqe is not None:
            return cqe
        return self.wait_cqe_nr(1, timeout)

    def wait_cqe_nr(self, nr: int, timeout: float | None = None):
        """Wait until ``nr`` CQEs are ready; return the first one's view."""
        if nr < 1:
            raise ValueError("nr must be >= 1")
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be >= 0")
        while self.cq_ready() < nr:
            ret = self.enter(0, nr, u.IORING_ENTER_GETEVENTS, None, timeout)
            if ret == -errno.ETIME:
                if self.cq_ready() >= nr:
                    break
                raise TimeoutError(f"no CQE within {timeout} s")
            if ret < 0 and ret != -errno.EINTR:
                raise OSError(-ret, f"io_uring_enter: {os.strerror(-ret)}")
        return self.peek_cqe()

    def cq_advance(self, n: int = 1) -> None:
        """Mark ``n`` CQEs consumed (io_uring_cq_advance); releases their buffers."""
        cqr = self._cqr
        head = cqr[self._cq_head_i]
        if n > ((cqr[self._cq_tail_i] - head) & M32) or n < 0:
            raise ValueError(f"cq_advance({n}) but only {self.cq_ready()} CQEs are ready")
        if self._inflight:
            self._release(head, n)
        cqr[self._cq_head_i] = (head + n) & M32

    def cqe_seen(self, cqe=None) -> None:
        """io_uring_cqe_seen: consume the CQE returned by peek/wait (hot path)."""
        cqr = self._cqr
        hi = self._cq_head_i
        head = cqr[hi]
        if head == cqr[self._cq_tail_i]:
            raise ValueError("cqe_seen() but no CQE is ready")
        if self._inflight:
            self._release(head, 1)
        cqr[hi] = (head + 1) & M32

    def for_each_cqe(self) -> Iterator:
        """Views of the ready CQEs, oldest first, without consuming (io_uring_for_each_cqe).

        Call :meth:`cq_advance` with the number handled afterwards.
        """
        head = self._cqr[self._cq_head_i]
        tail = self._cqr[self._cq_tail_i]
        while head != tail:
            yield self.cqe_view(head & self.cq_mask)
            head = (head + 1) & M32

    def reap(self, max_nr: int | None = None) -> list[Completion]:
        """Copy out and consume up to ``max_nr`` ready CQEs as :class:`Completion` tuples."""
        cqr = self._cqr
        head = cqr[self._cq_head_i]
        n = (cqr[self._cq_tail_i] - head) & M32
        if max_nr is not None:
            n = min(n, max_nr)
        out = []
        q, w, mask, step = self._cqe_q, self._cqe_i, self.cq_mask, self._cqe_qw
        for k in range(n):
            i = ((head + k) & mask) * step
            res = w[2 * i + 2]
            out.append(Completion(q[i], res, w[2 * i + 3] & M32))
        if n:
            if self._inflight:
                self._release(head, n)
            cqr[self._cq_head_i] = (head + n) & M32
        return out

    def __iter__(self) -> Iterator[Completion]:
        """Iterate over ready completions (copies), consuming each as it is yielded."""
        while True:
            got = self.reap(1)
            if not got:
                return
            yield got[0]

    def wait(self, nr: int = 1, timeout: float | None = None) -> list[Completion]:
        """Wait until ``nr`` CQEs are ready, then reap all ready ones."""
        self.wait_cqe_nr(nr, timeout)
        return self.reap()

    # ------------------------------------------------------------------ keep-alive
    def _transfer(self, slots) -> None:
        """At publication: move each slot's keep-alive to the in-flight table.

        In-flight entries are keyed by user_data with a count of requests expected to post
        a CQE under that user_data; the keep-alives go when the count drops to zero. A
        CQE_SKIP_SUCCESS request posts no CQE on success, so its keep-alive rides with the
        next request of its link chain that does post, or (alone) stays until close().
        """
        keeps, inflight = self._slot_keep, self._inflight
        pending: list = []
        size_q = self.sqe_size >> 3
        for idx in slots:
            keep = keeps.pop(idx, None)
            base = idx * self.sqe_size
            sflags = self._sqe_b[base + 1]
            ud = self._sqe_q[idx * size_q + 4]
            if keep is not None:
                pending.append(keep)
            if sflags & u.IOSQE_CQE_SKIP_SUCCESS:
                if not sflags & _LINK_FLAGS and pending:
                    self._orphans.extend(pending)
                    pending = []
                continue
            entry = inflight.get(ud)
            if pending:
                if entry is None:
                    entry = inflight[ud] = [0]
                entry.extend(pending)
                pending = []
            if entry is not None:
                entry[0] += 1
        if pending:
            self._orphans.extend(pending)

    def _release(self, head: int, n: int) -> None:
        q, w, mask, step, inflight = self._cqe_q, self._cqe_i, self.cq_mask, self._cqe_qw, \
            self._inflight
        for k in range(n):
            i = ((head + k) & mask) * step
            entry = inflight.get(q[i])
            if entry is not None and not w[2 * i + 3] & u.IORING_CQE_F_MORE:
                entry[0] -= 1
                if entry[0] <= 0:
                    del inflight[q[i]]

    def _keep(self, idx: int, keep: Any) -> None:
        if keep is not None:
            self._slot_keep[idx] = keep

    # ------------------------------------------------------------------ prep helpers
    def _sqe(self, op: int, fd: int, addr: int, length: int, off: int, user_data: int,
             flags: int):
        if not 0 <= user_data <= U64:
            raise ValueError("user_data must fit in 64 bits")
        if flags & ~_KNOWN_SQE_FLAGS or flags < 0:
            raise ValueError(f"unknown IOSQE_* bits in {flags:#x}")
        idx = self._next_slot()
        sqe = self.sqe_view(idx)
        pp.prep_rw(sqe, op, fd, addr, length, off)
        sqe.flags = flags
        sqe.user_data = user_data
        return idx, sqe

    def prep_rw(self, op: int, fd: int, addr: int, length: int, offset: int = 0, *,
                op_flags: int = 0, user_data: int = 0, flags: int = 0, keep: Any = None):
        """liburing's ``io_uring_prep_rw`` on raw values: opcode ``op``, ``fd``, ``addr``,
        ``len`` = ``length``, ``off`` = ``offset`` (-1: the file position), the op-specific
        flags word (``rw_flags``/``msg_flags``/...) = ``op_flags``; returns the SQE view.

        The hot path for callers that already hold an address (uringbpf.aio): no buffer
        conversion, fields written through word views. The caller vouches for ``addr``
        and ``length`` (as with a raw ``get_sqe()``); ``keep`` is kept alive until the
        request's CQE is reaped, like the buffers of the other prep helpers.
        """
        if not 0 <= op <= 0xFF or self.sq_rewind:
            if not 0 <= op <= 0xFF:
                raise ValueError(f"opcode {op} out of range")
            idx, sqe = self._sqe(op, _fileno(fd), addr, length, self._offset(offset),
                                 user_data, flags)
            sqe.rw_flags = op_flags & M32
            self._keep(idx, keep)
            return sqe
        if not 0 <= user_data <= U64:
            raise ValueError("user_data must fit in 64 bits")
        if flags & ~_KNOWN_SQE_FLAGS or flags < 0:
            raise ValueError(f"unknown IOSQE_* bits in {flags:#x}")
        t = self._sqe_tail
        if (t - self._sqr[self._sq_head_i]) & M32 >= self.sq_entries:
            raise SubmissionQueueFull(f"all {self.sq_entries} SQEs are queued; submit() first")
        idx = t & self.sq_mask
        size = self.sqe_size
        off = idx * size
        w, q = off >> 2, off >> 3
        sw, sq_ = self._sqe_w, self._sqe_q
        # value checks before the slot is claimed: a bad argument leaves the SQ untouched
        fdw = fd & M32 if type(fd) is int and -(1 << 31) <= fd < (1 << 31) else _fileno(fd) & M32
        offq = U64 if offset == -1 else self._offset(offset)
        if not 0 <= addr <= U64 or not 0 <= length <= M32:
            raise ValueError("addr must fit in 64 bits and length in 32")
        self._sqe_tail = (t + 1) & M32
        if self._slot_keep:
            self._drop_slot_keep(idx)
        self._sqe_b[off:off + size] = self._zero_sqe
        sw[w] = op | (flags << 8)
        sw[w + 1] = fdw
        sq_[q + 1] = offq
        sq_[q + 2] = addr
        sw[w + 6] = length
        sw[w + 7] = op_flags & M32
        sq_[q + 4] = user_data
        if keep is not None:
            self._slot_keep[idx] = keep
        v = self._sqe_views[idx]
        return v if v is not None else self.sqe_view(idx)

    def prep_nop(self, user_data: int = 0, flags: int = 0, *, inject: int | None = None):
        """A NOP (``inject``: complete with this result via IORING_NOP_INJECT_RESULT).

        This is the benchmark hot path: the common case writes the SQE through word views
        without going through ctypes attribute setters.
        """
        if inject is not None or self.sq_rewind or flags or not 0 <= user_data <= U64:
            _, sqe = self._sqe(u.IORING_OP_NOP, -1, 0, 0, 0, user_data, flags)
            if inject is not None:
                sqe.nop_flags = u.IORING_NOP_INJECT_RESULT
                sqe.len = inject & M32
            return sqe
        t = self._sqe_tail
        if (t - self._sqr[self._sq_head_i]) & M32 >= self.sq_entries:
            raise SubmissionQueueFull(f"all {self.sq_entries} SQEs are queued; submit() first")
        idx = t & self.sq_mask
        self._sqe_tail = (t + 1) & M32
        if self._slot_keep:
            self._drop_slot_keep(idx)
        size = self.sqe_size
        off = idx * size
        self._sqe_b[off:off + size] = self._zero_sqe
        w = off >> 2
        self._sqe_w[w + 1] = M32             # fd = -1 (opcode 0 = NOP, flags 0)
        self._sqe_q[(w >> 1) + 4] = user_data
        v = self._sqe_views[idx]
        return v if v is not None else self.sqe_view(idx)

    @staticmethod
    def _offset(offset: int) -> int:
        if offset == -1:
            return U64
        if not 0 <= offset <= U64:
            raise ValueError("offset must be >= 0 (or -1: the file position)")
        return offset

    def _rw(self, op: int, fd, buf, offset: int, nbytes, writable: bool, user_data: int,
            flags: int):
        addr, n, keep = bf.buffer_address(buf, writable)
        if nbytes is not None:
            if not 0 <= nbytes <= n:
                raise ValueError(f"nbytes={nbytes} but the buffer has {n} bytes")
            n = nbytes
        idx, sqe = self._sqe(op, _fileno(fd), addr, n, self._offset(offset), user_data, flags)
        self._keep(idx, keep)
        return sqe

    def prep_read(self, fd, buf, offset: int = 0, *, nbytes: int | None = None,
                  user_data: int = 0, flags: int = 0):
        """Read into a writable buffer (kept alive until the CQE is reaped)."""
        return self._rw(u.IORING_OP_READ, fd, buf, offset, nbytes, True, user_data, flags)

    def prep_write(self, fd, buf, offset: int = 0, *, nbytes: int | None = None,
                   user_data: int = 0, flags: int = 0):
        """Write ``nbytes`` (default: all) of ``buf`` at ``offset`` (-1: the file position)."""
        return self._rw(u.IORING_OP_WRITE, fd, buf, offset, nbytes, False, user_data, flags)

    def _rwv(self, op: int, fd, bufs, offset: int, writable: bool, user_data: int, flags: int):
        addr, cnt, keep = bf.iovec_array(bufs, writable)
        idx, sqe = self._sqe(op, _fileno(fd), addr, cnt, self._offset(offset), user_data, flags)
        self._keep(idx, keep)
        return sqe

    def prep_readv(self, fd, bufs, offset: int = 0, *, user_data: int = 0, flags: int = 0):
        """Read into a list of writable buffers (one iovec each)."""
        return self._rwv(u.IORING_OP_READV, fd, bufs, offset, True, user_data, flags)

    def prep_writev(self, fd, bufs, offset: int = 0, *, user_data: int = 0, flags: int = 0):
        """Write a list of buffers (one iovec each)."""
        return self._rwv(u.IORING_OP_WRITEV, fd, bufs, offset, False, user_data, flags)

    def _fixed(self, op: int, fd, buf_index: int, nbytes: int | None, offset: int,
               buf_offset: int, user_data: int, flags: int):
        table = self._fixed_bufs
        if not table or not 0 <= buf_index < len(table) or table[buf_index] is None:
            raise ValueError(f"no registered buffer at index {buf_index}")
        base, size = table[buf_index]
        if not 0 <= buf_offset <= size:
            raise ValueError("buf_offset outside the registered buffer")
        if nbytes is None:
            nbytes = size - buf_offset
        if not 0 <= nbytes <= size - buf_offset:
            raise ValueError(f"nbytes={nbytes} exceeds registered buffer {buf_index}")
        idx, sqe = self._sqe(op, _fileno(fd), base + buf_offset, nbytes, self._offset(offset),
                             user_data, flags)
        sqe.buf_index = buf_index
        # the registered buffers must outlive this request even if unregistered meanwhile
        self._keep(idx, self._fixed_keep)
        return sqe

    def prep_read_fixed(self, fd, buf_index: int, nbytes: int | None = None, offset: int = 0,
                        *, buf_offset: int = 0, user_data: int = 0, flags: int = 0):
        """READ_FIXED into registered buffer ``buf_index`` (at ``buf_offset``)."""
        return self._fixed(u.IORING_OP_READ_FIXED, fd, buf_index, nbytes, offset, buf_offset,
                           user_data, flags)

    def prep_write_fixed(self, fd, buf_index: int, nbytes: int | None = None, offset: int = 0,
                         *, buf_offset: int = 0, user_data: int = 0, flags: int = 0):
        """WRITE_FIXED from registered buffer ``buf_index`` (from ``buf_offset``, ``nbytes`` or
        the rest)."""
        return self._fixed(u.IORING_OP_WRITE_FIXED, fd, buf_index, nbytes, offset, buf_offset,
                           user_data, flags)

    def prep_fsync(self, fd, fsync_flags: int = 0, *, user_data: int = 0, flags: int = 0):
        """IORING_OP_FSYNC (``fsync_flags``: IORING_FSYNC_DATASYNC for fdatasync)."""
        _, sqe = self._sqe(u.IORING_OP_FSYNC, _fileno(fd), 0, 0, 0, user_data, flags)
        sqe.fsync_flags = fsync_flags
        return sqe

    def prep_openat(self, path, open_flags: int = os.O_RDONLY, mode: int = 0o644, *,
                    dfd: int = -100, file_index: int | None = None, user_data: int = 0,
                    flags: int = 0):
        """openat(dfd, path, open_flags, mode); ``file_index`` opens into a fixed-file slot
        (0-based; ``IORING_FILE_INDEX_ALLOC`` to let the kernel pick)."""
        addr, keep = bf.path_bytes(path)
        idx, sqe = self._sqe(u.IORING_OP_OPENAT, _fileno(dfd), addr, mode, 0, user_data, flags)
        sqe.open_flags = open_flags & M32
        if file_index is not None:
            sqe.file_index = (file_index if file_index == u.IORING_FILE_INDEX_ALLOC
                              else file_index + 1) & M32
        self._keep(idx, keep)
        return sqe

    def prep_close(self, fd=-1, *, file_index: int | None = None, user_data: int = 0,
                   flags: int = 0):
        """close(fd), or remove fixed-file slot ``file_index`` (close_direct)."""
        _, sqe = self._sqe(u.IORING_OP_CLOSE, _fileno(fd) if file_index is None else 0, 0, 0, 0,
                           user_data, flags)
        if file_index is not None:
            sqe.file_index = (file_index + 1) & M32
        return sqe

    def prep_timeout(self, seconds: float, count: int = 0, timeout_flags: int = 0, *,
                     user_data: int = 0, flags: int = 0):
        """A TIMEOUT: -ETIME after ``seconds``, or 0 once ``count`` other CQEs were posted."""
        ts = u.KernelTimespec.from_seconds(seconds)
        idx, sqe = self._sqe(u.IORING_OP_TIMEOUT, -1, ctypes.addressof(ts), 1, count, user_data,
                             flags)
        sqe.timeout_flags = timeout_flags
        self._keep(idx, ts)
        return sqe

    def prep_link_timeout(self, seconds: float, timeout_flags: int = 0, *, user_data: int = 0,
                          flags: int = 0):
        """Bound the previous (IO_LINK-ed) request to ``seconds``."""
        ts = u.KernelTimespec.from_seconds(seconds)
        idx, sqe = self._sqe(u.IORING_OP_LINK_TIMEOUT, -1, ctypes.addressof(ts), 1, 0, user_data,
                             flags)
        sqe.timeout_flags = timeout_flags
        self._keep(idx, ts)
        return sqe

    def prep_poll_add(self, fd, poll_mask: int, *, user_data: int = 0, flags: int = 0):
        """IORING_OP_POLL_ADD: complete when ``fd`` has an event of ``poll_mask``."""
        _, sqe = self._sqe(u.IORING_OP_POLL_ADD, _fileno(fd), 0, 0, 0, user_data, flags)
        sqe.poll32_events = poll_mask & M32
        return sqe

    def prep_send(self, sock, buf, msg_flags: int = 0, *, nbytes: int | None = None,
                  user_data: int = 0, flags: int = 0):
        """Send ``nbytes`` (default: all) of ``buf`` on a socket with ``msg_flags``."""
        sqe = self._rw(u.IORING_OP_SEND, sock, buf, 0, nbytes, False, user_data, flags)
        sqe.msg_flags = msg_flags & M32
        return sqe

    def prep_recv(self, sock, buf, msg_flags: int = 0, *, nbytes: int | None = None,
                  user_data: int = 0, flags: int = 0):
        """Receive up to ``nbytes`` (default: the buffer's size) into a writable buffer."""
        sqe = self._rw(u.IORING_OP_RECV, sock, buf, 0, nbytes, True, user_data, flags)
        sqe.msg_flags = msg_flags & M32
        return sqe

    def prep_accept(self, sock, accept_flags: int = 0, *, user_data: int = 0, flags: int = 0):
        """accept4(sock, NULL, NULL, accept_flags): the CQE's res is the new fd."""
        _, sqe = self._sqe(u.IORING_OP_ACCEPT, _fileno(sock), 0, 0, 0, user_data, flags)
        sqe.accept_flags = accept_flags & M32
        return sqe

    def prep_connect(self, sock, address, *, family: int | None = None, user_data: int = 0,
                     flags: int = 0):
        """connect(sock, address): ``(host, port)`` or a path for AF_UNIX."""
        if family is None:
            family = sock.family if isinstance(sock, socket.socket) else socket.AF_INET
        addr, alen, keep = bf.sockaddr(address, family)
        idx, sqe = self._sqe(u.IORING_OP_CONNECT, _fileno(sock), addr, 0, alen, user_data, flags)
        self._keep(idx, keep)
        return sqe

    def prep_msg_ring(self, target, res: int, data: int, msg_ring_flags: int = 0, *,
                      user_data: int = 0, flags: int = 0):
        """Post a CQE (user_data=``data``, res=``res``) into ring ``target`` (Ring or fd)."""
        fd = target.fd if isinstance(target, Ring) else _fileno(target)
        _, sqe = self._sqe(u.IORING_OP_MSG_RING, fd, u.IORING_MSG_DATA, res & M32, data & U64,
                           user_data, flags)
        sqe.msg_ring_flags = msg_ring_flags
        return sqe

    def prep_cancel(self, target_user_data: int, cancel_flags: int = 0, *, user_data: int = 0,
                    flags: int = 0):
        """ASYNC_CANCEL the request(s) whose user_data is ``target_user_data``."""
        _, sqe = self._sqe(u.IORING_OP_ASYNC_CANCEL, -1, target_user_data & U64, 0, 0, user_data,
                           flags)
        sqe.cancel_flags = cancel_flags
        return sqe

    def prep_uring_cmd(self, fd, cmd_op: int, cmd: bytes = b"", *, user_data: int = 0,
                       flags: int = 0):
        """URING_CMD with ``cmd`` copied into the SQE's command area (16 or 80 bytes)."""
        room = self.sqe_size - u.SQE_CMD_OFFSET
        if len(cmd) > room:
            raise ValueError(f"uring_cmd payload is {len(cmd)} bytes; this ring's SQEs hold "
                             f"{room} (use IORING_SETUP_SQE128 for 80)")
        _, sqe = self._sqe(u.IORING_OP_URING_CMD, _fileno(fd), 0, 0, 0, user_data, flags)
        pp.prep_uring_cmd(sqe, _fileno(fd), cmd_op, cmd, self.sqe_size)
        sqe.user_data = user_data
        sqe.flags = flags
        return sqe

    # ------------------------------------------------------------------ register
    def add_register_hook(self, fn: Callable) -> None:
        """``fn(ring, opcode, arg, nr_args) -> int | None`` runs before the kernel's
        io_uring_register; a non-None result is returned instead (designs use it for
        registrations the kernel lacks, e.g. IORING_REGISTER_BPF_FILTER)."""
        if not callable(fn):
            raise TypeError("register hook must be callable")
        self._register_hooks.append(fn)

    def register(self, opcode: int, arg: int = 0, nr_args: int = 0) -> int:
        """Raw io_uring_register(2): ``>= 0`` or ``-errno`` (register hooks first)."""
        for fn in self._register_hooks:
            ret = fn(self, opcode, arg, nr_args)
            if ret is not None:
                return ret
        return self._be.register(opcode, arg, nr_args)

    def probe(self) -> set[int]:
        """The opcodes the backend supports (IORING_REGISTER_PROBE)."""
        return self._be.probe()

    def register_files(self, fds: list) -> None:
        """Register a fixed-file table; ``-1`` entries are empty (sparse) slots."""
        if not isinstance(fds, (list, tuple)) or not fds:
            raise ValueError("fds must be a non-empty list")
        arr = (ctypes.c_int32 * len(fds))(*[_fileno(f) for f in fds])
        self._check(self.register(u.IORING_REGISTER_FILES, ctypes.addressof(arr), len(fds)),
                    "IORING_REGISTER_FILES")

    def register_files_sparse(self, nr: int) -> None:
        """Register ``nr`` empty fixed-file slots (IORING_RSRC_REGISTER_SPARSE)."""
        if nr <= 0:
            raise ValueError("nr must be > 0")
        reg = u.IoUringRsrcRegister(nr=nr, flags=u.IORING_RSRC_REGISTER_SPARSE)
        self._check(self.register(u.IORING_REGISTER_FILES2, ctypes.addressof(reg),
                                  ctypes.sizeof(reg)), "IORING_REGISTER_FILES2")

    def register_files_update(self, offset: int, fds: list) -> int:
        """Replace slots ``offset..`` (``-1`` clears a slot); returns the number updated."""
        if not fds:
            raise ValueError("fds must be a non-empty list")
        arr = (ctypes.c_int32 * len(fds))(*[_fileno(f) for f in fds])
        upd = u.IoUringRsrcUpdate(offset=offset, data=ctypes.addressof(arr))
        return self._check(self.register(u.IORING_REGISTER_FILES_UPDATE, ctypes.addressof(upd),
                                         len(fds)), "IORING_REGISTER_FILES_UPDATE")

    def unregister_files(self) -> None:
        """Drop the registered file table (IORING_UNREGISTER_FILES)."""
        self._check(self.register(u.IORING_UNREGISTER_FILES, 0, 0), "IORING_UNREGISTER_FILES")

    def register_buffers(self, buffers: list) -> None:
        """Register writable buffers for READ_FIXED/WRITE_FIXED (kept alive until
        unregistered or the ring closes)."""
        addr, n, keep = bf.iovec_array(list(buffers), True)
        self._check(self.register(u.IORING_REGISTER_BUFFERS, addr, n), "IORING_REGISTER_BUFFERS")
        arr = (u.Iovec * n).from_address(addr)
        self._fixed_bufs = [(arr[i].iov_base or 0, arr[i].iov_len) for i in range(n)]
        self._fixed_keep = keep

    def register_buffers_sparse(self, nr: int) -> None:
        """Register ``nr`` empty buffer slots, to be filled by register_buffers_update."""
        if nr <= 0:
            raise ValueError("nr must be > 0")
        reg = u.IoUringRsrcRegister(nr=nr, flags=u.IORING_RSRC_REGISTER_SPARSE)
        self._check(self.register(u.IORING_REGISTER_BUFFERS2, ctypes.addressof(reg),
                                  ctypes.sizeof(reg)), "IORING_REGISTER_BUFFERS2")
        self._fixed_bufs = [None] * nr
        self._fixed_keep = [None] * nr

    def register_buffers_update(self, offset: int, buffers: list) -> int:
        """Put buffers into registered slots ``offset..``; returns the number updated."""
        if self._fixed_bufs is None:
            raise ValueError("no registered buffer table")
        if not 0 <= offset or offset + len(buffers) > len(self._fixed_bufs):
            raise ValueError("update beyond the registered buffer table")
        addr, n, keep = bf.iovec_array(list(buffers), True)
        upd = u.IoUringRsrcUpdate2(offset=offset, data=addr, nr=n)
        ret = self._check(self.register(u.IORING_REGISTER_BUFFERS_UPDATE, ctypes.addressof(upd),
                                        ctypes.sizeof(upd)), "IORING_REGISTER_BUFFERS_UPDATE")
        arr = (u.Iovec * n).from_address(addr)
        if not isinstance(self._fixed_keep, list) or len(self._fixed_keep) != len(self._fixed_bufs):
            self._fixed_keep = [self._fixed_keep] + [None] * len(self._fixed_bufs)
        for i in range(n):
            self._fixed_bufs[offset + i] = (arr[i].iov_base or 0, arr[i].iov_len)
            self._fixed_keep.append(keep)
        return ret

    def unregister_buffers(self) -> None:
        """Drop the registered buffers and release their keep-alives."""
        self._check(self.register(u.IORING_UNREGISTER_BUFFERS, 0, 0), "IORING_UNREGISTER_BUFFERS")
        self._fixed_bufs = None
        self._fixed_keep = None

    # ------------------------------------------------------------------ close
    def add_close_hook(self, fn: Callable[["Ring"], None]) -> None:
        """Run ``fn(ring)`` at the start of :meth:`close`, before ring memory goes away
        (the loop design stops a loop running on another thread there)."""
        self.__dict__.setdefault("_close_hooks", []).append(fn)

    def remove_close_hook(self, fn: Callable[["Ring"], None]) -> None:
        """Remove a hook added with ``add_close_hook`` (absent hooks are ignored)."""
        hooks = self.__dict__.get("_close_hooks", [])
        if fn in hooks:
            hooks.remove(fn)

    def close(self) -> None:
        """Close the ring. Idempotent; any later use raises :class:`RingClosedError`.

        Buffers of requests whose CQE was never reaped are parked in a module-level list
        (never freed) because the kernel may still be writing into them while it tears
        the ring down asynchronously.
        """
        if self._closed:
            return
        # Designs whose native code may be using ring memory on another thread stop it
        # here, before anything is unmapped; a hook may raise to refuse the close.
        for hook in list(self.__dict__.get("_close_hooks", ())):
            hook(self)
        self._closed = True
        if _by_fd.get(self.fd) is self:
            del _by_fd[self.fd]
        leftovers = [v for v in self._inflight.values()] + self._orphans + \
            list(self._slot_keep.values())
        if self._fixed_keep is not None:
            leftovers.append(self._fixed_keep)
        if leftovers:
            _graveyard.append(leftovers)
        try:
            self._be.close()
        finally:
            fd = -1
            d = self.__dict__
            keep = {k: d[k] for k in ("flags", "emulated_flags", "backend", "sq_entries",
                                       "cq_entries", "sqe_size", "cqe_size", "features",
                                       "params", "kernel_flags") if k in d}
            d.clear()
            d.update(keep, _closed=True, fd=fd)
            self.__class__ = _ClosedRing

    def __del__(self) -> None:
        # an error here is reported by Python ("Exception ignored in ..."), not hidden
        if not self.__dict__.get("_closed", True):
            self.close()


class _ClosedRing(Ring):
    """What a Ring becomes after close(): every operation raises RingClosedError."""

    _ALLOWED = frozenset(["close", "closed", "fd", "backend", "flags", "emulated_flags",
                          "sq_entries", "cq_entries", "sqe_size", "cqe_size", "features",
                          "params", "kernel_flags", "__class__", "__dict__", "__repr__",
                          "__enter__", "__exit__", "__del__", "_closed", "__eq__", "__hash__",
                          "__ne__", "__reduce_ex__", "__reduce__", "__getstate__"])

    def __getattribute__(self, name: str):
        if name in _ClosedRing._ALLOWED:
            return object.__getattribute__(self, name)
        raise RingClosedError(f"Ring.{name}: the ring is closed")

    def __repr__(self) -> str:
        return f"<Ring closed backend={self.__dict__.get('backend')}>"

    def close(self) -> None:
        return None

    def __enter__(self):
        raise RingClosedError("the ring is closed")
