"""The engine of the 2021 "io_uring BPF requests" RFC (Begunkov, v2): extra CQs, BPF
requests parked on ``wait_nr``/``wait_idx``, helpers 164-167.

How each RFC feature is provided on a kernel that has none of it is told once, in the
package docstring (:mod:`uringbpf.designs.requests`) and in docs/designs/requests.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import os
import threading
import time
from collections import deque
from ctypes import Structure, c_uint32, c_uint64, sizeof
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ...bpf import helpers as _helpers
from ...bpf import engines, interp, isa
from ...bpf import progtypes as pt
from ...bpf.helpers import Arg
from ...bpf.platform import Platform
from ...bpf.memory import BpfRuntimeError, Buffer, guard_check, guard_check_sqe
from ...callbacks import barrier, route_escapes
from ...uring import uapi as u
from ...uring.ring import Completion, Ring as BaseRing, RingClosedError, deny_sqe

# --- constants of the RFC -----------------------------------------------------------------
#: The RFC appended IORING_OP_BPF after the last opcode of its day (it took the slot that
#: MKDIRAT has now).  65 is Ming Lei's later IORING_OP_BPF (designs/ops.py), so the RFC's
#: request gets the next free number: both designs can sit on one ring.
IORING_OP_BPF = 66
#: Internal: the second SQE of a linked BPF request (see prep_bpf_linked): it becomes a
#: READ of a pipe that the engine writes when the program completes, so the requests
#: linked after the BPF request wait for it, and fail with -ECANCELED if it failed.
IORING_OP_BPF_GATE = 67
#: RFC register opcodes (15/16 at the time; today the kernel uses them for other things,
#: so they are only exported for reference: registration goes through ``register_bpf``).
IORING_REGISTER_BPF = 15
IORING_UNREGISTER_BPF = 16
IORING_MAX_BPF_PROGS = 100
IO_MAX_CQRINGS = 1024
#: The kernel's cap on CQ entries (IORING_MAX_CQ_ENTRIES).
MAX_CQ_ENTRIES = 2 * 32768

BPF_FUNC_iouring_queue_sqe = 164
BPF_FUNC_iouring_emit_cqe = 165
BPF_FUNC_iouring_reap_cqe = 166
BPF_FUNC_copy_to_user = 167
BPF_FUNC_copy_from_user = 148

# Short names, after the uapi module's rule.
OP_BPF = IORING_OP_BPF
REGISTER_BPF = IORING_REGISTER_BPF
UNREGISTER_BPF = IORING_UNREGISTER_BPF

#: Program type name we register with the verifier; the loader gives it to SEC("iouring/")
#: and SEC("iouring.s/") programs.
PROG_TYPE = "iouring"


class IoUringBpfCtx(Structure):
    """``struct io_uring_bpf_ctx`` of the RFC (16 bytes): what the program's r1 points at."""

    _fields_ = [("user_data", c_uint64), ("wait_nr", c_uint32), ("wait_idx", c_uint32)]


assert sizeof(IoUringBpfCtx) == 16
CTX_SIZE = sizeof(IoUringBpfCtx)
CTX_BUF_SIZE = 128   # >= sizeof(struct rq_req) of designs/requests/requests.c (checked at load)
_CQE_SIZE = sizeof(u.Cqe)

# Opcodes whose kernel prep reads bytes 48..63 of the SQE for itself: there the RFC's
# cq_idx cannot live, so it is not interpreted (the CQE goes to CQ 0).
_NO_CQ_IDX = frozenset({u.IORING_OP_URING_CMD, u.IORING_OP_URING_CMD128,
                        u.IORING_OP_SETXATTR, u.IORING_OP_GETXATTR,
                        u.IORING_OP_FSETXATTR, u.IORING_OP_FGETXATTR})
# Read/write opcodes use bytes 48..63 for attributes only when attr_type_mask is set.
_RW_OPS = frozenset({u.IORING_OP_READ, u.IORING_OP_WRITE, u.IORING_OP_READV,
                     u.IORING_OP_WRITEV, u.IORING_OP_READ_FIXED, u.IORING_OP_WRITE_FIXED,
                     u.IORING_OP_READV_FIXED, u.IORING_OP_WRITEV_FIXED})
# Opcodes that name another request by its user_data in sqe->addr.
_TARGETS_USER_DATA = frozenset({u.IORING_OP_ASYNC_CANCEL, u.IORING_OP_TIMEOUT_REMOVE,
                                u.IORING_OP_POLL_REMOVE})
_LINK_FLAGS = u.IOSQE_IO_LINK | u.IOSQE_IO_HARDLINK | u.IOSQE_IO_DRAIN

# Buffers that in-flight kernel requests may still write when a ring closes (never freed).
_GRAVEYARD: list = []
#: longest single io_uring_enter wait: a close() from another thread is seen this soon
_WAIT_SLICE = 0.05

# Tokens that stand in for user_data while a request is in the kernel.
_TOKEN_BASE = 0xB9F5_0000_0000_0000
_token_counter = itertools.count(1)

# ctx address -> the running BpfRequest (how helpers find their ring, like io_bpf_ctx).
_CTX_OWNERS: dict[int, "BpfRequest"] = {}
# request pools of native engines: base address -> size (their ctx pointers live there)
_NATIVE_POOLS: dict[int, int] = {}


# Exceptions raised in a Python helper called from C (they cannot unwind through C):
# raised again by the engine as soon as the program run returns.
PENDING_INTERRUPTS: list[BaseException] = []
#: Set while such an exception waits: the native loop checks it and returns to Python.
STOP = ctypes.c_uint32(0)


def hold_interrupt(exc: BaseException) -> None:
    """Park an exception raised under a program run (a KeyboardInterrupt, a failing SQE
    filter of another design) and ask the engine to stop; :func:`raise_pending` raises it."""
    PENDING_INTERRUPTS.append(exc)
    STOP.value = 1


