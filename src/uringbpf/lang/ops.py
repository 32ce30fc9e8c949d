"""IORING_OP_BPF operations (Ming Lei's ``uring_bpf_ops``) written in Python.

    cksum = bpf.uring_bpf_ops("cksum_op", op_id=0)

    @cksum.prep
    def cksum_prep(data, sqe) -> s32: ...

    @cksum.issue
    def cksum_issue(data) -> s32: ...

Compiled, the callbacks are ``SEC("struct_ops/NAME")`` programs bound in a ``struct
uring_bpf_ops`` variable and attached through the ops design (:meth:`OpsStruct.attach`).
In the application (:meth:`OpsStruct.run_in_app`) the same functions are registered with
the ops design as Python callbacks: the design runs them at the same points (prep at
submit, issue when the chain reaches the op, fail, cleanup), and their kfunc calls go to
the design's own kfunc implementations.
"""

from __future__ import annotations

import ctypes
import inspect
from typing import Any, Callable

from ..designs import ops as _ops
from ..uring.uapi import Sqe
from . import compiler as C
from . import types as T
from .appmode import AppRuntime, memory_ptr
from .module import Kfunc, Module, Program, _convert, _err_at, attach_compiled, unbind_sections

IORING_OP_BPF = _ops.IORING_OP_BPF
ITER_DEST = _ops.ITER_DEST
ITER_SOURCE = _ops.ITER_SOURCE
BufDesc = _ops.BufDesc


class UringBpfData(ctypes.Structure):
    """``struct uring_bpf_data``: only ``pdu`` may be written by programs."""

    _btf_name_ = "uring_bpf_data"

    _fields_ = [("req_data", ctypes.c_uint64), ("ops", ctypes.c_uint64), ("opf", ctypes.c_uint32),
                ("issue_flags", ctypes.c_uint32), ("lock_depth", ctypes.c_uint32),
                ("pdu", ctypes.c_uint8 * _ops.PDU_SIZE)]


assert ctypes.sizeof(UringBpfData) == _ops.DATA_SIZE and UringBpfData.pdu.offset == _ops.PDU_OFFSET


