"""Linux 7.1 ``loop_step`` programs written in Python (``@bpf.loop_step("ops")``).

Compiled, the function is ``SEC("struct_ops.s/NAME")`` bound to ``loop_step`` of a
``struct io_uring_bpf_ops`` variable called ``ops``, attached through the loop design
exactly like ``examples/loop/nops.bpf.c``.  In the application (:meth:`LoopStep.run_in_app`)
a Python loop does what the kernel's ``io_run_loop`` (and ``designs/loop/loop.c``) does:
call the step, stop on ``IOU_LOOP_STOP``, else wait until the CQ tail reaches
``cq_wait_idx``; the two kfuncs act on the :class:`~uringbpf.uring.ring.Ring` (regions are
memoryviews over the ring's own memory, submission is ``Ring.sq_rewind_submit``).
"""

from __future__ import annotations

import ctypes
import errno
import inspect
from typing import Any, Callable

from ..designs import loop as _loop
from ..uring import uapi
from . import compiler as C
from . import types as T
from .appmode import Ptr, memory_ptr, opaque_ptr
from .module import Kfunc, Module, Program, _convert, _err_at, attach_compiled, unbind_sections

IoRingCtx = T.Opaque("io_ring_ctx")
#: ``struct iou_loop_params`` (programs may write ``cq_wait_idx``)
IouLoopParams = _loop.LoopParams
IOU_LOOP_CONTINUE = _loop.IOU_LOOP_CONTINUE
IOU_LOOP_STOP = _loop.IOU_LOOP_STOP
IOU_REGION_MEM = _loop.IOU_REGION_MEM
IOU_REGION_CQ = _loop.IOU_REGION_CQ
IOU_REGION_SQ = _loop.IOU_REGION_SQ

OPS_SPEC = C.StructOpsSpec(_loop.STRUCT_OPS_TYPE,
                           (("loop_step", "func"), ("ring_fd", T.u32), ("priv", "ptr")))


class AppRing:
    """What ``struct io_ring_ctx *`` is in the application run: the ring and its layout."""

    def __init__(self, ring: Any):
        self.ring = ring
        self.layout = _loop.ring_layout(ring)
        self.submitted_in_step = False
        self.submit_calls = 0

    def get_region(self, region_id: int, size: int) -> Ptr:
        """App mode: ``bpf_io_uring_get_region`` on the real ring (a pointer, or null)."""
        region_id, size = int(region_id) & 0xFFFFFFFF, int(size)
        if region_id == IOU_REGION_MEM:
            # the memory the compiled program gets: the ring's registered region
            mem = _loop.mem_region(self.ring)
            if mem is None or size > len(mem):
                return Ptr(None, 0, T.u8)
            return Ptr(mem[:size], 0, T.u8)
        lay = self.layout
        regions = {IOU_REGION_CQ: (lay.cq_region, lay.cq_region_size),
                   IOU_REGION_SQ: (lay.sq_region, lay.sq_region_size)}
        addr, rsize = regions.get(region_id, (0, 0))
        if not addr or size > rsize:
            return Ptr(None, 0, T.u8)
        # the program may use `size` bytes: the verifier gives it no more
        return memory_ptr(addr, size)

    def submit_sqes(self, nr: int) -> int:
        """App mode: ``bpf_io_uring_submit_sqes`` on the real ring."""
        nr = int(nr)
        if not nr:
            return 0
        self.submit_calls += 1
        nr = min(nr, self.layout.sq_entries)
        ret = self.ring.sq_rewind_submit(nr, 0, uapi.IORING_ENTER_GETEVENTS)
        self.submitted_in_step = True
        return ret


def _app_get_region(ctx: Ptr, region_id: int, size: int) -> Ptr:
    return ctx._pobj.get_region(region_id, size)


def _app_submit_sqes(ctx: Ptr, nr: int) -> int:
    return ctx._pobj.submit_sqes(nr)


bpf_io_uring_get_region = Kfunc("bpf_io_uring_get_region", T.ptr[T.u8],
                                (T.ptr[IoRingCtx], T.u32, T.u64), _app_get_region)
bpf_io_uring_submit_sqes = Kfunc("bpf_io_uring_submit_sqes", T.s32,
                                 (T.ptr[IoRingCtx], T.u32), _app_submit_sqes)