def _submit_failed(exc: BaseException, _args: tuple) -> int:
    """The ring's submit raised under a program's helper: an OSError is the helper's
    -errno; anything else (a KeyboardInterrupt, a failing SQE filter) is held for
    :func:`raise_pending` and the helper fails with -EINTR."""
    if isinstance(exc, OSError):
        return -(exc.errno or errno.EINVAL)
    hold_interrupt(exc)
    return -errno.EINTR


def raise_pending() -> None:
    """Re-raise the parked exception, if any, once the engine stopped."""
    STOP.value = 0
    if PENDING_INTERRUPTS:
        exc = PENDING_INTERRUPTS.pop(0)
        PENDING_INTERRUPTS.clear()
        raise exc


def _native_ctx(ctx: int) -> bool:
    return any(base <= ctx < base + size for base, size in _NATIVE_POOLS.items())


def _u32(addr: int) -> ctypes.c_uint32:
    return ctypes.c_uint32.from_address(addr)


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >> 31 else value


# --- completion queues --------------------------------------------------------------------
class CompletionQueue:
    """One CQ in memory laid out like the kernel's CQ ring (``params.cq_off`` offsets).

    ``addr`` is the ring's base (what ``cq_off`` offsets are relative to), so a program
    or C code that knows the kernel layout reads head/tail/CQEs exactly as it would from
    the kernel's mmap.  CQ 0 keeps an overflow list (the kernel's NODROP behaviour);
    other CQs drop what does not fit and count it in ``overflow``.
    """

    def __init__(self, index: int, entries: int, cq_off: u.IoCqringOffsets, cqe_size: int,
                 keep_overflow: bool):
        self.index = index
        self.entries = entries
        self.mask = entries - 1
        self.cqe_size = cqe_size
        self.offsets = cq_off
        self.size = cq_off.cqes + entries * cqe_size
        self.mem = Buffer(self.size, align=64)
        self.addr = self.mem.addr
        self._head = _u32(self.addr + cq_off.head)
        self._tail = _u32(self.addr + cq_off.tail)
        self._overflow = _u32(self.addr + cq_off.overflow)
        _u32(self.addr + cq_off.ring_mask).value = self.mask
        _u32(self.addr + cq_off.ring_entries).value = entries
        self.cqes_addr = self.addr + cq_off.cqes
        self.keep_overflow = keep_overflow
        self.backlog: deque[bytes] = deque()   # CQ 0's overflow list
        self.flush_hook: Callable[[], None] | None = None   # the native engine's backlog

    # -- the kernel-visible fields
    @property
    def head(self) -> int:
        """The CQ head index."""
        return self._head.value

    @property
    def tail(self) -> int:
        """The CQ tail index."""
        return self._tail.value

    @property
    def overflow(self) -> int:
        """CQEs dropped because the CQ was full (never grows on CQ 0: it keeps them)."""
        return self._overflow.value

    def ready(self) -> int:
        """Unconsumed CQEs (tail - head), what ``wait_nr`` is compared against."""
        return (self._tail.value - self._head.value) & 0xFFFFFFFF

    def space(self) -> int:
        """Free CQE slots."""
        return self.entries - self.ready()

    # -- producer side
    def post_raw(self, cqe: bytes) -> bool:
        """Append one CQE (``cqe_size`` bytes); False if it had to be dropped."""
        if self.backlog or self.ready() >= self.entries:
            if self.keep_overflow:
                self.backlog.append(cqe)
                return True
            self._overflow.value = (self._overflow.value + 1) & 0xFFFFFFFF
            return False
        tail = self._tail.value
        ctypes.memmove(self.cqes_addr + (tail & self.mask) * self.cqe_size, cqe,
                       min(len(cqe), self.cqe_size))
        self._tail.value = (tail + 1) & 0xFFFFFFFF
        return True

    def post(self, user_data: int, res: int, flags: int = 0) -> bool:
        """Post a CQE; False if the CQ was full and it went to the backlog."""
        cqe = u.Cqe(user_data & 0xFFFFFFFFFFFFFFFF, _s32(res), flags & 0xFFFFFFFF)
        return self.post_raw(bytes(cqe).ljust(self.cqe_size, b"\0"))

    def full(self) -> bool:
        """True when no CQE can be posted without the backlog."""
        return bool(self.backlog) or self.ready() >= self.entries

    # -- consumer side (liburing verbs)
    def peek(self) -> u.Cqe | None:
        """The head CQE as a zero-copy view, or None when empty."""
        if self._tail.value == self._head.value:
            return None
        return u.Cqe.from_address(self.cqes_addr + (self._head.value & self.mask) * self.cqe_size)

    def advance(self, n: int = 1) -> None:
        """Consume ``n`` CQEs (ValueError beyond those ready), then flush the backlog."""
        if n < 0 or n > self.ready():
            raise ValueError(f"cannot advance CQ {self.index} by {n} ({self.ready()} ready)")
        self._head.value = (self._head.value + n) & 0xFFFFFFFF
        self.flush_backlog()

    def pop(self) -> tuple[int, int, int] | None:
        """Reap one CQE as ``(user_data, res, flags)`` (None when empty)."""
        cqe = self.peek()
        if cqe is None:
            return None
        out = (cqe.user_data, cqe.res, cqe.flags)
        self.advance(1)
        return out

    def reap_raw(self) -> bytes | None:
        """The next CQE's bytes, consumed, or None."""
        cqe = self.peek()
        if cqe is None:
            return None
        raw = ctypes.string_at(ctypes.addressof(cqe), self.cqe_size)
        self.advance(1)
        return raw

    def drain(self) -> list[tuple[int, int, int]]:
        """Consume every ready CQE; returns ``(user_data, res, flags)`` tuples."""
        out = []
        while (item := self.pop()) is not None:
            out.append(item)
        return out

    def flush_backlog(self) -> None:
        """Move overflowed CQEs into the CQ while there is room."""
        if self.flush_hook is not None:
            self.flush_hook()
        while self.backlog and self.ready() < self.entries:
            raw = self.backlog.popleft()
            tail = self._tail.value
            ctypes.memmove(self.cqes_addr + (tail & self.mask) * self.cqe_size, raw, len(raw))
            self._tail.value = (tail + 1) & 0xFFFFFFFF

    def __repr__(self) -> str:
        return (f"<CompletionQueue {self.index} entries={self.entries} head={self.head} "
                f"tail={self.tail} overflow={self.overflow} backlog={len(self.backlog)}>")


