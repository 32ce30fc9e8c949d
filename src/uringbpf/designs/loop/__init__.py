"""Linux 7.1's ``io_uring_bpf_ops`` (the ``loop_step`` struct_ops) on kernels that lack it.

In 7.1, attaching a ``struct io_uring_bpf_ops`` to a ring replaces ``io_uring_enter``
with a kernel loop (io_uring/loop.c): call ``loop_step(ctx, &params)``; on
``IOU_LOOP_CONTINUE`` sleep until the CQ tail reaches ``params.cq_wait_idx``, run task
work, repeat; ``IOU_LOOP_STOP`` returns 0.  The program drives the ring itself through
two kfuncs: ``bpf_io_uring_get_region`` (SQE array, ring header + CQEs, the user's
parameter region) and ``bpf_io_uring_submit_sqes``.

Here the loop is C (``designs/loop/loop.c``) installed as the ring's enter hook.  The program
is called through a native function pointer: JIT code directly, or a ctypes trampoline
into the interpreter, so the same driver serves both engines and, with the JIT, no
Python runs per iteration.  The kfuncs have one C implementation each; the
interpreter's table entries call it through ctypes, the JIT calls it directly.

The ``struct io_ring_ctx *`` the program receives points to the driver's per-ring
state (:class:`LoopCtx`), as in the kernel it is opaque to the program.
"""

from __future__ import annotations

import _signal
import ctypes
import errno
import mmap
import signal
import threading
import time
import weakref
from ctypes import Structure, c_int32, c_uint32, c_uint64, c_void_p, sizeof
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import native
from ...bpf import progtypes as pt
from ...bpf.helpers import Arg, Ret
from ...bpf.memory import guard_object
from ...bpf.platform import Design, Platform
from ...callbacks import barrier, route_escapes
from ...errors import BpfVerifierError, LoopError  # noqa: F401  (re-exported; defined in uringbpf.errors)
from ...uring import memregion, uapi
from ...uring.memregion import (  # noqa: F401  (the ring layer's; re-exported for callers of 7.1 code)
    IORING_MAP_OFF_PARAM_REGION, IORING_MEM_REGION_REG_WAIT_ARG, IORING_MEM_REGION_TYPE_USER,
    IORING_REGISTER_MEM_REGION, IoUringMemRegionReg, IoUringRegionDesc, MemRegion,
    register_region, register_region_raw)
from ...uring.ring import Ring
from .. import filter as _filter   # filters run inside the loop's native submit path
# split-out modules, re-exported so ``uringbpf.designs.loop.<name>`` keeps working
from .copy import MAX_COPY_DEPTH, CopyResult, copy_fd, fnv1a32  # noqa: F401
from .demo import demo_section, register_demo  # noqa: F401
from .example import (  # noqa: F401
    EXAMPLES_DIR, RING_FLAGS, _set_ring_rodata, example_object, make_ring, nops_example,
    open_example)

#: The C loop driver (built by :func:`uringbpf.native.load` on first use).
NATIVE_SOURCE = Path(__file__).resolve().with_name("loop.c")

IOU_LOOP_CONTINUE = 0
IOU_LOOP_STOP = 1
IOU_REGION_MEM = 0
IOU_REGION_CQ = 1
IOU_REGION_SQ = 2

STRUCT_OPS_TYPE = "io_uring_bpf_ops"
KFUNC_SUBMIT_SQES = "bpf_io_uring_submit_sqes"
KFUNC_GET_REGION = "bpf_io_uring_get_region"

# uringbpf_loop_run() result when the interpreter trampoline raised.
_ABORTED = -1000
_SQ_KERNEL, _SQ_REWIND, _SQ_REWIND_EMU = 0, 1, 2


class LoopParams(Structure):
    """``struct iou_loop_params`` (+ padding); only ``cq_wait_idx`` is visible to programs."""

    _fields_ = [("cq_wait_idx", c_uint32), ("pad", c_uint32)]


