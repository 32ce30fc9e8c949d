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
import os
import random
import signal
import stat
import tempfile
import threading
import time
import weakref
from ctypes import Structure, c_int32, c_uint32, c_uint64, c_void_p, sizeof
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import native
from ...callbacks import barrier

#: The C loop driver (built by :func:`uringbpf.native.load` on first use).
NATIVE_SOURCE = Path(__file__).resolve().with_name("loop.c")
from ...bpf import cc
from ...bpf import progtypes as pt
from ...bpf.object import BpfObject
from ...bpf.helpers import Arg, Ret
from ...bpf.platform import Design, Platform
from ...bpf.memory import guard_object
from ...uring import syscalls, uapi
from ...uring.ring import Ring
from .. import filter as _filter   # filters run inside the loop's native submit path

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

IORING_REGISTER_MEM_REGION = uapi.IORING_REGISTER_MEM_REGION
IORING_MEM_REGION_TYPE_USER = 1
IORING_MEM_REGION_REG_WAIT_ARG = 1
IORING_MAP_OFF_PARAM_REGION = 0x20000000


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


# --- the parameter region (IOU_REGION_MEM) ----------------------------------------------
class IoUringRegionDesc(Structure):
    """``struct io_uring_region_desc``."""

    _fields_ = [("user_addr", c_uint64), ("size", c_uint64), ("flags", c_uint32),
                ("id", c_uint32), ("mmap_offset", c_uint64), ("resv", c_uint64 * 4)]


class IoUringMemRegionReg(Structure):
    """``struct io_uring_mem_region_reg``: the IORING_REGISTER_MEM_REGION argument."""

    _fields_ = [("region_uptr", c_uint64), ("flags", c_uint64), ("resv", c_uint64 * 2)]


@dataclass
class MemRegion:
    """A ring's registered parameter region: what IOU_REGION_MEM returns to programs."""

    addr: int
    size: int
    keepalive: Any = None

    def view(self) -> memoryview:
        """A writable memoryview of the region's bytes."""
        return memoryview((ctypes.c_char * self.size).from_address(self.addr)).cast("B")


_mem_regions: "weakref.WeakKeyDictionary[Any, MemRegion]" = weakref.WeakKeyDictionary()
_hooked_rings: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _note_region(ring, region: MemRegion) -> None:
    _mem_regions[ring] = region
    att = _attachments.get(ring)
    if att is not None:
        att._set_mem_region(region)


def register_region_raw(ring, arg: int, nr_args: int) -> int:
    """``io_uring_register(fd, IORING_REGISTER_MEM_REGION, arg, nr_args)`` seen by the loop.

    The kernel (6.13+) registers the region itself; we read back the descriptor so a
    later ``bpf_io_uring_get_region(ctx, IOU_REGION_MEM, size)`` can return it, exactly
    the memory 7.1 hands to programs (``ctx->param_region``).
    """
    ret = syscalls.io_uring_register(ring.fd, IORING_REGISTER_MEM_REGION, arg, nr_args)
    if ret < 0:
        return ret
    reg = IoUringMemRegionReg.from_address(arg)
    desc = IoUringRegionDesc.from_address(reg.region_uptr)
    if desc.flags & IORING_MEM_REGION_TYPE_USER:
        _note_region(ring, MemRegion(desc.user_addr, desc.size))
    else:
        addr = syscalls.mmap_ring(ring.fd, desc.size, desc.mmap_offset)
        _note_region(ring, MemRegion(addr, desc.size, _Unmapper(addr, desc.size)))
    return ret


class _Unmapper:
    def __init__(self, addr: int, size: int):
        self.addr, self.size = addr, size

    def __del__(self):
        syscalls.munmap(self.addr, self.size)


def register_region(ring, size: int) -> MemRegion:
    """Register a ``size``-byte parameter region (liburing ``io_uring_register_region``).

    The memory is page-aligned user memory (IORING_MEM_REGION_TYPE_USER) that this
    process can read and write through :meth:`MemRegion.view`; a loop_step program gets
    the same memory from ``bpf_io_uring_get_region(ctx, IOU_REGION_MEM, n)``.
    Raises OSError(-errno) with the kernel's error (EBUSY for a second region).
    """
    if size <= 0:
        raise ValueError("region size must be > 0")
    _hook_ring(ring)
    page = mmap.PAGESIZE
    size = (size + page - 1) // page * page
    area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(area))
    desc = IoUringRegionDesc(user_addr=addr, size=size, flags=IORING_MEM_REGION_TYPE_USER)
    reg = IoUringMemRegionReg(region_uptr=ctypes.addressof(desc))
    ret = register_region_raw(ring, ctypes.addressof(reg), 1)
    if ret < 0:
        area.close()
        raise OSError(-ret, f"IORING_REGISTER_MEM_REGION: {os.strerror(-ret)}")
    region = _mem_regions[ring]
    region.keepalive = area
    return region