# --- registered programs and requests -----------------------------------------------------
@dataclass
class ProgramSlot:
    """One entry of the registered table: how to call the program, and what it may do."""

    index: int
    program: Any                       # LoadedProgram, or a runnable wrapper
    call: Callable[[int], int]         # call(ctx_addr) -> r0
    sleepable: bool
    name: str
    runtime: Any = None


@dataclass(eq=False)
class BpfRequest:
    """One IORING_OP_BPF request from submit to its completion."""

    engine: "RequestsEngine"
    user_data: int
    cq_idx: int
    slot: ProgramSlot | None
    error: int = 0
    skip_success: bool = False
    ctx_buf: Buffer | None = None
    wait_nr: int = 0
    wait_idx: int = 0
    runs: int = 0
    regions: list = field(default_factory=list)
    gate_w: int = -1          # write end of the gate pipe (linked successors wait on it)

    @property
    def ctx_addr(self) -> int:
        """Address of the request's context buffer (0 without one)."""
        return self.ctx_buf.addr if self.ctx_buf is not None else 0


@dataclass
class _Tag:
    kind: str          # "route" (bound for CQ cq_idx), "bpf" (a placeholder), "gate"
    user_data: int
    cq_idx: int
    request: BpfRequest | None = None
    keep: Any = None   # a gate's read end and buffer