class LoopCtx(Structure):
    """Mirror of ``struct ub_loop_ctx`` (designs/loop/loop.h): what ``struct io_ring_ctx *`` points to."""

    _fields_ = [
        ("magic", c_uint64), ("ring_fd", c_int32), ("sq_mode", c_uint32),
        ("sq_khead", c_uint64), ("sq_ktail", c_uint64), ("sq_array", c_uint64),
        ("ksqes", c_uint64), ("sq_mask", c_uint32), ("sq_entries", c_uint32),
        ("sqe_size", c_uint32), ("cqe_size", c_uint32),
        ("cq_khead", c_uint64), ("cq_ktail", c_uint64),
        ("region_addr", c_uint64 * 3), ("region_size", c_uint64 * 3),
        ("filters", c_uint64), ("error_word", c_uint64), ("py_submit", c_uint64),
        ("abort", c_int32), ("submitted_in_step", c_int32), ("running", c_uint32),
        ("stop", c_uint32),
        ("steps", c_uint64), ("waits", c_uint64), ("submit_calls", c_uint64),
        ("sqes_submitted", c_uint64), ("sqes_denied", c_uint64), ("sqes_faulted", c_uint64),
        ("args", c_uint64 * 2), ("params", LoopParams),
    ]


_MAGIC = 0x75626C6F6F703731
STEP_FN = ctypes.CFUNCTYPE(c_uint64, c_uint64, c_uint64, c_uint64, c_uint64, c_uint64)
PY_SUBMIT_FN = ctypes.CFUNCTYPE(ctypes.c_int64, c_uint64)

def _set_prototypes(handle: ctypes.CDLL) -> None:
    native.set_register_prototypes(handle, ("uringbpf_kf_submit_sqes", "uringbpf_kf_get_region"))
    handle.uringbpf_loop_run.restype = ctypes.c_int64
    handle.uringbpf_loop_run.argtypes = [c_void_p, c_void_p, c_void_p, ctypes.c_int]
    handle.uringbpf_loop_ctx_size.restype = c_uint64
    handle.uringbpf_loop_request_stop.restype = c_uint32
    handle.uringbpf_loop_request_stop.argtypes = [c_void_p]
    handle.uringbpf_filter_check.restype = c_int32
    handle.uringbpf_filter_check.argtypes = [c_uint64, c_void_p]
    handle.uringbpf_cbpf_run.restype = c_uint32
    handle.uringbpf_cbpf_run.argtypes = [c_void_p, c_uint32, c_void_p, c_uint32]
    if handle.uringbpf_loop_ctx_size() != sizeof(LoopCtx):
        raise RuntimeError("designs/loop/loop.h and designs/loop LoopCtx disagree")


def lib() -> ctypes.CDLL:
    """The native loop driver (designs/loop/loop.c), built on first use; checks the struct mirror."""
    return native.load(NATIVE_SOURCE, configure=_set_prototypes)


# --- the ring's layout, as the driver needs it ------------------------------------------
@dataclass
class RingLayout:
    """Addresses of one ring's memory (kernel ring + emulated SQ_REWIND array)."""

    fd: int
    flags: int                 # the flags the application asked for (incl. emulated ones)
    sq_mode: int
    sq_head: int
    sq_tail: int
    sq_array: int              # 0 with NO_SQARRAY
    kernel_sqes: int
    sq_mask: int
    sq_entries: int
    sqe_size: int
    cqe_size: int
    cq_head: int
    cq_tail: int
    cq_region: int
    cq_region_size: int
    sq_region: int
    sq_region_size: int


