"""BPF requests of the 2021 RFC (Begunkov v2, Dietrich/Schirmeier) written in Python.

    @bpf.request
    def pingpong(ctx) -> s32: ...          # SEC("iouring.s/pingpong"), ctx: struct io_uring_bpf_ctx *

Compiled, :meth:`RequestProgram.attach` loads the program and registers it in the ring's
program table (``register_bpf``) at ``slot``; :meth:`RequestProgram.run_in_app` registers
the Python function in the same slot, so the design's engine runs it at the same points
(when the request's SQE completes, and again when a CQ it waits on fills), and its helper
calls (``iouring_reap_cqe``, ``iouring_emit_cqe``...) go to the design's implementations.
"""

from __future__ import annotations

import contextlib
import ctypes
import inspect
from typing import Any

from ..designs import requests as _rq
from . import compiler as C
from . import types as T
from .appmode import AppRuntime, memory_ptr
from .module import Kfunc, Program, _convert, _err_at, bind_sections, unbind_sections

IoUringBpfCtx = _rq.IoUringBpfCtx
_P = T.ptr

iouring_queue_sqe = Kfunc("iouring_queue_sqe", T.s64, (_P[IoUringBpfCtx], _P[T.u8], T.u32), None,
                          helper_id=_rq.BPF_FUNC_iouring_queue_sqe)
iouring_emit_cqe = Kfunc("iouring_emit_cqe", T.s64,
                         (_P[IoUringBpfCtx], T.u32, T.u64, T.s32, T.u32), None,
                         helper_id=_rq.BPF_FUNC_iouring_emit_cqe)
iouring_reap_cqe = Kfunc("iouring_reap_cqe", T.s64, (_P[IoUringBpfCtx], T.u32, _P[T.u8], T.u32), None,
                         helper_id=_rq.BPF_FUNC_iouring_reap_cqe)
bpf_copy_to_user = Kfunc("bpf_copy_to_user", T.s64, (T.u64, _P[T.u8], T.u32), None,
                         helper_id=_rq.BPF_FUNC_copy_to_user)
bpf_copy_from_user = Kfunc("bpf_copy_from_user", T.s64, (_P[T.u8], T.u32, T.u64), None,
                           helper_id=148)


class RequestProgram(Program):
    """A BPF request program: ``int prog(struct io_uring_bpf_ctx *ctx)``, sleepable."""

    kind = "request"

    @property
    def section(self) -> str:
        """``iouring.s/NAME``."""
        return f"iouring.s/{self.name}"

    def func_info(self) -> C.FuncInfo:
        """A BPF request: r1 = the request context, returns an int."""
        params = list(inspect.signature(self.fn).parameters)
        if len(params) != 1:
            raise _err_at(self.fn, f"{self.name}: a BPF request program takes (ctx)")
        return C.FuncInfo(self.fn, self.name, [(params[0], _P[IoUringBpfCtx])], T.s32,
                          section=self.section)

    def _register(self, ring: Any, prog: Any, slot: int) -> None:
        table = [None] * slot + [prog]
        ret = ring.register_bpf(table)
        if ret:
            raise OSError(-ret, f"register_bpf: {ret}")

    def run_in_app(self, ring: Any, slot: int = 0) -> "RequestHandle":
        """Register the function, as Python, as program ``slot`` of ``ring``."""
        self.module.check()
        prog = _AppRequest(self, self.module.app_run())
        self._register(ring, prog, slot)
        return RequestHandle(self, ring, None)

    def attach(self, ring: Any, engine: str = "jit", slot: int = 0) -> "RequestHandle":
        """Compile, load and register as program ``slot`` of ``ring``."""
        loaded = self.module.load(engine, only=[self.name])
        with contextlib.ExitStack() as undo:     # a failure undoes what was done
            undo.callback(loaded.close)
            bound = bind_sections(self.module, loaded.obj)
            undo.callback(unbind_sections, bound)
            self._register(ring, loaded.obj.programs[self.name], slot)
            undo.pop_all()
        return RequestHandle(self, ring, loaded, bound)


class _AppProgramInfo:
    """What the engine checks of a program before registering it."""

    def __init__(self, prog: RequestProgram):
        self.section = prog.section
        self.prog_type = "iouring"
        self.sleepable = True
        self.name = prog.name


class _AppRequest:
    """``call(ctx_addr) -> r0`` for the engine: the function run as Python."""

    loaded = True

    def __init__(self, prog: RequestProgram, app_rt: AppRuntime):
        self.prog = prog
        self.app_rt = app_rt
        self.runtime = app_rt.rt
        self.program = _AppProgramInfo(prog)

    def __call__(self, ctx_addr: int) -> int:
        ctx = memory_ptr(int(ctx_addr), ctypes.sizeof(IoUringBpfCtx), IoUringBpfCtx)
        with self.app_rt.running():
            return int(_convert(self.prog.fn(ctx), T.s32))


class RequestHandle:
    """A registered request program; :meth:`close` unregisters (and unloads)."""

    def __init__(self, prog: RequestProgram, ring: Any, loaded: Any, bound: list | None = None):
        self.prog = prog
        self.ring = ring
        self.loaded = loaded
        self._bound = bound or []

    def close(self) -> None:
        """Unregister the programs and release the ring and object (idempotent)."""
        if self.ring is not None:
            if not getattr(self.ring, "closed", False):
                self.ring.unregister_bpf()
            self.ring = None
        if self.loaded is not None:
            unbind_sections(self._bound)
            self._bound = []
            self.loaded.close()
            self.loaded = None

    def __enter__(self) -> "RequestHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