# --- the engine ---------------------------------------------------------------------------
class RequestsEngine:
    """BPF requests and multiple CQs for one ring (see the module docstring).

    Use through :class:`Ring` (``Ring(entries, nr_cq=2, cq_sizes=[128, 128])``) or attach
    to an existing ring with :func:`enable_requests`; in the latter case reap CQ 0 with
    the engine's verbs (``engine.wait_cqe()``), because the kernel's CQ is drained into
    the engine's CQs.
    """

    def __init__(self, ring, nr_cq: int = 0, cq_sizes: Sequence[int] | None = None, *,
                 serialize: bool = False, private_cq: bool = False,
                 max_runs_per_enter: int = 256):
        #: where hand-assembled programs (``isa.Program``) find the RFC helpers (set by
        #: make_engine to the design's platform; None: the default platform)
        self.platform: Platform | None = None
        #: threads inside wait(); set by close() from another thread to end their waits
        self._waiters: list[int] = []
        self._closing = False
        if (nr_cq == 0) != (not cq_sizes):
            raise OSError(errno.EINVAL, "nr_cq and cq_sizes must be given together")
        cq_sizes = list(cq_sizes or [])
        if nr_cq < 0 or nr_cq > IO_MAX_CQRINGS or len(cq_sizes) != nr_cq:
            raise OSError(errno.EINVAL, f"nr_cq must be 0..{IO_MAX_CQRINGS} and match cq_sizes")
        if max_runs_per_enter < 1:
            raise ValueError("max_runs_per_enter must be >= 1")
        sizes = []
        for n in cq_sizes:
            if not isinstance(n, int) or n <= 0 or n > MAX_CQ_ENTRIES:
                raise OSError(errno.EINVAL, f"bad CQ size {n!r} (1..{MAX_CQ_ENTRIES})")
            sizes.append(1 << (n - 1).bit_length())   # the kernel rounds up to a power of 2
        self.ring = ring
        params = ring.params
        self._fd = ring.fd
        self._setup_flags = params.flags
        self.cqe_size = 32 if params.flags & u.IORING_SETUP_CQE32 else 16
        co = params.cq_off
        self.cqs: list[CompletionQueue] = [
            CompletionQueue(0, params.cq_entries, co, self.cqe_size, keep_overflow=True)]
        for i, n in enumerate(sizes, start=1):
            self.cqs.append(CompletionQueue(i, n, co, self.cqe_size, keep_overflow=False))
        self.private_cq: int | None = None
        if private_cq:
            # Dietrich/Schirmeier's "suppressed CQE": an extra CQ only programs consume.
            self.cqs.append(CompletionQueue(len(self.cqs), params.cq_entries, co,
                                            self.cqe_size, keep_overflow=False))
            self.private_cq = len(self.cqs) - 1
        # the kernel's CQ, which we drain (restoring user_data in place, then advancing it
        # with the base ring's cq_advance so its keep-alive bookkeeping stays right)
        self._k_head = _u32(ring.cq_head_addr)
        self._k_tail = _u32(ring.cq_tail_addr)
        self._k_mask = ring.cq_mask
        self._k_cqes = ring.cqes_addr
        self._k_advance = _base_method(ring, "cq_advance")
        self._raw_enter = ring.raw_enter
        self.serialize = serialize
        self.max_runs_per_enter = max_runs_per_enter
        self.slots: list[ProgramSlot | None] | None = None
        self._tags: dict[int, _Tag] = {}
        self._token_of_ud: dict[int, int] = {}
        self._ready: deque[BpfRequest] = deque()
        self._parked: list[BpfRequest] = []
        self._serial_queue: deque[BpfRequest] = deque()
        self._active: BpfRequest | None = None
        self._live: set[BpfRequest] = set()
        self._pumping = False
        self._closed = False
        self._gate_for: BpfRequest | None = None
        self._gates: list[int] = []          # pipe fds to close at the end
        self.errors: list[BaseException] = []
        self.stats = {"runs": 0, "completed": 0, "cancelled": 0, "kernel_cqes": 0}
        ring.add_sqe_filter(self._on_sqe)

    # -- CQs
    @property
    def nr_cqs(self) -> int:
        """Number of CQs including CQ 0 (and the private CQ, if any)."""
        return len(self.cqs)

    def cq(self, index: int = 0) -> CompletionQueue:
        """Completion queue ``index`` (0 is the main CQ); IndexError if it does not exist."""
        if not 0 <= index < len(self.cqs):
            raise IndexError(f"CQ {index} does not exist (this ring has {len(self.cqs)})")
        return self.cqs[index]

    # -- registration (IORING_REGISTER_BPF / IORING_UNREGISTER_BPF)
    def register_bpf(self, programs: Sequence[Any], engine: str = "interp") -> int:
        """Register up to 100 programs as slots 0..n-1; ``None`` or ``-1`` leaves a hole.

        Programs are ``LoadedProgram`` s (their engine was chosen at load) or unloaded
        ``isa.Program`` s (e.g. hand-assembled), run by ``engine`` ("interp" or "jit").

        Returns 0 or -errno like the RFC: -EINVAL for an empty/oversized list or a
        program that is not of the iouring type, -EBUSY if programs are registered.
        """
        self._check_open()
        if self.slots is not None:
            return -errno.EBUSY
        programs = list(programs)
        if not 1 <= len(programs) <= IORING_MAX_BPF_PROGS:
            return -errno.EINVAL
        slots: list[ProgramSlot | None] = []
        for i, prog in enumerate(programs):
            if prog is None or (isinstance(prog, int) and prog == -1):
                slots.append(None)
                continue
            if getattr(prog, "loaded", True) is False:
                return -errno.EBADF          # like an fd that is not a loaded program
            slot = _make_slot(i, prog, engine, self.platform)
            if slot is None:
                return -errno.EINVAL
            slots.append(slot)
        for slot in slots:
            if slot is not None:
                self._expose_cqs(slot)
        self.slots = slots
        return 0

    def unregister_bpf(self) -> int:
        """Drop the table (-ENXIO if none).  Queued requests complete with -ECANCELED."""
        if self.slots is None:
            return -errno.ENXIO
        self._cancel_all(-errno.ECANCELED, post=True)
        for slot in self.slots:
            if slot is not None:
                self._hide_cqs(slot)
        self.slots = None
        return 0

    def _expose_cqs(self, slot: ProgramSlot) -> None:
        """Let the program touch the CQ rings directly (the RFC's mmap'able CQs)."""
        mem = getattr(slot.runtime, "mem", None)
        if mem is None:
            return
        regs = []
        for cq in self.cqs:
            try:
                regs.append(mem.add(cq.addr, cq.size, True, f"cq{cq.index}"))
            except ValueError:
                pass
        slot.__dict__.setdefault("_cq_regions", []).extend(regs)

    def _hide_cqs(self, slot: ProgramSlot) -> None:
        mem = getattr(slot.runtime, "mem", None)
        for reg in slot.__dict__.pop("_cq_regions", []):
            try:
                mem.remove(reg)
            except ValueError:
                pass

    # -- submit path ------------------------------------------------------------------
    def _on_sqe(self, sqe) -> int:
        """SQE filter: route by cq_idx, intercept BPF requests (0 or -errno)."""
        if self._closed:
            return 0
        addr = _sqe_address(sqe)
        opcode = ctypes.c_uint8.from_address(addr).value
        if opcode == IORING_OP_BPF:
            return self._accept_bpf_sqe(addr)
        gate_for, self._gate_for = self._gate_for, None
        if opcode == IORING_OP_BPF_GATE:
            return self._accept_gate(addr, gate_for)
        view = u.Sqe.from_address(addr)
        if opcode in _TARGETS_USER_DATA and self._retarget(view, opcode):
            return 0
        if opcode in _NO_CQ_IDX or (opcode in _RW_OPS and view.attr_type_mask):
            return 0
        idx = view.cq_idx
        if idx == 0:
            return 0
        view.cq_idx = 0
        if idx >= len(self.cqs):
            return -errno.EINVAL
        view.user_data = self._new_token(_Tag("route", view.user_data, idx))
        return 0

    def _new_token(self, tag: _Tag) -> int:
        while True:
            token = _TOKEN_BASE | (next(_token_counter) & 0xFFFF_FFFF_FFFF)
            if token not in self._tags:
                break
        self._tags[token] = tag
        if tag.kind == "route":
            self._token_of_ud[tag.user_data] = token
        return token

    def _drop_token(self, token: int, tag: _Tag) -> None:
        del self._tags[token]
        if self._token_of_ud.get(tag.user_data) == token:
            del self._token_of_ud[tag.user_data]

    def _retarget(self, view: u.Sqe, opcode: int) -> bool:
        """Make cancel/remove SQEs find requests whose user_data we swapped for a token.

        An ASYNC_CANCEL aimed at a BPF request is handled here: the request is
        cancelled (-ECANCELED) and the cancel SQE becomes a NOP that completes with 0.
        """
        if opcode == u.IORING_OP_ASYNC_CANCEL and view.cancel_flags & (
                u.IORING_ASYNC_CANCEL_FD | u.IORING_ASYNC_CANCEL_ANY | u.IORING_ASYNC_CANCEL_OP):
            return False
        target = view.addr
        if opcode == u.IORING_OP_ASYNC_CANCEL:
            for req in list(self._live):
                if req.user_data == target and req.ctx_buf is not None:
                    self._finish(req, -errno.ECANCELED)
                    self.stats["cancelled"] += 1
                    ud, flags = view.user_data, view.flags & (_LINK_FLAGS | u.IOSQE_CQE_SKIP_SUCCESS)
                    ctypes.memset(ctypes.addressof(view), 0, sizeof(u.Sqe))
                    view.opcode, view.fd, view.user_data, view.flags = u.IORING_OP_NOP, -1, ud, flags
                    return True
        token = self._token_of_ud.get(target)
        if token is not None:
            view.addr = token
        return False

    def _accept_bpf_sqe(self, addr: int) -> int:
        """The RFC's io_init_req + io_bpf_prep checks, then park a placeholder NOP."""
        view = u.Sqe.from_address(addr)
        user_data, idx = view.user_data, view.cq_idx
        self._gate_for = None
        if idx >= len(self.cqs):
            return -errno.EINVAL                      # io_init_req: fails on CQ 0
        err, slot = 0, None
        if self._setup_flags & (u.IORING_SETUP_IOPOLL | u.IORING_SETUP_SQPOLL):
            err = -errno.EINVAL
        elif view.flags & (u.IOSQE_FIXED_FILE | u.IOSQE_BUFFER_SELECT):
            err = -errno.EINVAL
        elif view.ioprio or view.len or view.cancel_flags or view.addr:
            err = -errno.EINVAL
        else:
            off = view.off
            if self.slots is None or off >= len(self.slots) or self.slots[off] is None:
                err = -errno.EFAULT
            else:
                slot = self.slots[off]
        req = BpfRequest(self, user_data, idx, slot, error=err,
                         skip_success=bool(view.flags & u.IOSQE_CQE_SKIP_SUCCESS))
        self._live.add(req)
        token = self._new_token(_Tag("bpf", user_data, idx, req))
        flags = view.flags & _LINK_FLAGS
        ctypes.memset(addr, 0, sizeof(u.Sqe))
        view.opcode, view.fd, view.flags, view.user_data = u.IORING_OP_NOP, -1, flags, token
        if flags & (u.IOSQE_IO_LINK | u.IOSQE_IO_HARDLINK):
            self._gate_for = req       # a gate SQE may follow (prep_bpf_linked)
        return 0

    def _accept_gate(self, addr: int, req: BpfRequest | None) -> int:
        """The gate after a linked BPF SQE: a 2-byte READ of a fresh pipe."""
        view = u.Sqe.from_address(addr)
        if req is None or req not in self._live:
            return -errno.EINVAL           # a gate must follow its linked BPF SQE
        r, w = os.pipe2(os.O_CLOEXEC)
        buf = Buffer(8)
        req.gate_w = w
        self._gates.extend((r, w))
        token = self._new_token(_Tag("gate", view.user_data, 0, req, keep=(r, buf)))
        flags = view.flags & _LINK_FLAGS
        ctypes.memset(addr, 0, sizeof(u.Sqe))
        view.opcode, view.fd, view.addr, view.len = u.IORING_OP_READ, r, buf.addr, 2
        view.off, view.flags, view.user_data = 0xFFFFFFFFFFFFFFFF, flags, token
        return 0

    def _open_gate(self, req: BpfRequest, res: int) -> None:
        """Let the successors go (2 bytes: a full read) or break the chain (1 byte: short)."""
        w, req.gate_w = req.gate_w, -1
        try:
            os.write(w, b"ok" if res >= 0 else b"x")
        except OSError:
            pass
        self._close_fd(w)

    def _close_fd(self, fd: int) -> None:
        if fd in self._gates:
            self._gates.remove(fd)
            try:
                os.close(fd)
            except OSError:
                pass

    # -- completion path -------------------------------------------------------------
    def _drain_kernel(self) -> int:
        """Move every CQE of the kernel's CQ to the CQ it belongs to."""
        head, tail = self._k_head.value, self._k_tail.value
        n = (tail - head) & 0xFFFFFFFF
        size = self.cqe_size
        for i in range(n):
            raw = ctypes.string_at(self._k_cqes + ((head + i) & self._k_mask) * size, size)
            ud = int.from_bytes(raw[:8], "little")
            tag = self._tags.get(ud)
            if tag is None:
                self.cqs[0].post_raw(raw)
                continue
            res = int.from_bytes(raw[8:12], "little", signed=True)
            flags = int.from_bytes(raw[12:16], "little")
            ctypes.c_uint64.from_address(self._k_cqes + ((head + i) & self._k_mask) * size
                                         ).value = tag.user_data
            if tag.kind == "route":
                if not flags & u.IORING_CQE_F_MORE:
                    self._drop_token(ud, tag)
                self.cqs[tag.cq_idx].post_raw(tag.user_data.to_bytes(8, "little") + raw[8:])
            elif tag.kind == "gate":            # never seen by the application
                self._drop_token(ud, tag)
                self._close_fd(tag.keep[0])
            else:
                self._drop_token(ud, tag)
                req = tag.request
                if req not in self._live:
                    continue
                if res < 0:
                    self._finish(req, res)        # e.g. -ECANCELED: a broken link chain
                elif req.error:
                    self._finish(req, req.error)
                else:
                    self._start(req)
        if n:
            self._k_advance(n)
            self.stats["kernel_cqes"] += n
        return n

    def _start(self, req: BpfRequest) -> None:
        # as large as the native engine's struct rq_req, zeroed: a JIT program whose helpers
        # are bound to the C twins finds eng == NULL there and is routed back to us
        req.ctx_buf = Buffer(CTX_BUF_SIZE, align=16)
        _CTX_OWNERS[req.ctx_addr] = req
        mem = getattr(req.slot.runtime, "mem", None)
        if mem is not None:
            try:
                req.regions.append(mem.add(req.ctx_addr, CTX_SIZE, True, "io_uring_bpf_ctx"))
            except ValueError:
                pass
        self._make_ready(req)

    def _make_ready(self, req: BpfRequest) -> None:
        if self.serialize and self._active is not None and self._active is not req:
            self._serial_queue.append(req)
        else:
            if self.serialize:
                self._active = req
            self._ready.append(req)

    def _finish(self, req: BpfRequest, res: int) -> None:
        """Complete a BPF request: its CQE goes to its own cq_idx (or nowhere if closed)."""
        if req not in self._live:
            return
        self._live.discard(req)
        if req in self._parked:
            self._parked.remove(req)
        try:
            self._ready.remove(req)
        except ValueError:
            pass
        try:
            self._serial_queue.remove(req)
        except ValueError:
            pass
        if req.ctx_buf is not None:
            _CTX_OWNERS.pop(req.ctx_addr, None)
            mem = getattr(req.slot.runtime, "mem", None) if req.slot else None
            for reg in req.regions:
                try:
                    mem.remove(reg)
                except (ValueError, AttributeError):
                    pass
            req.regions.clear()
        if not self._closed and not (req.skip_success and res >= 0):
            self.cqs[req.cq_idx].post(req.user_data, res, 0)
        if req.gate_w >= 0:
            self._open_gate(req, res)
        self.stats["completed"] += 1
        if self._active is req:
            self._active = None
            if self._serial_queue:
                nxt = self._serial_queue.popleft()
                self._active = nxt
                self._ready.append(nxt)

    def _run(self, req: BpfRequest) -> None:
        ctx = IoUringBpfCtx.from_address(req.ctx_addr)
        ctypes.memset(req.ctx_addr, 0, CTX_SIZE)      # fresh context on every run
        ctx.user_data = req.user_data
        req.runs += 1
        self.stats["runs"] += 1
        try:
            with route_escapes():             # a Ctrl-C that fired as a callback started
                req.slot.call(req.ctx_addr)
        except KeyboardInterrupt:
            self._ready.appendleft(req)               # not lost: runs again on next enter
            STOP.value = 0
            PENDING_INTERRUPTS.clear()
            raise
        except BpfRuntimeError as exc:                # the program failed (any engine)
            if PENDING_INTERRUPTS:                    # because of what was held: raise that
                self._ready.appendleft(req)
                raise_pending()
            self.errors.append(exc)
            self._finish(req, -errno.EFAULT)
            return
        if PENDING_INTERRUPTS:
            # Held during the run (an interrupt, another design's SQE filter failing under
            # a helper): raised as itself, as the native engine does; the request is kept.
            self._ready.appendleft(req)
        raise_pending()
        if req not in self._live:                     # cancelled from inside (unregister)
            return
        wait_nr, wait_idx = ctx.wait_nr, ctx.wait_idx
        if not wait_nr:
            self._finish(req, 0)
        elif wait_idx >= len(self.cqs):
            self._finish(req, -errno.EINVAL)
        else:
            req.wait_nr, req.wait_idx = wait_nr, wait_idx
            self._parked.append(req)

    def _wake_parked(self) -> None:
        if not self._parked:
            return
        still = []
        for req in self._parked:
            if self.cqs[req.wait_idx].ready() >= req.wait_nr:
                self._ready.append(req)
            else:
                still.append(req)
        self._parked = still

    def pump(self, max_runs: int | None = None) -> int:
        """Drain the kernel CQ, wake parked requests, run ready programs (bounded).

        Returns the number of program runs.  Re-entrant calls (a helper submitting SQEs
        while a program runs) only drain.
        """
        if self._closed:
            return 0
        if self._pumping:
            return 0
        budget = self.max_runs_per_enter if max_runs is None else max_runs
        self._pumping = True
        runs = 0
        me = threading.get_ident()
        self._waiters.append(me)        # close() from another thread waits for this pump
        try:
            while True:
                self._drain_kernel()
                self._wake_parked()
                if not self._ready or runs >= budget:
                    break
                self._run(self._ready.popleft())
                runs += 1
        finally:
            self._pumping = False
            self._waiters.remove(me)
        return runs

    @property
    def busy(self) -> bool:
        """True while programs are ready to run (the next pump will run them)."""
        return bool(self._ready)

    def _kernel_cq_pending(self) -> bool:
        return self._k_head.value != self._k_tail.value

    def tokens_in_flight(self) -> int:
        """Requests whose user_data is swapped for a token in the kernel right now."""
        return len(self._tags)

    @property
    def native(self) -> bool:
        """False: requests run from Python (see NativeRequestsEngine)."""
        return False

    # -- waiting --------------------------------------------------------------------
    def _kernel_wait(self, timeout: float | None) -> int:
        """Block in io_uring_enter for one kernel CQE (-ETIME on timeout, -EINTR on signal)."""
        return self._raw_enter(0, 1, u.IORING_ENTER_GETEVENTS, None, timeout)

    def wait(self, nr: int = 1, cq_idx: int = 0, timeout: float | None = None) -> int:
        """Wait until CQ ``cq_idx`` holds ``nr`` CQEs: 0, or -ETIME after ``timeout`` s.

        Programs run while we wait (bounded per round); between rounds Python sees
        signals, so Ctrl-C interrupts a wait whatever the programs do.
        """
        self._check_open()
        cq = self.cq(cq_idx)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._waiting():
            while True:
                self._check_closing()
                self.pump()
                if cq.ready() >= nr:
                    return 0
                if self.busy:
                    if deadline is not None and time.monotonic() >= deadline:
                        return -errno.ETIME
                    continue
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return -errno.ETIME
                if self._kernel_cq_pending():
                    continue
                # in slices: a close() from another thread must end a wait no CQE ends
                sliced = remaining is None or remaining > _WAIT_SLICE
                ret = self._kernel_wait(_WAIT_SLICE if sliced else remaining)
                if ret == -errno.ETIME and not sliced:
                    self.pump()
                    return 0 if cq.ready() >= nr else -errno.ETIME
                if ret < 0 and ret not in (-errno.EINTR, -errno.EAGAIN, -errno.EBUSY,
                                           -errno.ETIME):
                    raise OSError(-ret, f"io_uring_enter: {os.strerror(-ret)}")

    @contextlib.contextmanager
    def _waiting(self):
        """Marks this thread as inside :meth:`wait` (close() from another thread waits
        for it to leave before the ring memory goes)."""
        me = threading.get_ident()
        self._waiters.append(me)
        try:
            yield
        finally:
            self._waiters.remove(me)

    def _check_closing(self) -> None:
        if self._closing:
            raise RingClosedError("the ring was closed by another thread during wait()")

    def _end_waits(self) -> None:
        """close(): end the waits of other threads and return once they have left."""
        others = [t for t in self._waiters if t != threading.get_ident()]
        if not others:
            return
        self._closing = True
        deadline = time.monotonic() + 5.0
        while any(t != threading.get_ident() for t in self._waiters):
            if time.monotonic() > deadline:
                raise OSError(errno.EBUSY, "close(): another thread's wait() did not end")
            time.sleep(0.001)

    def wait_cqe(self, cq_idx: int = 0, timeout: float | None = None) -> u.Cqe:
        """The head CQE of CQ ``cq_idx`` (a view), waiting for it; TimeoutError on timeout."""
        if self.wait(1, cq_idx, timeout) == -errno.ETIME:
            raise TimeoutError(f"no CQE on CQ {cq_idx} within {timeout} s")
        return self.cqs[cq_idx].peek()

    def peek_cqe(self, cq_idx: int = 0) -> u.Cqe | None:
        """Run ready requests, then the next CQE of CQ ``cq_idx`` without consuming it, or None."""
        self._check_open()
        self.pump()
        return self.cq(cq_idx).peek()

    def cq_advance(self, n: int = 1, cq_idx: int = 0) -> None:
        """Consume ``n`` CQEs of CQ ``cq_idx``."""
        self.cq(cq_idx).advance(n)

    # -- helpers' side ---------------------------------------------------------------
    def queue_sqe(self, data: bytes) -> int:
        """iouring_queue_sqe: hand one SQE straight to the kernel (1 or -errno)."""
        ring = self.ring
        # The ring's submit runs every SQE filter, other designs' Python too: what one of
        # them raises is not the program's fault.  It is held and raised as itself once the
        # run is over (as the native engine's C -> Python submit does), on every engine.
        submit = barrier(ring.submit, _submit_failed)
        try:
            sqe = ring.get_sqe()
        except RuntimeError:                  # SubmissionQueueFull: flush, then retry
            if submit() < 0 or PENDING_INTERRUPTS:
                return -errno.EAGAIN
            try:
                sqe = ring.get_sqe()
            except RuntimeError:
                return -errno.EAGAIN
        addr = _sqe_address(sqe)
        size = getattr(ring, "sqe_size", 64)
        ctypes.memset(addr, 0, size)
        ctypes.memmove(addr, data, 64)
        err = guard_check_sqe(addr)         # names runtime-owned memory: a CQE of -EFAULT
        if err:
            deny_sqe(sqe, err)
        ret = submit()
        if isinstance(ret, int) and ret < 0:
            return ret
        return 1

    def emit_cqe(self, cq_idx: int, user_data: int, res: int, flags: int) -> int:
        """Helper backend: post a CQE on CQ ``cq_idx``; 0, -EINVAL for a bad CQ, -ENOMEM when
        full."""
        if cq_idx >= len(self.cqs):
            return -errno.EINVAL
        cq = self.cqs[cq_idx]
        if not cq.keep_overflow and cq.full():
            return -errno.ENOMEM
        cq.post(user_data, res, flags)
        return 0

    def reap_cqe(self, cq_idx: int) -> bytes | int:
        """Helper backend: the next CQE of CQ ``cq_idx`` (bytes), -EINVAL for a bad CQ, -ENOENT if
        empty."""
        if cq_idx >= len(self.cqs):
            return -errno.EINVAL
        raw = self.cqs[cq_idx].reap_raw()
        return -errno.ENOENT if raw is None else raw[:_CQE_SIZE]

    # -- teardown --------------------------------------------------------------------
    def _cancel_all(self, res: int, post: bool) -> None:
        for req in list(self._live):
            if not post:
                req.skip_success = True
            self._finish(req, res)
            self.stats["cancelled"] += 1

    def parked(self) -> list[BpfRequest]:
        """Requests waiting for a CQE (a copy)."""
        return list(self._parked)

    def nr_parked(self) -> int:
        """Number of requests waiting for a CQE."""
        return len(self._parked)

    def pending(self) -> int:
        """BPF requests not yet completed (parked, ready, or waiting for their NOP)."""
        return len(self._live)

    def close(self) -> None:
        """Cancel every BPF request (parked ones included) and free the CQs' state."""
        if self._closed:
            return
        self._end_waits()
        self._closed = True
        for req in list(self._live):
            self._finish(req, -errno.ECANCELED)
            self.stats["cancelled"] += 1
        if self.slots is not None:
            for slot in self.slots:
                if slot is not None:
                    self._hide_cqs(slot)
        # the kernel may still write a gate's buffer while it tears the ring down
        _GRAVEYARD.extend(t.keep for t in self._tags.values() if t.keep is not None)
        self._tags.clear()
        self._token_of_ud.clear()
        for fd in list(self._gates):
            self._close_fd(fd)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the ring is closed")