def ring_layout(ring) -> RingLayout:
    """Read the ring contract (docs/internals.md, docs/ring.md) into one flat record."""
    p = ring.params
    flags = int(getattr(ring, "flags", p.flags))
    emulated = int(getattr(ring, "emulated_flags", 0))
    sqe_size = int(getattr(ring, "sqe_size", 128 if flags & uapi.IORING_SETUP_SQE128 else 64))
    cqe_size = int(getattr(ring, "cqe_size", 32 if flags & uapi.IORING_SETUP_CQE32 else 16))
    sq_entries, cq_entries = int(p.sq_entries), int(p.cq_entries)
    sq_ring, cq_ring = int(ring.sq_ring_addr), int(ring.cq_ring_addr)
    kernel_sqes = int(getattr(ring, "kernel_sqes_addr", 0) or ring.sqes_addr)
    if emulated & uapi.IORING_SETUP_SQ_REWIND:
        sq_mode = _SQ_REWIND_EMU
        sq_region = int(getattr(ring, "rewind_sqes_addr", 0) or ring.sqes_addr)
        if sq_region == kernel_sqes:
            raise RuntimeError("emulated SQ_REWIND ring exposes no private SQE array")
    elif flags & uapi.IORING_SETUP_SQ_REWIND:
        sq_mode, sq_region = _SQ_REWIND, kernel_sqes
    else:
        sq_mode, sq_region = _SQ_KERNEL, kernel_sqes
    no_sqarray = (flags | int(p.flags)) & uapi.IORING_SETUP_NO_SQARRAY
    sq_array = 0 if no_sqarray else sq_ring + p.sq_off.array
    cq_size = p.cq_off.cqes + cq_entries * cqe_size
    if sq_ring == cq_ring:   # IORING_FEAT_SINGLE_MMAP: one region holds both headers
        sq_size = (p.sq_off.array + sq_entries * 4) if not no_sqarray else p.sq_off.flags + 4
        cq_size = max(cq_size, sq_size)
    # io_uring regions are whole pages (io_create_region), so 7.1 hands programs page-sized
    # regions; the mmaps behind ours are page-granular too.
    page = mmap.PAGESIZE
    cq_size = (cq_size + page - 1) // page * page
    sq_region_size = (sq_entries * sqe_size + page - 1) // page * page
    return RingLayout(
        fd=int(ring.fd), flags=flags, sq_mode=sq_mode,
        sq_head=sq_ring + p.sq_off.head, sq_tail=sq_ring + p.sq_off.tail, sq_array=sq_array,
        kernel_sqes=kernel_sqes, sq_mask=sq_entries - 1, sq_entries=sq_entries,
        sqe_size=sqe_size, cqe_size=cqe_size,
        cq_head=cq_ring + p.cq_off.head, cq_tail=cq_ring + p.cq_off.tail,
        cq_region=cq_ring, cq_region_size=cq_size,
        sq_region=sq_region, sq_region_size=sq_region_size)


# --- attachment -------------------------------------------------------------------------
_attachments: "weakref.WeakKeyDictionary[Any, LoopAttachment]" = weakref.WeakKeyDictionary()
_ctx_by_addr: dict[int, "LoopAttachment"] = {}
_attach_lock = threading.Lock()


def mem_region(ring) -> memoryview | None:
    """The ring's ``IOU_REGION_MEM`` region as a writable memoryview, or None if none is
    registered.

    These are the very bytes a ``loop_step`` program gets from
    ``bpf_io_uring_get_region(ctx, IOU_REGION_MEM, size)`` (the kernel's
    ``ctx->param_region``, registered with ``IORING_REGISTER_MEM_REGION`` through
    :func:`register_region` or a raw ``ring.register`` once the ring is watched); with
    none registered the kfunc returns NULL.  For programs run in the application
    (``uringbpf.lang``'s ``run_in_app``) and for callers reading what a program wrote.
    """
    region = memregion.mem_region_of(ring)
    return region.view() if region is not None else None


def _python_signals() -> list[int]:
    """Signals whose handler is Python code: the loop must return -EINTR on them."""
    out = []
    getsignal = _signal.getsignal   # the C function: signal.getsignal wraps it in enums
    for sig in range(1, signal.NSIG):
        try:
            handler = getsignal(sig)
        except (ValueError, OSError):
            continue
        if callable(handler):
            out.append(sig)
    return out