def _register_hook(ring, opcode: int, arg: int, nr_args: int) -> int | None:
    if opcode == IORING_REGISTER_MEM_REGION:
        return register_region_raw(ring, arg, nr_args)
    return None


def _hook_ring(ring) -> None:
    """Install our register hook once per ring (so raw MEM_REGION registrations are seen)."""
    if ring in _hooked_rings:
        return
    add = getattr(ring, "add_register_hook", None)
    if add is not None:
        add(_register_hook)
    _hooked_rings.add(ring)


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


from ...errors import BpfVerifierError, LoopError  # noqa: E402,F401  (defined in uringbpf.errors)


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
        region = _mem_regions.get(self.ring)
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
    _hook_ring(ring)
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


# --- the examples (examples/loop/*.bpf.c): building and running them -------------------
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
RING_FLAGS = (uapi.IORING_SETUP_SINGLE_ISSUER | uapi.IORING_SETUP_DEFER_TASKRUN
              | uapi.IORING_SETUP_NO_SQARRAY | uapi.IORING_SETUP_CQSIZE
              | uapi.IORING_SETUP_SQ_REWIND)


def example_object(name: str) -> Path:
    """``examples/loop/<name>.bpf.c`` compiled with ``uringbpf cc`` (cached, see cc.compile_cached)."""
    src = EXAMPLES_DIR / f"{name}.bpf.c"
    if not src.exists():
        raise FileNotFoundError(f"{src}: the loop examples ship with the source tree")
    return cc.compile_cached(src)


def make_ring(entries: int = 8, cq_entries: int | None = None, flags: int = RING_FLAGS):
    """A ring the loop can drive: SINGLE_ISSUER | DEFER_TASKRUN | NO_SQARRAY | SQ_REWIND."""
    return Ring(entries, cq_entries=cq_entries or entries, flags=flags)


def _set_ring_rodata(obj, ring) -> None:
    ro = obj.rodata
    ro.cq_head_offset = ring.params.cq_off.head
    ro.cq_tail_offset = ring.params.cq_off.tail
    ro.cqes_offset = ring.params.cq_off.cqes
    ro.cq_entries = ring.params.cq_entries
    ro.sq_entries = ring.params.sq_entries


def open_example(name: str, ring, *, engine: str = "jit", verify: bool = True, **rodata):
    """Open, configure (ring offsets + ``rodata``) and load an example; returns the object."""
    obj = BpfObject.open(example_object(name))
    st = next(iter(obj.struct_ops))
    st.ring_fd = ring.fd
    _set_ring_rodata(obj, ring)
    for key, value in rodata.items():
        setattr(obj.rodata, key, value)
    obj.load(engine, verify=verify)
    return obj


def nops_example(ring, total: int, *, engine: str = "jit", cap: int | None = None,
                 verify: bool = True):
    """examples/loop/nops.bpf.c attached to ``ring`` with ``total`` NOPs to run."""
    obj = BpfObject.open(example_object("nops"))
    obj.struct_ops.nops_ops.ring_fd = ring.fd
    obj.bss.reqs_to_run = total
    _set_ring_rodata(obj, ring)
    obj.rodata.max_inflight = cap or ring.params.sq_entries
    obj.load(engine, verify=verify)
    return obj, obj.attach_struct_ops("nops_ops")


@dataclass
class CopyResult:
    """What :func:`copy_fd` did: bytes copied, error (-errno or 0), done, and counters."""
    copied: int
    error: int
    done: bool
    fnv1a: int | None = None
    reads: int | None = None
    short_reads: int | None = None
    engine: str = ""
    seconds: float = 0.0      # time spent in the one io_uring_enter (the copy itself)
    depth: int = 1            # chunks in flight the cp program ran with (after clamping)
    writes: int | None = None
    short_writes: int | None = None