def _base_method(ring, name: str):
    """The uring.ring.Ring implementation of ``name`` bound to ``ring`` (not our override)."""
    if isinstance(ring, BaseRing):
        return getattr(BaseRing, name).__get__(ring)
    return getattr(ring, name)


def _sqe_address(sqe) -> int:
    if isinstance(sqe, int):
        return sqe
    if isinstance(sqe, ctypes.Structure):
        return ctypes.addressof(sqe)
    addr = getattr(sqe, "addr_of", None) or getattr(sqe, "address", None)
    if isinstance(addr, int):
        return addr
    raise TypeError(f"cannot find the address of SQE {sqe!r}: the requests design needs the "
                    "SQE in ring memory (a ctypes view or an address)")


# --- programs -----------------------------------------------------------------------------
def _is_iouring_program(program) -> bool:
    section = getattr(program, "section", "") or ""
    prog_type = getattr(program, "prog_type", "") or ""
    return section.startswith(("iouring/", "iouring.s/")) or section in ("iouring", "iouring.s") \
        or "iouring" in str(prog_type)


def _is_sleepable(program) -> bool:
    section = getattr(program, "section", "") or ""
    return bool(getattr(program, "sleepable", False)) or section.startswith("iouring.s")


def _make_slot(index: int, prog, engine: str = "interp", platform: Platform | None = None) -> ProgramSlot | None:
    """A slot for a LoadedProgram (``prog(ctx)``) or an ``isa.Program`` (run by ``engine``)."""
    if engine not in ("interp", "jit"):
        raise ValueError(f"engine must be 'interp' or 'jit', not {engine!r}")
    if isinstance(prog, isa.Program):
        if not _is_iouring_program(prog):
            return None
        runner = _interpret(prog, platform) if engine == "interp" else _jit(prog, platform)
        return ProgramSlot(index, prog, runner, _is_sleepable(prog), prog.name,
                           runner.runtime)
    program = getattr(prog, "program", None)
    if program is None or not callable(prog) or not _is_iouring_program(program):
        return None
    runtime = getattr(prog, "runtime", None)
    return ProgramSlot(index, prog, lambda ctx, _p=prog: _p(ctx), _is_sleepable(program),
                       getattr(program, "name", f"prog{index}"), runtime)