class LoopAttachment:
    """One ring driven by one loop_step program (the kernel's ``ctx->bpf_ops``).

    ``step`` is a LoadedProgram (anything with ``entry_address``/``engine``), a raw
    native function address, or a Python callable ``f(args_addr) -> int`` (used by
    tests and by the interpreter trampoline).  :meth:`destroy` restores ``enter``.
    """

    def __init__(self, ring, step: Any, *, engine: str | None = None):
        self.ring = ring
        self.program = step
        self.layout = ring_layout(ring)
        self._buf = ctypes.create_string_buffer(sizeof(LoopCtx) + 16)
        self.addr = (ctypes.addressof(self._buf) + 15) & ~15
        self.ctx = LoopCtx.from_address(self.addr)
        # What `struct io_ring_ctx *` points to is the runtime's, never user memory: an SQE
        # or user-pointer helper naming it fails with -EFAULT (issue #13 item 5).
        self._guard = guard_object(self._buf, ctypes.addressof(self._buf), sizeof(self._buf))
        self._error: BaseException | None = None
        self._regions_added: list = []
        self._runtime = None
        self._jit = None
        self._py_submit = None
        self._fill_ctx()
        self._entry, self.engine, self._keep = self._entry_point(step, engine)
        self.runs = 0
        self.last_result: int | None = None
        self._destroyed = False
        self._runner: int | None = None     # thread running the native loop right now
        self._destroy_pending = False
        ring.add_close_hook(self._on_ring_close)

    # the native ctx ---------------------------------------------------------------
    def _fill_ctx(self) -> None:
        lay, c = self.layout, self.ctx
        c.magic = _MAGIC
        c.ring_fd = lay.fd
        c.sq_mode = lay.sq_mode
        c.sq_khead, c.sq_ktail, c.sq_array = lay.sq_head, lay.sq_tail, lay.sq_array
        c.ksqes = lay.kernel_sqes
        c.sq_mask, c.sq_entries = lay.sq_mask, lay.sq_entries
        c.sqe_size, c.cqe_size = lay.sqe_size, lay.cqe_size
        c.cq_khead, c.cq_ktail = lay.cq_head, lay.cq_tail
        c.region_addr[IOU_REGION_CQ] = lay.cq_region
        c.region_size[IOU_REGION_CQ] = lay.cq_region_size
        c.region_addr[IOU_REGION_SQ] = lay.sq_region
        c.region_size[IOU_REGION_SQ] = lay.sq_region_size
        c.args[0] = self.addr
        c.args[1] = self.addr + LoopCtx.params.offset
        region = memregion.mem_region_of(self.ring)
        if region is not None:
            self._set_mem_region(region)

    def _set_mem_region(self, region: MemRegion) -> None:
        self.ctx.region_addr[IOU_REGION_MEM] = region.addr
        self.ctx.region_size[IOU_REGION_MEM] = region.size
        self._allow(region.addr, region.size, True, "io_uring param region")

    def set_filters(self, table_addr: int) -> None:
        """Point the native submit path at a flattened cBPF filter table (0: none)."""
        self.ctx.filters = table_addr

    @property
    def params_addr(self) -> int:
        """Address of the ``struct iou_loop_params`` the program gets."""
        return self.addr + LoopCtx.params.offset

    @property
    def args_addr(self) -> int:
        """Address of the two-pointer args block (``r1`` of loop_step)."""
        return self.addr + LoopCtx.args.offset

    # the program -----------------------------------------------------------------
    def _entry_point(self, step: Any, engine: str | None):
        if step is None:   # ops without a loop_step: every enter fails with -EFAULT
            return 0, "none", None
        if isinstance(step, int):
            return step, engine or "native", None
        prog_engine = getattr(step, "engine", None)
        address = getattr(step, "entry_address", None)
        runtime = getattr(step, "runtime", None)
        if runtime is not None:
            self._runtime = runtime
            if getattr(runtime, "host", None) is None:
                runtime.host = self
            self._allow_program_memory()
        jit = getattr(step, "jit", None) or (step if hasattr(step, "error_address") else None)
        if jit is not None and hasattr(jit, "error_address"):
            self._jit = jit
            self.ctx.error_word = jit.error_address
            if runtime is None and getattr(jit, "runtime", None) is not None:
                self._runtime = jit.runtime
                self._allow_program_memory()
            return int(address or jit.address), "jit", None
        if prog_engine == "jit" and address:
            return int(address), "jit", None
        # Interpreter (or any Python callable): our own trampoline, so an exception
        # inside the program stops the loop and is re-raised by enter().
        call = step

        def trampoline(r1, r2, r3, r4, r5, _call=call):
            return int(_call(r1)) & 0xFFFFFFFFFFFFFFFF

        def stop(exc: BaseException, _args: tuple) -> int:     # re-raised after the loop
            self._error = exc
            self.ctx.abort = 1
            return IOU_LOOP_STOP

        fn = STEP_FN(barrier(trampoline, stop))
        return ctypes.cast(fn, c_void_p).value, prog_engine or "python", fn

    def _allow(self, base: int, size: int, writable: bool, name: str) -> None:
        """Let the interpreter reach ``[base, base+size)`` (the JIT relies on the verifier)."""
        rt = self._runtime
        if rt is None or not size:
            return
        mem = rt.mem
        existing = mem.find(base, size)
        if existing is not None:
            return
        try:
            self._regions_added.append(mem.add(base, size, writable, name))
        except ValueError:
            pass  # overlaps a region another attachment added: already reachable

    def _allow_program_memory(self) -> None:
        lay = self.layout
        self._allow(self.args_addr, 16, False, "loop_step args")
        self._allow(self.params_addr, 4, True, "iou_loop_params")
        self._allow(lay.cq_region, lay.cq_region_size, True, "io_uring CQ region")
        self._allow(lay.sq_region, lay.sq_region_size, True, "io_uring SQ region")
        c = self.ctx
        if c.region_addr[IOU_REGION_MEM]:
            self._allow(c.region_addr[IOU_REGION_MEM], c.region_size[IOU_REGION_MEM], True,
                        "io_uring param region")

    # running ---------------------------------------------------------------------
    def run(self) -> int:
        """One ``io_uring_enter`` of an attached ring: the loop until STOP (0) or -errno."""
        if self._destroyed:
            return -errno.EBADF
        if getattr(self.ring, "closed", False):   # ring teardown removes the ops
            self.destroy()
            return -errno.EBADF
        if not self._entry:
            return -errno.EFAULT
        self._error = None
        self._route_submissions()
        if self._jit is not None:
            self._jit.reset()
        # looked up per run: a handler installed after attach must interrupt the loop too
        sigs = _python_signals()
        sig_array = (ctypes.c_int * max(len(sigs), 1))(*sigs)
        self._runner = threading.get_ident()
        try:
            with route_escapes():     # a Ctrl-C raised as a step's trampoline starts: abort
                ret = int(lib().uringbpf_loop_run(self.addr, self._entry, sig_array, len(sigs)))
        finally:
            self._runner = None
            if self._destroy_pending:          # destroy() from inside the loop's own step
                self._destroy_pending = False
                self._teardown()
        self.runs += 1
        self.last_result = ret
        if ret == _ABORTED:
            err, self._error = self._error, None
            if err is None and self._jit is not None:
                err = self._jit.take_error()
            if err is None:
                raise LoopError("loop_step program aborted")
            if not isinstance(err, Exception):  # KeyboardInterrupt, SystemExit: as they are
                raise err
            raise LoopError(f"loop_step program failed: {err}") from err
        return ret

    def _route_submissions(self) -> None:
        """Native submit unless the ring has SQE filters only Python can run.

        The cBPF opcode filters (designs/filter.py) run in C on the native path; any other
        filter a design added with ``ring.add_sqe_filter`` is Python, so then (and only
        then) ``bpf_io_uring_submit_sqes`` goes through ``ring.raw_enter``, which runs them.
        """
        table = _filter.filters_of(self.ring)
        mine = table.sqe_filter if table is not None else None
        foreign = [f for f in self.ring.sqe_filters if f is not mine]
        if not foreign:
            self.ctx.py_submit = 0
            return
        if self._py_submit is None:
            ring = self.ring

            def submit(nr, _ring=ring):
                return _ring.raw_enter(int(nr), 0, uapi.IORING_ENTER_GETEVENTS)

            def cancel(exc: BaseException, _args: tuple) -> int:  # re-raised after the loop
                self._error = exc
                self.ctx.abort = 1
                return -errno.ECANCELED

            self._py_submit = PY_SUBMIT_FN(barrier(submit, cancel))
        self.ctx.py_submit = ctypes.cast(self._py_submit, c_void_p).value

    def enter_hook(self, ring, to_submit: int, min_complete: int, flags: int, *a, **kw) -> int:
        """The ring's enter hook: 7.1 ignores to_submit/min_complete once ops are attached."""
        return self.run()

    def stats(self) -> dict[str, int]:
        """Counters since the attach: steps, waits, submit calls, SQEs submitted/denied/faulted."""
        c = self.ctx
        return {"steps": c.steps, "waits": c.waits, "submit_calls": c.submit_calls,
                "sqes_submitted": c.sqes_submitted, "sqes_denied": c.sqes_denied,
                "sqes_faulted": c.sqes_faulted}

    def _stop_running_loop(self) -> bool:
        """End a loop running on another thread and wait until it no longer touches the
        ring, the program or this context (issue #13 item 10).  False when the loop runs on
        this very thread (we are inside its step): it ends after the step returns."""
        if not lib().uringbpf_loop_request_stop(self.addr):
            return True
        if self._runner == threading.get_ident():
            return False
        while self.ctx.running:                # ends within one step or one wait slice
            time.sleep(0.001)
        return True

    def _on_ring_close(self, ring) -> None:
        if not self._stop_running_loop():
            raise LoopError("Ring.close() from inside the ring's own loop_step: close it "
                            "after ring.enter() has returned")
        self.destroy()

    def destroy(self) -> None:
        """Detach: the ring's ``enter`` is the normal syscall again (idempotent).

        A loop running on another thread ends first (its ``enter`` fails with -ECANCELED);
        called from inside the loop's own step, the detach completes when the step returns.
        """
        if self._destroyed or self._destroy_pending:
            return
        if not self._stop_running_loop():
            self._destroy_pending = True
            return
        self._teardown()

    def _teardown(self) -> None:
        if self._destroyed:
            return
        self._destroyed = True
        with _attach_lock:
            if _attachments.get(self.ring) is self:
                del _attachments[self.ring]
            _ctx_by_addr.pop(self.addr, None)
        if not getattr(self.ring, "closed", False):   # a closed ring refuses every call
            self.ring.set_enter_hook(None)
            self.ring.remove_close_hook(self._on_ring_close)
        _filter.remove_listener(self.ring, self._on_filters)
        memregion.remove_listener(self.ring, self._set_mem_region)
        if self._runtime is not None:
            for region in self._regions_added:
                try:
                    self._runtime.mem.remove(region)
                except ValueError:
                    pass
            if getattr(self._runtime, "host", None) is self:
                self._runtime.host = None
        self._regions_added.clear()
        self.ctx.magic = 0

    def _on_filters(self, table_addr: int) -> None:
        self.set_filters(table_addr)