class LoopStep(Program):
    """A ``loop_step`` program; ``ops_name`` is its ``struct io_uring_bpf_ops`` variable."""

    kind = "loop_step"

    def __init__(self, module: Module, fn: Callable, ops_name: str):
        self.ops_name = ops_name
        super().__init__(module, fn)

    @property
    def section(self) -> str:
        """The ELF section of the program (``struct_ops.s/NAME``)."""
        return f"struct_ops.s/{self.name}"

    def func_info(self) -> C.FuncInfo:
        """What the compiler needs: context arguments, return type, section."""
        params = list(inspect.signature(self.fn).parameters)
        if len(params) != 2:
            raise _err_at(self.fn, f"{self.name}: a loop_step takes (ring, params)")
        return C.FuncInfo(self.fn, self.name,
                          [(params[0], T.ptr[IoRingCtx]), (params[1], T.ptr[IouLoopParams])],
                          T.s32, section=self.section, ctx_args=True)

    def module_extra(self, gen: C.ModuleGen) -> None:
        """Emit the ``io_uring_bpf_ops`` struct_ops variable binding this program."""
        gen.add_struct_ops(self.ops_name, OPS_SPEC, {"loop_step": self.name}, {},
                           self.fn.__code__.co_firstlineno)

    # the application run -------------------------------------------------------------
    def run_in_app(self, ring: Any) -> int:
        """One ``io_uring_enter`` of the loop, with the step run as Python.  Returns what
        the attached ring's enter returns: 0 after STOP, -EINVAL on a bad return value,
        another -errno from waiting."""
        self.module.check()
        app = AppRing(ring)
        app_rt = self.module.app_run()
        ctx = opaque_ptr(IoRingCtx, app)
        params = bytearray(ctypes.sizeof(IouLoopParams))
        lp = Ptr(memoryview(params), 0, IouLoopParams)
        lay = app.layout
        cq_head = ctypes.c_uint32.from_address(lay.cq_head)
        cq_tail = ctypes.c_uint32.from_address(lay.cq_tail)
        getevents = uapi.IORING_ENTER_GETEVENTS
        ret = ring.raw_enter(0, 0, getevents)
        if ret == -errno.EEXIST:
            return ret
        rodata = [s for s in self.module.sections if s._kind == "rodata"]
        for s in rodata:
            s.frozen = True
        try:
            while True:
                app.submitted_in_step = False
                with app_rt.running():
                    r = int(_convert(self.fn(ctx, lp), T.s32))
                if r == IOU_LOOP_STOP:
                    return 0
                if r != IOU_LOOP_CONTINUE:
                    return -errno.EINVAL
                wait_idx = int(lp.cq_wait_idx)
                nr_wait = int(T.s32(wait_idx - cq_tail.value))
                if nr_wait > 0:
                    need = int(T.u32(wait_idx - cq_head.value))
                    eret = ring.raw_enter(0, need, getevents)
                elif not app.submitted_in_step:
                    eret = ring.raw_enter(0, 0, getevents)
                else:
                    eret = 0
                if eret < 0 and eret not in (-errno.ETIME, -errno.EBUSY, -errno.EAGAIN):
                    return eret
        finally:
            for s in rodata:
                s.frozen = False

    # the compiled run ----------------------------------------------------------------
    def attach(self, ring: Any, engine: str = "jit") -> "LoopHandle":
        """Compile, load and attach to ``ring``: each ``handle.enter()`` (or
        ``ring.enter(0, 0, IORING_ENTER_GETEVENTS)``) runs the loop in the ring."""
        loaded, link, bound = attach_compiled(self.module, ring, engine, self.ops_name)
        return LoopHandle(self, ring, loaded, link, bound)


class LoopHandle:
    """An attached compiled loop_step: :meth:`enter` runs it; :meth:`close` detaches."""

    def __init__(self, prog: LoopStep, ring: Any, loaded: Any, link: Any, bound: list):
        self.prog = prog
        self.ring = ring
        self.loaded = loaded
        self.link = link
        self._bound = bound

    @property
    def engine(self) -> str:
        """The engine running the program (``jit`` or ``interp``)."""
        return self.link.engine

    def enter(self) -> int:
        """io_uring_enter on the ring: the loop runs until the program stops it."""
        try:
            return self.ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS)
        except _loop.LoopError as exc:
            cause = exc.__cause__ or exc
            raise self.loaded.runtime_error(self.prog.name, cause) from exc

    def close(self) -> None:
        """Detach the loop and release the object (idempotent)."""
        if self.link is not None:
            self.link.destroy()
            self.link = None
        unbind_sections(self._bound)
        self._bound = []
        self.loaded.close()

    def __enter__(self) -> "LoopHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