class _interpret:
    """Run an unloaded ``isa.Program`` (e.g. hand-assembled) on the reference interpreter."""

    def __init__(self, program, platform: Platform | None) -> None:
        self.program = program
        self.runtime = _helpers.Runtime(sleepable=_is_sleepable(program), platform=platform)
        self._interp = interp.Interpreter(program, self.runtime)

    def __call__(self, ctx: int) -> int:
        return self._interp.run(ctx)


class _jit:
    """JIT-compile an unloaded ``isa.Program`` (checked mode: it has not been verified)."""

    def __init__(self, program, platform: Platform | None) -> None:
        self.program = program
        self.runtime = _helpers.Runtime(sleepable=_is_sleepable(program), platform=platform)
        self._fn = engines.jit_module().compile(program, self.runtime, checked=True)

    def __call__(self, ctx: int) -> int:
        return self._fn(ctx)


# --- helpers (the RFC's ids) --------------------------------------------------------------
def _request_of(ctx: int) -> BpfRequest | None:
    return _CTX_OWNERS.get(ctx)


_libc = ctypes.CDLL(None, use_errno=True)
_vm_writev = _libc.process_vm_writev
_vm_writev.restype = ctypes.c_ssize_t
_vm_writev.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
                       ctypes.c_ulong, ctypes.c_ulong]