def _check_ring_flags(ring) -> None:
    if getattr(ring, "backend", "kernel") != "kernel":
        raise OSError(errno.EOPNOTSUPP, "the loop driver needs a kernel io_uring (not the "
                                        "thread-pool fallback)")
    flags = int(getattr(ring, "flags", ring.params.flags))
    if not flags & uapi.IORING_SETUP_DEFER_TASKRUN:
        raise OSError(errno.EOPNOTSUPP, "io_uring_bpf_ops need IORING_SETUP_DEFER_TASKRUN")
    if flags & (uapi.IORING_SETUP_SQPOLL | uapi.IORING_SETUP_IOPOLL):
        raise OSError(errno.EOPNOTSUPP, "io_uring_bpf_ops cannot drive SQPOLL or IOPOLL rings")


def attach_loop(ring, step: Any, *, engine: str | None = None) -> LoopAttachment:
    """Attach a loop_step to ``ring`` (the kernel's ``io_install_bpf_ops``).

    Raises OSError(EOPNOTSUPP) without DEFER_TASKRUN or with SQPOLL/IOPOLL, and
    OSError(EBUSY) when the ring already has ops.  Returns the attachment, whose
    :meth:`~LoopAttachment.destroy` restores the normal ``enter``.
    """
    _check_ring_flags(ring)
    with _attach_lock:
        if ring in _attachments:
            raise OSError(errno.EBUSY, "the ring already has io_uring_bpf_ops attached")
        att = LoopAttachment(ring, step, engine=engine)
        _attachments[ring] = att
        _ctx_by_addr[att.addr] = att
    memregion.watch(ring)      # a raw MEM_REGION registration after attach reaches the ctx
    memregion.add_listener(ring, att._set_mem_region)
    _filter.add_listener(ring, att._on_filters)
    ring.set_enter_hook(att.enter_hook)
    return att