class IterUringBuf(ctypes.Structure):
    """``struct bpf_iter_uring_buf`` (opaque, ``ITER_SIZE`` bytes, on the program's stack)."""

    _btf_name_ = "bpf_iter_uring_buf"

    _fields_ = [("opaque", ctypes.c_uint64 * (_ops.ITER_SIZE // 8))]


class Dynptr(ctypes.Structure):
    """``struct bpf_dynptr`` (opaque, 16 bytes, on the program's stack)."""

    _btf_name_ = "bpf_dynptr"

    _fields_ = [("opaque", ctypes.c_uint64 * 2)]


_P = T.ptr
uring_bpf_set_result = Kfunc("uring_bpf_set_result", None, (_P[UringBpfData], T.s32), None)
bpf_iter_uring_buf_new = Kfunc("bpf_iter_uring_buf_new", T.s32,
                               (_P[IterUringBuf], _P[UringBpfData], _P[BufDesc], T.s32), None)
bpf_iter_uring_buf_next = Kfunc("bpf_iter_uring_buf_next", _P[T.s32], (_P[IterUringBuf],), None)
bpf_iter_uring_buf_destroy = Kfunc("bpf_iter_uring_buf_destroy", None, (_P[IterUringBuf],), None)
bpf_uring_buf_dynptr = Kfunc("bpf_uring_buf_dynptr", T.s32, (_P[IterUringBuf], _P[Dynptr]), None)
bpf_uring_buf_dynptr_rdwr = Kfunc("bpf_uring_buf_dynptr_rdwr", T.s32, (_P[IterUringBuf], _P[Dynptr]),
                                  None)
uring_bpf_memcpy = Kfunc("uring_bpf_memcpy", T.s64, (_P[UringBpfData], _P[BufDesc], _P[BufDesc]), None)
bpf_dynptr_read = Kfunc("bpf_dynptr_read", T.s64, (_P[T.u8], T.u32, _P[Dynptr], T.u32, T.u64), None,
                        helper_id=_ops.BPF_FUNC_dynptr_read)
bpf_dynptr_write = Kfunc("bpf_dynptr_write", T.s64, (_P[Dynptr], T.u32, _P[T.u8], T.u32, T.u64), None,
                         helper_id=_ops.BPF_FUNC_dynptr_write)
bpf_probe_read_user = Kfunc("bpf_probe_read_user", T.s64, (_P[T.u8], T.u32, T.u64), None,
                            helper_id=112)

_MEMBERS = {"prep": "prep_fn", "issue": "issue_fn", "fail": "fail_fn", "cleanup": "cleanup_fn"}
OPS_SPEC = C.StructOpsSpec(_ops.STRUCT_OPS_TYPE, (
    ("id", T.u16), ("ring_fd", T.s32), ("prep_fn", "func"), ("issue_fn", "func"),
    ("fail_fn", "func"), ("cleanup_fn", "func")))


class OpsCallback(Program):
    """One callback of a ``uring_bpf_ops``."""

    kind = "uring_bpf_ops"

    def __init__(self, ops: "OpsStruct", member: str, fn: Callable):
        self.ops = ops
        self.member = member
        super().__init__(ops.module, fn)

    @property
    def section(self) -> str:
        """``struct_ops/NAME``."""
        return f"struct_ops/{self.name}"

    def func_info(self) -> C.FuncInfo:
        """The callback's context arguments and return type."""
        params = list(inspect.signature(self.fn).parameters)
        want = 2 if self.member == "prep_fn" else 1
        if len(params) != want:
            raise _err_at(self.fn, f"{self.name}: {self.member} takes "
                                   f"{'(data, sqe)' if want == 2 else '(data)'}")
        types = [_P[UringBpfData], _P[_ops_sqe()]][:want]
        return C.FuncInfo(self.fn, self.name, list(zip(params, types)), T.s32,
                          section=self.section, ctx_args=True)

    def module_extra(self, gen: C.ModuleGen) -> None:
        """Emit the ``uring_bpf_ops`` variable this callback belongs to."""
        self.ops._emit(gen)

    def app_callable(self, app_rt: AppRuntime) -> "_AppCallback":
        """The callback as a plain Python function for app mode."""
        return _AppCallback(self, app_rt)


def _ops_sqe():
    return Sqe


class _AppCallback:
    """What the ops design calls in the application run: ``f(args_addr) -> int``."""

    def __init__(self, cb: OpsCallback, app_rt: AppRuntime):
        self.cb = cb
        self.app_rt = app_rt
        self.runtime = app_rt.rt          # the design adds the request slab to it

    def __call__(self, args_addr: int) -> int:
        args = (ctypes.c_uint64 * 2).from_address(args_addr)
        data = memory_ptr(args[0], _ops.DATA_SIZE, UringBpfData)
        call = [data]
        if self.cb.member == "prep_fn":
            call.append(memory_ptr(args[1], 64, Sqe))
        with self.app_rt.running():
            return int(_convert(self.cb.fn(*call), T.s32))


class OpsStruct:
    """A ``struct uring_bpf_ops`` variable of a module and its callbacks."""

    def __init__(self, module: Module, name: str, op_id: int):
        self.module = module
        self.name = name
        self.op_id = op_id
        self.callbacks: dict[str, OpsCallback] = {}
        self._emitted_for = None

    def _add(self, member: str, fn: Callable) -> OpsCallback:
        cb = OpsCallback(self, member, fn)
        self.callbacks[member] = cb
        return cb

    def prep(self, fn: Callable) -> OpsCallback:
        """Decorator: the op's ``prep_fn``."""
        return self._add("prep_fn", fn)

    def issue(self, fn: Callable) -> OpsCallback:
        """Decorator: the op's ``issue_fn``."""
        return self._add("issue_fn", fn)

    def fail(self, fn: Callable) -> OpsCallback:
        """Decorator: the op's ``fail_fn``."""
        return self._add("fail_fn", fn)

    def cleanup(self, fn: Callable) -> OpsCallback:
        """Decorator: the op's ``cleanup_fn``."""
        return self._add("cleanup_fn", fn)

    def _emit(self, gen: C.ModuleGen) -> None:
        if self._emitted_for is gen:
            return
        self._emitted_for = gen
        line = min(cb.fn.__code__.co_firstlineno for cb in self.callbacks.values())
        gen.add_struct_ops(self.name, OPS_SPEC, {m: cb.name for m, cb in self.callbacks.items()},
                           {"id": self.op_id}, line)

    # the application run -------------------------------------------------------------
    def run_in_app(self, ring: Any) -> "OpsHandle":
        """Register the callbacks, as Python, in ``ring``'s op table (slot ``op_id``)."""
        self.module.check()
        app_rt = self.module.app_run()
        progs = {m: cb.app_callable(app_rt) for m, cb in self.callbacks.items()}
        slot = _ops.register_ops(ring, self.op_id, **progs)
        return OpsHandle(self, slot, None)

    # the compiled run ----------------------------------------------------------------
    def attach(self, ring: Any, engine: str = "jit") -> "OpsHandle":
        """Compile, load and register the op on ``ring``; returns a handle to close."""
        loaded, link, bound = attach_compiled(self.module, ring, engine, self.name)
        return OpsHandle(self, link, loaded, bound)


class OpsHandle:
    """Registered callbacks (application or compiled); :meth:`close` unregisters."""

    def __init__(self, ops: OpsStruct, slot: Any, loaded: Any, bound: list | None = None):
        self.ops = ops
        self.slot = slot
        self.loaded = loaded
        self._bound = bound or []

    def close(self) -> None:
        """Unregister the op and release the object (idempotent)."""
        if self.slot is not None:
            self.slot.destroy()
            self.slot = None
        if self.loaded is not None:
            unbind_sections(self._bound)
            self._bound = []
            self.loaded.close()
            self.loaded = None

    def __enter__(self) -> "OpsHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def uring_bpf_ops(module: Module, name: str, op_id: int = 0) -> OpsStruct:
    """A ``struct uring_bpf_ops NAME = { .id = op_id, ... }`` of ``module``."""
    return OpsStruct(module, name, op_id)