MAX_COPY_DEPTH = 8   # cp.bpf.c's MAX_DEPTH


def _seekable_offset(fd: int) -> int | None:
    """The current offset of a regular file or block device, else None (pipe, socket, tty).

    Only such files may be read or written at explicit offsets by several requests at
    once; a pipe or socket has no offsets (lseek fails with ESPIPE): depth 1 for those.
    """
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
            return None
        return os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return None


def _drain(ring, pending: int) -> None:
    """Wait for the CQEs of requests cp.bpf.c left running when it stopped on an error.

    Other slots' reads and writes may still be in io-wq workers, using the copy buffer:
    closing the ring only starts their cancellation (the kernel finishes it in the
    background), so the buffer may be unmapped only after their CQEs are posted.
    """
    while pending > 0:
        ret = ring.enter(0, pending, uapi.IORING_ENTER_GETEVENTS)
        if ret == -errno.EINTR:
            continue
        if ret < 0:
            raise OSError(-ret, f"waiting for the copy's last requests: {os.strerror(-ret)}")
        return


def copy_fd(in_fd: int, out_fd: int, *, checksum: bool = False, engine: str = "jit",
            chunk: int = 4096, depth: int = 1, verify: bool = True) -> CopyResult:
    """Copy ``in_fd`` (file, pipe or socket) to ``out_fd`` with the cp or cksum example.

    One ``io_uring_enter`` on a fresh loop ring does the whole copy.  With ``checksum``
    the buffer is the ring's parameter region and the program FNV-1a hashes the data.

    ``depth`` (1..8, cp only) is how many chunks the program keeps in flight.  Above 1
    the input is read at explicit offsets, from its current offset on, and chunks are
    written out of order, which needs a seekable input AND output: when either is a pipe,
    socket or tty ``depth`` is clamped to 1 (reads at the file position, short reads
    written as they come, in order).  ``CopyResult.depth`` says what ran.  After a deeper
    copy the input's offset is moved past what was copied, as depth 1's reads at offset -1
    do.  Output is written from the output's position on and the position ends after the
    copy, as with cp: data already in the output stays (issue #13 item 13).
    """
    if not isinstance(depth, int) or not 1 <= depth <= MAX_COPY_DEPTH:
        raise ValueError(f"depth must be an int in 1..{MAX_COPY_DEPTH}, got {depth!r}")
    if not isinstance(chunk, int) or chunk <= 0 or chunk > 1 << 30:
        raise ValueError(f"chunk must be an int in 1..{1 << 30}, got {chunk!r}")
    if checksum and depth != 1:
        raise ValueError("the cksum example hashes a stream in order: depth must be 1")
    start_off = None
    out_off = _seekable_offset(out_fd)     # None: a pipe or socket (offsets are ignored)
    if depth > 1:
        start_off = _seekable_offset(in_fd)
        if start_off is None or out_off is None:
            depth, start_off = 1, None
    ring = make_ring(max(8, depth))
    buf = None
    try:
        if checksum:
            region = register_region(ring, 4096)
            name, extra = "cksum", {"buf_addr": region.addr}
        else:
            # one buffer per slot, contiguous: slot s uses [s * chunk, (s + 1) * chunk)
            buf = mmap.mmap(-1, chunk * depth)
            name = "cp"
            extra = {"buf_addr": ctypes.addressof(ctypes.c_char.from_buffer(buf)),
                     "chunk_size": chunk, "depth": depth, "in_start": start_off or 0,
                     "out_start": out_off or 0}
        obj = open_example(name, ring, engine=engine, verify=verify, in_fd=in_fd,
                           out_fd=out_fd, **extra)
        try:
            link = obj.attach_struct_ops(f"{name}_ops")
            start = time.perf_counter()
            ret = ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS)
            seconds = time.perf_counter() - start
            if ret < 0:
                raise OSError(-ret, f"loop run failed: {os.strerror(-ret)}")
            bss = obj.bss
            result = CopyResult(int(bss.copied), int(bss.error), bool(bss.done),
                                engine=link.engine, seconds=seconds)
            if checksum:
                result.fnv1a = int(obj.data.fnv1a) & 0xFFFFFFFF
            else:
                result.reads, result.short_reads = int(bss.reads), int(bss.short_reads)
                result.writes, result.short_writes = int(bss.writes), int(bss.short_writes)
                result.depth = depth
            link.destroy()
            if not checksum:
                _drain(ring, int(bss.pending))
            if start_off is not None and result.done:
                os.lseek(in_fd, start_off + result.copied, os.SEEK_SET)
            if out_off is not None and (result.done or depth == 1):
                # writes at explicit offsets leave the position alone: move it past what
                # was written, as write(2) and cp do (depth 1 writes contiguously)
                os.lseek(out_fd, out_off + result.copied, os.SEEK_SET)
            return result
        finally:
            obj.close()
    finally:
        # requests an error left running were waited for (_drain) before this point
        ring.close()
        if buf is not None:
            buf.close()