def attachment_of(ring) -> LoopAttachment | None:
    """The live :class:`LoopAttachment` of ``ring``, or None."""
    return _attachments.get(ring)


# --- finding a Ring by fd (struct_ops carry only ring_fd) -------------------------------


def ring_from_fd(fd: int):
    """The live :class:`Ring` whose fd is ``fd`` (io_uring_ctx_get_file semantics).

    OSError(EBADF) if ``fd`` is not open, OSError(EOPNOTSUPP) if it is not an io_uring
    (or not a ring this process drives through uringbpf).
    """
    return Ring.by_fd(int(fd))


# --- kfuncs: one C implementation, reached through ctypes by the interpreter -----------
def _live_ctx(runtime, addr: int) -> LoopAttachment | None:
    att = _ctx_by_addr.get(addr)
    return att if att is not None and not att._destroyed else None


def _kf_submit_sqes(runtime, r1, r2, r3, r4, r5) -> int:
    if _live_ctx(runtime, r1) is None:
        return -errno.EINVAL & 0xFFFFFFFFFFFFFFFF
    return lib().uringbpf_kf_submit_sqes(r1, r2 & 0xFFFFFFFF, 0, 0, 0)


def _kf_get_region(runtime, r1, r2, r3, r4, r5) -> int:
    if _live_ctx(runtime, r1) is None:
        return 0
    return lib().uringbpf_kf_get_region(r1, r2 & 0xFFFFFFFF, r3, 0, 0)