class _IoVec(Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def copy_to_user(uptr: int, src: int, size: int) -> int:
    """``copy_to_user`` for this process: 0 or -EFAULT, never a segfault."""
    if size == 0:
        return 0
    if not uptr or guard_check(uptr, size):   # the runtime's memory is not user memory
        return -errno.EFAULT
    local, remote = _IoVec(src, size), _IoVec(uptr, size)
    done = _vm_writev(os.getpid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    return 0 if done == size else -errno.EFAULT


# --- user-facing API ------------------------------------------------------------------------
def prep_bpf(sqe: u.Sqe, index: int, user_data: int = 0, cq_idx: int = 0) -> u.Sqe:
    """``io_uring_prep_bpf`` of the RFC's examples: a NOP turned into IORING_OP_BPF."""
    ctypes.memset(ctypes.addressof(sqe), 0, sizeof(u.Sqe))
    sqe.opcode = IORING_OP_BPF
    sqe.fd = -1
    sqe.off = index
    sqe.user_data = user_data & 0xFFFFFFFFFFFFFFFF
    sqe.cq_idx = cq_idx
    return sqe


def prep_bpf_gate(sqe: u.Sqe, flags: int = 0) -> u.Sqe:
    """The SQE after a BPF SQE that has IOSQE_IO_LINK: holds the rest of the chain until
    the program completes (``flags``: the link flags for what follows)."""
    ctypes.memset(ctypes.addressof(sqe), 0, sizeof(u.Sqe))
    sqe.opcode = IORING_OP_BPF_GATE
    sqe.fd = -1
    sqe.flags = flags & 0xFF
    return sqe


def set_cq_idx(sqe: u.Sqe, cq_idx: int) -> u.Sqe:
    """Send this request's CQE to CQ ``cq_idx`` (u16 at byte 48)."""
    if not 0 <= cq_idx <= 0xFFFF:
        raise ValueError("cq_idx is a u16")
    sqe.cq_idx = cq_idx
    return sqe
