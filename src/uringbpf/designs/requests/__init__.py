"""The 2021 "io_uring BPF requests" RFC (Begunkov, v2) with multiple completion queues,
and the Dietrich/Schirmeier programming model on top of it.

What the RFC added to the kernel, and how we provide it on a kernel that has none of it:

* **Extra CQs** (``nr_cq``/``cq_sizes`` at setup; ``sqe->cq_idx`` picks one).  The real
  kernel has one CQ, so every CQ the application or a program sees — CQ 0 included — is a
  block of memory laid out like the kernel's CQ ring (same ``cq_off`` offsets: head, tail,
  ring_mask, ring_entries, overflow, CQEs).  The engine drains the *kernel's* CQ into them:
  on submit it reads ``cq_idx`` (u16 at byte 48), clears it and, when it is not 0, swaps
  the SQE's ``user_data`` for a private token; a kernel CQE carrying a token is posted to
  its CQ with the original ``user_data``.  Only CQ 0 keeps an overflow list.
* **BPF requests** (``IORING_OP_BPF``): never reach the kernel as such.  On submit the SQE
  is checked like the RFC's ``io_bpf_prep`` and rewritten in place into a NOP carrying a
  token; when that NOP completes (so a BPF SQE inside a link chain runs after the I/O
  before it, as Dietrich/Schirmeier asked) the request is queued and its program runs
  with a fresh ``struct io_uring_bpf_ctx``.  ``wait_nr``/``wait_idx`` park it until the
  CQ holds enough CQEs; then the same program runs again.
* **Helpers 164-167** with the RFC's ids (queue SQE, emit CQE, reap CQE, copy to user).

Programs run on the application's thread inside ``submit``/``enter``/``wait_cqe`` (the
RFC ran them from task_work of the submitting task): at most ``max_runs_per_enter`` runs
per call, so a program that re-queues itself forever cannot starve the application, and
Ctrl-C is seen between runs and while blocked in ``io_uring_enter``.

The package is the design's plug-in (docs/adding-a-design.md): :data:`DESIGN` contributes
the RFC's helpers (C twins in ``requests.c``) and ``SEC("iouring")`` to a platform, and
:class:`RequestsRing` is the ring with the RFC's extra CQs. The engine itself (CQ routing,
BPF requests, the Python implementation) is :mod:`.engine`; the native engine over
``requests.c`` is :mod:`.native_engine`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
from ctypes import sizeof
from typing import Sequence

from ...bpf import progtypes as pt
from ...bpf.helpers import Arg
from ...bpf.platform import Design, Platform
from ...uring import uapi as u
from ...uring.ring import Completion, Ring as BaseRing
from . import native_engine
from .engine import *  # noqa: F401,F403  (the engine's public names are the design's)
from .engine import (_CQE_SIZE, _CTX_OWNERS, _base_method, _native_ctx, _request_of, _s32,  # noqa: F401
                     CTX_SIZE, PROG_TYPE, RequestsEngine, copy_to_user)


def _add_helpers(platform: Platform) -> None:
    @platform.helper(BPF_FUNC_iouring_queue_sqe, "iouring_queue_sqe",
                     (Arg.CTX, Arg.MEM, Arg.CONST_SIZE), sleepable_only=True)
    def iouring_queue_sqe(rt, ctx, sqe, size, _r4=0, _r5=0):
        if _native_ctx(ctx):
            return _native("rq_h_queue_sqe")(ctx, sqe, size, 0, 0)
        req = _request_of(ctx)
        if req is None or size != sizeof(u.Sqe) or not req.slot.sleepable:
            return -errno.EINVAL
        return req.engine.queue_sqe(ctypes.string_at(sqe, sizeof(u.Sqe)))

    @platform.helper(BPF_FUNC_iouring_emit_cqe, "iouring_emit_cqe",
                     (Arg.CTX, Arg.SCALAR, Arg.SCALAR, Arg.SCALAR, Arg.SCALAR))
    def iouring_emit_cqe(rt, ctx, cq_idx, user_data, res, flags):
        if _native_ctx(ctx):
            return _native("rq_h_emit_cqe")(ctx, cq_idx, user_data, res, flags)
        req = _request_of(ctx)
        if req is None:
            return -errno.EINVAL
        return req.engine.emit_cqe(cq_idx & 0xFFFFFFFF, user_data, _s32(res), flags & 0xFFFFFFFF)

    @platform.helper(BPF_FUNC_iouring_reap_cqe, "iouring_reap_cqe",
                     (Arg.CTX, Arg.SCALAR, Arg.UNINIT_MEM, Arg.CONST_SIZE))
    def iouring_reap_cqe(rt, ctx, cq_idx, out, size, _r5=0):
        if _native_ctx(ctx):
            return _native("rq_h_reap_cqe")(ctx, cq_idx, out, size, 0)
        req = _request_of(ctx)
        size &= 0xFFFFFFFF
        ret = -errno.EINVAL
        if req is not None and size == _CQE_SIZE:
            ret = req.engine.reap_cqe(cq_idx & 0xFFFFFFFF)
            if isinstance(ret, bytes):
                ctypes.memmove(out, ret, _CQE_SIZE)
                return 0
        if out and size:
            ctypes.memset(out, 0, size)
        return ret

    @platform.helper(BPF_FUNC_copy_to_user, "bpf_copy_to_user",
                     (Arg.ANYTHING, Arg.MEM, Arg.CONST_SIZE_OR_ZERO), sleepable_only=True)
    def bpf_copy_to_user(rt, uptr, src, size, _r4=0, _r5=0):
        return copy_to_user(uptr, src, size & 0xFFFFFFFF)


def _native(name: str):
    """A C helper of requests.c (for the Python helpers, on native engines' contexts)."""
    return native_engine.native_helper(name)


def make_engine(ring, nr_cq: int = 0, cq_sizes: Sequence[int] | None = None, *,
                native: bool | str = "auto", **options) -> RequestsEngine:
    """The native engine when asked for (or "auto" and it builds), else the Python one."""
    if native not in (True, False, "auto"):
        raise ValueError("native must be True, False or 'auto'")
    if native and getattr(ring, "backend", "kernel") != "kernel":
        if native is True:
            raise ValueError("the native engine needs the kernel backend")
        native = False         # the thread-pool backend has no io_uring fd to enter
    if native:
        try:
            engine = native_engine.NativeRequestsEngine(ring, nr_cq, cq_sizes, **options)
            engine.platform = DESIGN.platform()
            return engine
        except (OSError, RuntimeError) as exc:
            if native is True or isinstance(exc, OSError) and exc.errno == errno.EINVAL:
                raise
    engine = RequestsEngine(ring, nr_cq, cq_sizes, **options)
    engine.platform = DESIGN.platform()
    return engine


def _add_prog_type(platform: Platform) -> None:
    """SEC("iouring/") and SEC("iouring.s/"): r1 -> io_uring_bpf_ctx, must return 0."""
    # io_bpf_is_valid_access (RFC v2, fs/io_uring.c): 0 <= off < sizeof(ctx), off % size
    # == 0, and off/size exactly one field: no narrower load, no access spanning two
    # fields (so no merged 8-byte store to wait_nr + wait_idx). It never looks at the
    # access type: a program may write user_data too (the next run's context is fresh).
    layout = pt.Layout("io_uring_bpf_ctx", CTX_SIZE, (
        pt.Field("user_data", 0, 8, read=True, write=True),
        pt.Field("wait_nr", 8, 4, read=True, write=True),
        pt.Field("wait_idx", 12, 4, read=True, write=True),
    ), exact=True)
    platform.add_section("iouring", pt.ProgType(PROG_TYPE, ctx="struct", layout=layout,
                                                ret_range=(0, 0), sleepable=None))





def enable_requests(ring, nr_cq: int = 0, cq_sizes: Sequence[int] | None = None,
                    **options) -> RequestsEngine:
    """Turn an open ``uring.ring.Ring`` into a :class:`Ring` with BPF requests and CQs.

    The object keeps its identity (its class becomes ours, the way ``Ring.close`` turns
    it into a closed ring), so code holding the ring sees CQ 0 through the same verbs.
    Returns the engine (also ``ring.requests``).
    """
    if isinstance(getattr(ring, "requests", None), RequestsEngine):
        raise RuntimeError("BPF requests are already enabled on this ring")
    cls = RequestsRing
    base = cls.__mro__[1]
    if type(ring) is not base:
        raise TypeError(f"enable_requests needs a plain {base.__name__}, not {type(ring).__name__}")
    ring.requests = make_engine(ring, nr_cq, cq_sizes, **options)
    ring.__class__ = cls
    return ring.requests


def _ring_class():
    """``RequestsRing``: :class:`uringbpf.uring.ring.Ring` with ``nr_cq``/``cq_sizes``."""

    class Ring(BaseRing):
        """A ring with the RFC's extra CQs and BPF requests.

        ``Ring(entries, nr_cq=2, cq_sizes=[128, 128])`` gives CQs 0, 1 and 2.  Other
        arguments are the base ring's, plus ``serialize``, ``private_cq`` and
        ``max_runs_per_enter`` (see :class:`RequestsEngine`).  The CQ verbs (``peek_cqe``,
        ``wait_cqe``, ``wait_cqe_nr``, ``cq_ready``, ``cq_advance``, ``reap``, ``wait``,
        iteration) work on CQ 0 as usual and take an optional ``cq_idx``.
        """

        def __init__(self, entries: int = 8, *args, nr_cq: int = 0,
                     cq_sizes: Sequence[int] | None = None, serialize: bool = False,
                     private_cq: bool = False, max_runs_per_enter: int = 256,
                     native: bool | str = "auto", **kwargs):
            super().__init__(entries, *args, **kwargs)
            with contextlib.ExitStack() as undo:   # no engine: the ring closes again
                undo.callback(super().close)
                self.requests = make_engine(self, nr_cq, cq_sizes, native=native,
                                            serialize=serialize, private_cq=private_cq,
                                            max_runs_per_enter=max_runs_per_enter)
                undo.pop_all()

        # -- the RFC's additions
        def cq(self, index: int = 0) -> CompletionQueue:
            """CQ ``index`` (0 is the application's; 1..nr_cq the extra ones)."""
            return self.requests.cq(index)

        @property
        def nr_cqs(self) -> int:
            return self.requests.nr_cqs

        @property
        def private_cq(self) -> int | None:
            return self.requests.private_cq

        def register_bpf(self, programs: Sequence[Any], engine: str = "interp") -> int:
            return self.requests.register_bpf(programs, engine)

        def unregister_bpf(self) -> int:
            self.__dict__.pop("functions", None)
            return self.requests.unregister_bpf()

        def register_functions(self, obj, names: Sequence[str] | None = None) -> dict:
            """Dietrich/Schirmeier's "one program, several functions" on the RFC's table:
            register ``obj``'s iouring programs (``names`` in order, or all in ELF
            order) and return ``{name: index}``; ``prep_bpf`` then also takes a name."""
            names = list(names) if names is not None else [
                n for n, p in obj.programs.items() if _is_iouring_program(p.program)]
            ret = self.requests.register_bpf([obj.programs[n] for n in names])
            if ret:
                raise OSError(-ret, f"register_bpf: {os.strerror(-ret)}")
            self.functions = {n: i for i, n in enumerate(names)}
            return dict(self.functions)

        def prep_bpf(self, index: int | str, *, user_data: int = 0, cq_idx: int = 0,
                     flags: int = 0):
            if isinstance(index, str):
                functions = self.__dict__.get("functions") or {}
                if index not in functions:
                    raise KeyError(f"no registered function {index!r}")
                index = functions[index]
            linked = flags & (u.IOSQE_IO_LINK | u.IOSQE_IO_HARDLINK)
            if linked and self.sq_space_left() < 2:
                raise RuntimeError("a linked BPF request needs 2 free SQEs; submit() first")
            sqe = prep_bpf(self.get_sqe(), index, user_data, cq_idx)
            sqe.flags = flags
            if linked:     # successors wait for the program, as for any linked request
                sqe.flags = flags | u.IOSQE_IO_LINK
                prep_bpf_gate(self.get_sqe(), flags & (u.IOSQE_IO_LINK | u.IOSQE_IO_HARDLINK))
            return sqe

        def add_sqe_filter(self, fn) -> None:
            """Other designs' filters run before ours, so they see SQEs as submitted
            (an IORING_OP_BPF SQE, the original user_data and cq_idx) rather than the
            NOPs and tokens we turn them into."""
            engine = self.__dict__.get("requests")
            if engine is None:
                return super().add_sqe_filter(fn)
            super().remove_sqe_filter(engine._on_sqe)
            try:
                super().add_sqe_filter(fn)
            finally:
                super().add_sqe_filter(engine._on_sqe)

        # -- enter: submit to the kernel, then run programs, then wait on a CQ
        def enter(self, to_submit: int, min_complete: int = 0, flags: int = 0,
                  sig: int | None = None, timeout: float | None = None) -> int:
            engine = self.requests
            getevents = flags & u.IORING_ENTER_GETEVENTS
            ret = 0
            if to_submit or not getevents or flags & ~u.IORING_ENTER_GETEVENTS:
                ret = super().enter(to_submit, 0, flags & ~u.IORING_ENTER_GETEVENTS, sig)
                if ret < 0:
                    return ret
            engine.pump()
            if getevents and min_complete:
                waited = engine.wait(min_complete, 0, timeout)
                if waited < 0:
                    return waited
            return ret

        # -- CQ verbs on any CQ (CQ 0 by default)
        def cq_ready(self, cq_idx: int = 0) -> int:
            return self.requests.cq(cq_idx).ready()

        def peek_cqe(self, cq_idx: int = 0):
            return self.requests.peek_cqe(cq_idx)

        def wait_cqe(self, timeout: float | None = None, cq_idx: int = 0):
            return self.requests.wait_cqe(cq_idx, timeout)

        def wait_cqe_nr(self, nr: int, timeout: float | None = None, cq_idx: int = 0):
            if nr < 1:
                raise ValueError("nr must be >= 1")
            if self.requests.wait(nr, cq_idx, timeout) == -errno.ETIME:
                raise TimeoutError(f"fewer than {nr} CQEs on CQ {cq_idx} within {timeout} s")
            return self.requests.cq(cq_idx).peek()

        def cq_advance(self, n: int = 1, cq_idx: int = 0) -> None:
            self.requests.cq(cq_idx).advance(n)

        def cqe_seen(self, cqe=None, cq_idx: int = 0) -> None:
            self.requests.cq(cq_idx).advance(1)

        def for_each_cqe(self, cq_idx: int = 0):
            cq = self.requests.cq(cq_idx)
            head, tail = cq.head, cq.tail
            while head != tail:
                yield u.Cqe.from_address(cq.cqes_addr + (head & cq.mask) * cq.cqe_size)
                head = (head + 1) & 0xFFFFFFFF

        def reap(self, max_nr: int | None = None, cq_idx: int = 0) -> list:
            engine = self.requests
            if cq_idx == 0:
                engine.pump()
            cq = engine.cq(cq_idx)
            out = []
            while max_nr is None or len(out) < max_nr:
                item = cq.pop()
                if item is None:
                    break
                out.append(Completion(*item))
            return out

        def wait(self, nr: int = 1, timeout: float | None = None, cq_idx: int = 0) -> list:
            self.wait_cqe_nr(nr, timeout, cq_idx)
            return self.reap(None, cq_idx)

        def close(self) -> None:
            engine = self.__dict__.get("requests")
            if engine is not None:
                engine.close()
            super().close()

    Ring.__name__ = Ring.__qualname__ = "RequestsRing"
    return Ring


#: The ring of this design: ``RequestsRing(entries, nr_cq=2, cq_sizes=[128, 128])``.
#: Built explicitly (``uring.ring.Ring`` knows no design and takes no ``nr_cq``).
RequestsRing = _ring_class()
#: The name this class had before (``designs.requests.Ring``).
Ring = RequestsRing


class RequestsDesign(Design):
    """2021 RFC BPF requests: helpers 164-167 (C twins in requests.c) and SEC("iouring")."""

    name = "requests"

    def contribute(self, platform: Platform) -> None:
        """Add the RFC's helpers (with native twins) and program type to ``platform``."""
        _add_helpers(platform)
        native_engine.install_native_twins(platform.helpers)
        _add_prog_type(platform)


DESIGN = RequestsDesign()