LOOP_STEP_PROG_TYPE = f"struct_ops:{STRUCT_OPS_TYPE}.loop_step"


def _add_kfuncs(platform: Platform) -> None:
    allowed = frozenset({LOOP_STEP_PROG_TYPE})
    platform.kfunc(KFUNC_SUBMIT_SQES, (Arg.TRUSTED_PTR, Arg.SCALAR), sleepable_only=True,
                   prog_types=allowed)(_kf_submit_sqes)
    platform.kfuncs[KFUNC_SUBMIT_SQES].native = (NATIVE_SOURCE, "uringbpf_kf_submit_sqes")
    platform.kfunc(KFUNC_GET_REGION, (Arg.TRUSTED_PTR, Arg.SCALAR, Arg.SCALAR),
                   Ret.MEM_OR_NULL, ret_size_arg=2, prog_types=allowed,
                   # __u8 *: a size of 0 gives one read-only byte, as in the kernel
                   kfunc_flags=frozenset({"RET_NULL", "RET_ELEM_SIZE=1"}))(_kf_get_region)
    platform.kfuncs[KFUNC_GET_REGION].native = (NATIVE_SOURCE, "uringbpf_kf_get_region")


def _add_prog_type(platform: Platform) -> None:
    """loop_step(struct io_ring_ctx *ctx, struct iou_loop_params *lp): the verifier's view.

    ``ctx`` is a trusted opaque pointer (only passed to the kfuncs); ``lp`` points to a
    4-byte struct whose only field, ``cq_wait_idx``, may be read and written.  The
    return value (IOU_LOOP_CONTINUE / IOU_LOOP_STOP) is checked when the loop runs, as
    io_uring/loop.c does (-EINVAL for anything else), not by the verifier: the kernel's
    verifier puts no range on an ``int``-returning struct_ops member.
    """
    params = pt.Layout("iou_loop_params", 4,
                       (pt.Field("cq_wait_idx", 0, 4, read=True, write=True),))
    platform.add_struct_ops_member(
        STRUCT_OPS_TYPE, "loop_step",
        [pt.ValueKind.trusted("io_ring_ctx"), pt.ValueKind.struct(params)],
        ret_range=None, name=LOOP_STEP_PROG_TYPE)


def _attach_struct_ops(obj, st_map) -> LoopAttachment:
    """``obj.attach_struct_ops(name)`` for ``struct io_uring_bpf_ops`` (the kernel's reg()).

    Finds the ring from ``ring_fd`` (EBADF / EOPNOTSUPP as io_uring_ctx_get_file), then
    applies the install rules of :func:`attach_loop` (EOPNOTSUPP, EBUSY).
    """
    ring = ring_from_fd(int(st_map.get("ring_fd")))
    step = st_map.programs.get("loop_step")
    return attach_loop(ring, step)


class LoopDesign(Design):
    """Linux 7.1 ``loop_step`` struct_ops: its two kfuncs, the ``loop_step`` program type
    and the ``io_uring_bpf_ops`` attach function."""

    name = "loop"

    def contribute(self, platform: Platform) -> None:
        """Add the loop kfuncs, program type and struct_ops type to ``platform``."""
        _add_kfuncs(platform)
        _add_prog_type(platform)
        platform.add_struct_ops_type(STRUCT_OPS_TYPE, _attach_struct_ops)


DESIGN = LoopDesign()