def fnv1a32(data: bytes, h: int = 2166136261) -> int:
    """The checksum cksum.bpf.c computes, in Python (for checking it)."""
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


# --- `uringbpf demo` section ----------------------------------------------------------
def _load_verified(fn, *args, **kw):
    """Run an example loader with the verifier; if it refuses the program, say so and go on."""
    try:
        return fn(*args, verify=True, **kw)
    except BpfVerifierError as exc:   # the demo says so and asks for an unverified run
        print(f"  (verifier: {str(exc).splitlines()[0]} -- running unverified)")
        return fn(*args, verify=False, **kw)


def demo_section(opts=None) -> None:
    """cp with short reads through a pipe, checksum-while-copy, and NOP throughput."""
    size = 4 << 20
    data = random.Random(1).randbytes(size)
    r, w = os.pipe()

    def writer():
        try:
            for i in range(0, size, 50_000):
                os.write(w, data[i:i + 50_000])
        finally:
            os.close(w)

    with tempfile.TemporaryDirectory(prefix="uringbpf-loop-") as tmp:
        out_path = os.path.join(tmp, "out")
        out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        t = threading.Thread(target=writer)
        t.start()
        start = time.perf_counter()
        try:
            res = _load_verified(copy_fd, r, out, chunk=128 * 1024)
        finally:
            os.close(r)
            t.join()
            os.close(out)
        secs = time.perf_counter() - start
        with open(out_path, "rb") as f:
            same = f.read() == data
    print(f"  cp.bpf.c: {res.copied / (1 << 20):.1f} MiB from a pipe in {res.reads} reads, "
          f"{res.short_reads} of them short (128 KiB asked, <= 64 KiB in the pipe); each write "
          f"as long as its read; identical: {'yes' if same else 'NO'}; "
          f"one io_uring_enter of {res.seconds * 1e3:.0f} ms (a Python thread feeds the pipe), "
          f"{secs * 1e3:.0f} ms with compile+verify+JIT, engine={res.engine}")
    r, w = os.pipe()
    with tempfile.TemporaryDirectory(prefix="uringbpf-loop-") as tmp:
        out = os.open(os.path.join(tmp, "out"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        t = threading.Thread(target=writer)
        t.start()
        try:
            res = _load_verified(copy_fd, r, out, checksum=True)
        finally:
            os.close(r)
            t.join()
            os.close(out)
    same = res.fnv1a == fnv1a32(data)
    print(f"  cksum.bpf.c: copied {res.copied / (1 << 20):.1f} MiB and hashed it inside the loop:"
          f" fnv1a32={res.fnv1a:#010x}, matches Python: {'yes' if same else 'NO'} "
          "(no link chain can look at the data)")
    for k in (8, 32):
        ring = make_ring(k)
        try:
            obj, link = _load_verified(nops_example, ring, 300_000, cap=k)
            start = time.perf_counter()
            ret = ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS)
            secs = time.perf_counter() - start
            left = obj.bss.reqs_to_run
            link.destroy()
            obj.close()
        finally:
            ring.close()
        print(f"  nops.bpf.c K={k}: 300000 NOPs in one io_uring_enter: {300_000 / secs / 1e6:.2f} M "
              f"NOPs/s (ret={ret}, left={left}, engine={link.engine}; see bench/loop_nops.py "
              "for C liburing and Python side by side)")


def register_demo(add_section) -> None:
    """Add the loop design's section to ``uringbpf demo``."""
    add_section("loop", "Linux 7.1 loop_step: short-read-proof cp, checksum, NOP throughput",
                demo_section)


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
