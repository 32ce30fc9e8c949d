"""Ming Lei's ``IORING_OP_BPF`` (v3 "bpf_ext", plus v2's memcpy kfunc) on kernels without it.

The series (never merged) lets a BPF struct_ops ``uring_bpf_ops`` define an io_uring
operation: ``prep_fn`` runs when the SQE is submitted, ``issue_fn`` when the request is
issued (after the previous request of its link chain completed), ``fail_fn`` when it fails
and ``cleanup_fn`` once at the end.  Programs reach the request's buffers through
``struct io_bpf_buf_desc`` descriptors and kfuncs (a page iterator handing out dynptrs,
v2's ``uring_bpf_memcpy``) and set the CQE result with ``uring_bpf_set_result``.

No kernel runs these requests, so they never reach it.  A ring created with
``IORING_SETUP_BPF_EXT`` (:class:`OpsRing`) routes ``io_uring_enter`` through our hook,
which splits the submitted window at every ``IORING_OP_BPF`` SQE:

* all BPF SQEs of the window are prepped first (the kernel preps at submit time);
* the SQEs before a BPF op go to the kernel, followed by a *sentinel* NOP that takes the
  BPF op's place in its link chain but ends the chain.  The kernel decides whether the
  chain reached the BPF op (sentinel CQE 0) or broke (-ECANCELED) with its own rules;
* we wait for the sentinel CQE, run ``issue_fn`` and rewrite that CQE in place into the
  BPF op's CQE (its ``user_data``, its result), so the CQE sits where the kernel would
  have posted it;
* the rest of the chain is then submitted, or completed with -ECANCELED when the BPF op
  failed and was not HARDLINKed.

See docs/designs/ops.md for the mapping of v1-v3 and every deviation.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import struct
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ... import native
from ...callbacks import barrier, route_escapes

#: The C of the ops design (built by :func:`uringbpf.native.load` on first use).
NATIVE_SOURCE = Path(__file__).resolve().with_name("ops.c")
from ...bpf import progtypes as pt
from ...bpf.cc import compile_c, compile_cached
from ...bpf.object import BpfObject
from ...bpf.helpers import Arg, Ret
from ...bpf.platform import Design, Platform
from ...bpf.memory import BpfRuntimeError, Buffer
from ...uring import syscalls
from ...uring import uapi as u
from ...uring.ring import Ring, deny_sqe
from .. import kbuf as _kbuf   # KFIXED descriptors name buffers of the kbuf design's table

# --- UAPI of the series (v3 names; include/io_uring/bpf_ext.h) -------------------------
IORING_OP_BPF = u.IORING_OP_URING_CMD128 + 1          # 65: appended after URING_CMD128
IORING_SETUP_BPF_EXT = 1 << 21
IORING_FEAT_BPF = 1 << 18
IORING_BPF_OP_SHIFT = 24
IO_RING_MAX_BPF_OPS = 16
IO_BPF_BUF_USER, IO_BPF_BUF_FIXED, IO_BPF_BUF_VEC, IO_BPF_BUF_KFIXED, IO_BPF_BUF_REG_VEC = range(5)
ITER_DEST, ITER_SOURCE = 0, 1
IOU_ISSUE_SKIP_COMPLETE = -529                         # -EIOCBQUEUED
UIO_MAXIOV = 1024

STRUCT_OPS_TYPE = "uring_bpf_ops"
MEMBERS = ("prep_fn", "issue_fn", "fail_fn", "cleanup_fn")
PROG_TYPES = frozenset(f"struct_ops:{STRUCT_OPS_TYPE}.{m}" for m in MEMBERS)

#: struct uring_bpf_data, v3's final layout (after [PATCH v3 08/12]): req_data @0, ops @8,
#: opf @16, issue_flags @20, lock_depth @24, pdu @28 .. 64 (36 bytes; v2 had pdu @20, 44 B)
DATA_SIZE = 64
PDU_OFFSET = 28
PDU_SIZE = DATA_SIZE - PDU_OFFSET
#: sizeof(struct bpf_iter_uring_buf) in v3: __u64 __opaque[12]
ITER_SIZE = 96
_SLOT = 128                       # per request: data (64) + the SQE copy prep_fn sees (64)
_PAGE = 4096
_M32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1
_LINKS = u.IOSQE_IO_LINK | u.IOSQE_IO_HARDLINK
_TOKEN_BASE = 0xB9E0_0000_0000_0000
_ITER_MAGIC = 0x75726E67_62756669
_DYNPTR_VALID, _DYNPTR_RDONLY = 1 << 30, 1 << 31

_tokens = itertools.count(1)


def _s32(v: int) -> int:
    v &= _M32
    return v - (1 << 32) if v & 0x80000000 else v


def bpf_op_flags(op_id: int, prog_flags: int = 0) -> int:
    """``sqe->bpf_op_flags``: op id in the top 8 bits, 24 bits for the program."""
    if not 0 <= op_id <= 0xFF or not 0 <= prog_flags < (1 << 24):
        raise ValueError("op_id must be 0..255 and prog_flags 0..2**24-1")
    return (op_id << IORING_BPF_OP_SHIFT) | prog_flags


class BufDesc(ctypes.Structure):
    """``struct io_bpf_buf_desc``."""

    _fields_ = [("type", ctypes.c_uint8), ("reserved", ctypes.c_uint8),
                ("buf_index", ctypes.c_uint16), ("len", ctypes.c_uint32),
                ("addr", ctypes.c_uint64)]


def buf_descs(*descs: tuple) -> ctypes.Array:
    """An array of descriptors from ``(type, addr, len[, buf_index])`` tuples."""
    arr = (BufDesc * max(1, len(descs)))()
    for i, d in enumerate(descs):
        t, addr, length = d[0], d[1], d[2]
        arr[i].type, arr[i].addr, arr[i].len = t, addr, length
        arr[i].buf_index = d[3] if len(d) > 3 else 0
    return arr


# --- the ring ------------------------------------------------------------------------
class OpsRing(Ring):
    """A :class:`~uringbpf.uring.ring.Ring` that knows ``IORING_SETUP_BPF_EXT``.

    The flag is emulated (``emulated_flags``) and ``IORING_FEAT_BPF`` is reported in
    ``features``.  Without the flag, ``IORING_OP_BPF`` SQEs fail with ``-EOPNOTSUPP``
    (v2 and v3: ``io_uring_bpf_prep`` on a ring without the flag; v1 said -EACCES).  With it, ``io_uring_enter`` goes
    through :class:`OpsTable`; a loop struct_ops (Linux 7.1) cannot be attached
    (``set_enter_hook`` refuses with EINVAL: the two share a union in the kernel).
    """

    def __init__(self, entries: int = 64, cq_entries: int | None = None, flags: int = 0,
                 **kw: Any):
        bpf_ext = bool(flags & IORING_SETUP_BPF_EXT)
        flags &= ~IORING_SETUP_BPF_EXT
        if bpf_ext and flags & (u.IORING_SETUP_SQPOLL | u.IORING_SETUP_SQ_REWIND):
            raise ValueError("IORING_SETUP_BPF_EXT is not emulated with SQPOLL or SQ_REWIND")
        self._ops_installing = True
        super().__init__(entries, cq_entries, flags, **kw)
        self.ops: OpsTable | None = None
        self.features |= IORING_FEAT_BPF
        if bpf_ext:
            self.flags |= IORING_SETUP_BPF_EXT
            self.emulated_flags |= IORING_SETUP_BPF_EXT
            self.ops = OpsTable(self)
            Ring.set_enter_hook(self, self.ops.enter_hook)
        else:
            self.add_sqe_filter(_deny_without_bpf_ext)
        self._ops_installing = False

    def set_enter_hook(self, fn) -> None:
        """Refuse any hook but the ops table's own (EINVAL: the loop design cannot attach too)."""
        if self.__dict__.get("ops") is not None and fn is not self.ops.enter_hook:
            raise OSError(errno.EINVAL, "a ring with IORING_SETUP_BPF_EXT cannot take "
                                        "io_uring_bpf_ops (loop) at the same time")
        super().set_enter_hook(fn)

    def prep_bpf(self, op_id: int, descs=None, *, nr: int | None = None, prog_flags: int = 0,
                 user_data: int = 0, flags: int = 0):
        """An ``IORING_OP_BPF`` SQE: op ``op_id``, ``sqe->addr`` = descriptor array,
        ``sqe->len`` = count (``nr`` overrides it).  ``descs`` is a ctypes array (kept
        alive with the request), an address (int) or None."""
        if descs is None:
            addr, count, keep = 0, 0, None
        elif isinstance(descs, int):
            addr, count, keep = descs, nr or 0, None
        else:
            addr, count, keep = ctypes.addressof(descs), len(descs), descs
        if nr is not None:
            count = nr
        idx, sqe = self._sqe(IORING_OP_BPF, -1, addr, count, 0, user_data, flags)
        sqe.rw_flags = bpf_op_flags(op_id, prog_flags)
        self._keep(idx, keep)
        return sqe


def _deny_without_bpf_ext(sqe) -> int:
    return -errno.EOPNOTSUPP if sqe.opcode == IORING_OP_BPF else 0




def create_ring(entries: int = 64, cq_entries: int | None = None,
                flags: int = IORING_SETUP_BPF_EXT, **kw: Any) -> OpsRing:
    """``io_uring_queue_init`` with ``IORING_SETUP_BPF_EXT`` by default."""
    return OpsRing(entries, cq_entries, flags, **kw)


# --- per-ring table of 16 ops --------------------------------------------------------
@dataclass
class OpsSlot:
    """One registered ``struct uring_bpf_ops`` (what the struct_ops link holds)."""

    table: "OpsTable"
    op_id: int
    progs: dict
    py_inflight: int = 0
    closing: bool = False
    runtimes: list = field(default_factory=list)

    @property
    def inflight(self) -> int:
        """Requests between prep and their end, on either submit path."""
        n = self.py_inflight
        if self.table.nring:
            n += self.table._ninflight[self.op_id]
        return n

    def destroy(self) -> None:
        """Unregister: waits for the requests in flight (the series waits on ctx->bpf_wq)."""
        self.table.unregister(self)

    detach = destroy


@dataclass
class Request:
    """One IORING_OP_BPF request between prep and its CQE."""

    slot: OpsSlot | None
    index: int
    data: int
    user_data: int
    flags: int
    opf: int
    native: "_NReq | None" = None
    prepped: bool = False
    done: bool = False
    keep: list = field(default_factory=list)

    @property
    def result(self) -> int:
        """The CQE result, kept in the native request (``uring_bpf_set_result`` writes it)."""
        return self.native.result if self.native is not None else 0

    @result.setter
    def result(self, value: int) -> None:
        if self.native is not None:
            self.native.result = _s32(value)


class OpsTable:
    """The ring's 16 ``uring_bpf_ops`` slots and its submit path (the enter hook)."""

    def __init__(self, ring: OpsRing):
        self._ring = weakref.ref(ring)
        self.slots: list[OpsSlot | None] = [None] * IO_RING_MAX_BPF_OPS
        self.cond = threading.Condition(threading.RLock())
        self.nreq = max(16, ring.sq_entries)
        self.slab = Buffer(64 + self.nreq * _SLOT, align=64)
        self.args_addr = self.slab.addr
        self.free = list(range(self.nreq))
        lib = _lib()
        self.native = lib.ops_tab_new(self.slab.addr, self.nreq)
        if not self.native:
            raise OSError(errno.ENOMEM, "no native request table for IORING_OP_BPF")
        self.nreqs = [_NReq.from_address(lib.ops_tab_req(self.native, i))
                      for i in range(self.nreq)]
        self.errors: list[BaseException] = []
        self._pystats = {"prep": 0, "issue": 0, "fail": 0, "cleanup": 0, "sentinels": 0}
        # The native submit path (ops_enter in ops.c): used while every program of every
        # slot is verified JIT code (native_path); the interpreter keeps the Python path.
        self.nring = 0
        if ring.backend == "kernel":
            geometry = (ctypes.c_uint32 * 6)(ring.sq_mask, ring.sq_entries, ring.sqe_size,
                                             ring.cq_mask, ring.cq_entries, ring.cqe_size)
            self._table_id = next(_tokens)
            _native_tables[self._table_id] = self
            self.nring = lib.ops_ring_new(
                self.native, ring.fd, self.args_addr, self._table_id, ring.sq_head_addr,
                ring.sq_tail_addr, ring.sq_array_addr, ring.kernel_sqes_addr,
                ring.cq_head_addr, ring.cq_tail_addr, ring.cqes_addr, ctypes.addressof(geometry))
            if not self.nring:
                raise OSError(errno.ENOMEM, "no native submit path for IORING_OP_BPF")
            self._nstatus = (ctypes.c_int64 * 2).from_address(lib.ops_ring_status(self.nring))
            self._ninflight = (ctypes.c_uint64 * IO_RING_MAX_BPF_OPS).from_address(
                lib.ops_ring_status(self.nring) + 16)
            self._fixed_dirty = True
            ring.add_register_hook(self._on_register)
            # ops_enter holds raw pointers into these mappings: they stay mapped for as long
            # as the table (and so any running ops_enter) exists, not just the Ring object
            self._mappings = (ring._be.sq_region, ring._be.cq_region, ring._be.sqe_region)
        #: threads inside enter_hook right now (Ring.close() from another thread waits)
        self._entering: list[int] = []
        ring.add_close_hook(self._on_ring_close)
        weakref.finalize(self, _free_native, lib, self.native, self.nring)
        #: True while ops_enter (C) runs this ring's submit path (see _update_native)
        self.native_path = False
        self._native_jits: list = []
        #: set False to force the Python path (tests compare the two on the same inputs)
        self.allow_native = True

    @property
    def stats(self) -> dict:
        """Callback and sentinel counts, both submit paths together."""
        out = dict(self._pystats)
        if self.nring:
            arr = (ctypes.c_uint64 * 5)()
            _lib().ops_ring_stats(self.nring, ctypes.addressof(arr))
            for k, v in zip(("prep", "issue", "fail", "cleanup", "sentinels"), arr):
                out[k] += v
        return out

    def path_stats(self) -> dict:
        """The callback and sentinel counts per submit path: ``{"native": {...},
        "python": {...}}`` (``stats`` is their sum)."""
        nat = dict.fromkeys(self._pystats, 0)
        if self.nring:
            arr = (ctypes.c_uint64 * 5)()
            _lib().ops_ring_stats(self.nring, ctypes.addressof(arr))
            nat = dict(zip(("prep", "issue", "fail", "cleanup", "sentinels"), arr))
        return {"native": nat, "python": dict(self._pystats)}

    def _on_register(self, ring, opcode: int, arg: int, nr_args: int) -> None:
        """Any io_uring_register may change the registered buffers: resync the C mirror
        before the next native submit (the hook runs before the kernel call)."""
        self._fixed_dirty = True

    def _sync_fixed(self, ring) -> None:
        lib = _lib()
        lib.ops_ring_set_fixed(self.nring, -1, 0, 0, 0)
        for i in range(_NFIXED):
            reg = ring.fixed_buffer(i)
            if reg is not None:
                lib.ops_ring_set_fixed(self.nring, i, reg[0], reg[1], 1)
        self._fixed_dirty = False

    def _update_native(self) -> None:
        """Push the slots to C and decide the path: native iff every program is unchecked
        JIT code (its entry runs from C; the interpreter and checked code need Python)."""
        if not self.nring:
            return
        lib = _lib()
        ok = True
        self._native_jits = []
        for op_id, slot in enumerate(self.slots):
            lib.ops_ring_set_slot(self.nring, op_id, slot is not None,
                                  bool(slot and slot.closing), id(slot) & _U64 if slot else 0)
            for which, m in enumerate(MEMBERS):
                p = slot.progs.get(m) if slot is not None else None
                jit = getattr(p, "jit", None) if p is not None else None
                if p is not None and (getattr(p, "engine", None) != "jit" or jit is None
                                      or jit.checked):
                    ok = False
                if jit is not None:
                    self._native_jits.append(jit)
                lib.ops_ring_set_prog(self.nring, op_id, which,
                                      p.entry_address if jit is not None else 0,
                                      jit.error_address if jit is not None else 0)
        self.native_path = ok and self.allow_native

    def _take_native_errors(self) -> None:
        """Errors the native path saved (first per program per enter) -> self.errors."""
        lib = _lib()
        out = (ctypes.c_uint64 * 5)()
        for op_id, slot in enumerate(self.slots):
            if slot is None:
                continue
            for which, m in enumerate(MEMBERS):
                p = slot.progs.get(m)
                if p is None or not lib.ops_ring_take_error(self.nring, op_id, which,
                                                            ctypes.addressof(out)):
                    continue
                ctx = (ctypes.c_uint64 * 5).from_address(p.jit.error_address)
                ctx[:] = out[:]
                err = p.take_error()
                if err is not None and not isinstance(err, Exception):
                    _HELD.append(err)        # a Ctrl-C in a Python helper: not the program's
                    continue
                self.errors.append(err if err is not None else BpfRuntimeError(
                    f"{p.name}: stopped with error {out[0]} at insn {out[1]}"))
        self._nstatus[0] = 0

    @property
    def ring(self):
        """The ring itself (a weak reference: the ring owns the table)."""
        return self._ring()

    # --- registration ------------------------------------------------------------------
    def register(self, op_id: int, progs: dict) -> OpsSlot:
        """Install ops ``op_id`` (EINVAL: id >= 16 or a sleepable callback; EBUSY: taken)."""
        if not 0 <= op_id < IO_RING_MAX_BPF_OPS:
            raise OSError(errno.EINVAL, f"uring_bpf_ops id {op_id} is not below "
                                        f"{IO_RING_MAX_BPF_OPS}")
        for name, p in progs.items():
            if p is not None and getattr(getattr(p, "program", None), "sleepable", False):
                raise OSError(errno.EINVAL, f"uring_bpf_ops.{name} must not be sleepable")
        with self.cond:
            if self.slots[op_id] is not None:
                raise OSError(errno.EBUSY, f"uring_bpf_ops slot {op_id} is taken")
            slot = OpsSlot(self, op_id, {m: progs.get(m) for m in MEMBERS})
            for p in slot.progs.values():
                if p is not None:
                    self._allow(slot, p.runtime)
            self.slots[op_id] = slot
            self._update_native()
        return slot

    def _allow(self, slot: OpsSlot, runtime) -> None:
        mem = runtime.mem
        if mem.find(self.slab.addr, self.slab.size) is None:
            mem.add(self.slab.addr, self.slab.size, True, "uring_bpf_data")
            slot.runtimes.append(runtime)

    def unregister(self, slot: OpsSlot) -> None:
        """Remove ``slot`` once its requests in flight are done (waits, like ctx->bpf_wq)."""
        with self.cond:
            if self.slots[slot.op_id] is not slot:
                return
            slot.closing = True
            while slot.inflight:
                self.cond.wait()
            self.slots[slot.op_id] = None
            self._update_native()
            for rt in slot.runtimes:
                r = rt.mem.find(self.slab.addr, self.slab.size)
                if r is not None and not any(s is not None and rt in s.runtimes
                                             for s in self.slots):
                    rt.mem.remove(r)

    # --- running callbacks ------------------------------------------------------------
    def _call(self, prog, *args: int) -> int:
        buf = (ctypes.c_uint64 * 2).from_address(self.args_addr)
        for i, a in enumerate(args):
            buf[i] = a & _U64
        try:
            r = prog(self.args_addr)
        except BpfRuntimeError as exc:
            self.errors.append(exc)
            return -errno.EFAULT
        except KeyboardInterrupt as exc:
            # As on the native path: the window must finish (requests in flight, slots'
            # counts), so the interrupt is raised once the enter is over; this call fails.
            _HELD.append(exc)
            return -errno.EFAULT
        err = prog.take_error() if hasattr(prog, "take_error") else None
        if err is not None:
            self.errors.append(err)
            return -errno.EFAULT
        return _s32(r)

    def _prep(self, sqe: bytes) -> tuple[Request | None, int]:
        """io_uring_bpf_prep: (request, 0) or (None, -errno)."""
        opf = struct.unpack_from("<I", sqe, 28)[0]
        ud = struct.unpack_from("<Q", sqe, 32)[0]
        op_id = opf >> IORING_BPF_OP_SHIFT
        if op_id >= IO_RING_MAX_BPF_OPS:
            return None, -errno.EINVAL          # v3: an id the table cannot hold
        with self.cond:
            slot = self.slots[op_id]
            if slot is None or slot.closing or slot.progs.get("prep_fn") is None:
                return None, -errno.EOPNOTSUPP
            if not self.free:
                return None, -errno.ENOMEM
            index = self.free.pop()
            slot.py_inflight += 1
        data = self.slab.addr + 64 + index * _SLOT
        ctypes.memset(data, 0, DATA_SIZE)
        ctypes.memmove(data + DATA_SIZE, sqe, 64)
        ctypes.c_uint64.from_address(data).value = data
        ctypes.c_uint64.from_address(data + 8).value = id(slot) & _U64
        ctypes.c_uint32.from_address(data + 16).value = opf
        nreq = self.nreqs[index]
        req = Request(slot, index, data, ud, sqe[1], opf, nreq)
        _prep_descs(self.ring, req, sqe)
        nreq.data, nreq.result, nreq.live = data, 0, 1
        _by_data[data] = req
        self._pystats["prep"] += 1
        ret = self._call(slot.progs["prep_fn"], data, data + DATA_SIZE)
        if ret:
            self._release(req)
            return None, ret if ret < 0 else -errno.EINVAL
        req.prepped = True
        return req, 0

    def _issue(self, req: Request) -> int:
        slot = req.slot
        self._pystats["issue"] += 1
        issue = slot.progs.get("issue_fn")
        # v3: ops without issue_fn complete the request with the result as it stands (0)
        ret = self._call(issue, req.data) if issue is not None else 0
        _close_iters(req)
        if ret == IOU_ISSUE_SKIP_COMPLETE or ret > 0:
            ret = -errno.EINVAL
        if ret < 0:
            req.result = ret
            self._fail(req)
        return req.result

    def _fail(self, req: Request) -> None:
        fail = req.slot.progs.get("fail_fn") if req.slot else None
        if fail is not None:
            self._pystats["fail"] += 1
            self._call(fail, req.data)
            _close_iters(req)

    def _finish(self, req: Request) -> None:
        """cleanup_fn once (only after a successful prep, REQ_F_NEED_CLEANUP), then free."""
        if req.done:
            return
        req.done = True
        cleanup = req.slot.progs.get("cleanup_fn") if req.slot else None
        if req.prepped and cleanup is not None:
            self._pystats["cleanup"] += 1
            self._call(cleanup, req.data)
            _close_iters(req)
        self._release(req)

    def _cancel(self, req: Request) -> None:
        req.result = -errno.ECANCELED
        self._fail(req)
        self._finish(req)

    def _release(self, req: Request) -> None:
        if req.native is not None:
            req.native.live, req.native.ndesc, req.native.descs = 0, 0, 0
        _by_data.pop(req.data, None)
        req.keep.clear()
        with self.cond:
            self.free.append(req.index)
            if req.slot is not None:
                req.slot.py_inflight -= 1
            self.cond.notify_all()

    # --- the submit path ---------------------------------------------------------------
    def _on_ring_close(self, ring) -> None:
        """Ring.close() while another thread is inside this ring's enter (it may wait there
        for the kernel part of a chain): cancel everything in flight so that wait ends,
        and return only once the enter has; refuse (EBUSY) if it does not end.

        Unmapping under a running ops_enter made it write SQEs into memory Python had
        reused, and enter an fd number that could name another ring by then."""
        me = threading.get_ident()
        if me in self._entering:
            raise OSError(errno.EBUSY, "Ring.close() from inside the ring's own "
                                       "io_uring_enter (an IORING_OP_BPF callback)")
        if not self._entering:
            return
        reg = _SyncCancelReg(fd=-1, flags=_CANCEL_EVERYTHING)
        reg.timeout_sec = reg.timeout_nsec = -1
        deadline = time.monotonic() + _CLOSE_WAIT
        while self._entering and time.monotonic() < deadline:
            # again every round: the enter may have queued more of its batch meanwhile
            ring.register(u.IORING_REGISTER_SYNC_CANCEL, ctypes.addressof(reg), 1)
            end = time.monotonic() + 0.05
            while self._entering and time.monotonic() < end:
                time.sleep(0.001)
        if self._entering:
            raise OSError(errno.EBUSY, "Ring.close(): another thread is inside this ring's "
                                       "io_uring_enter and its requests could not be "
                                       "cancelled; close it after that enter returned")

    def enter_hook(self, ring, to_submit: int, min_complete: int, flags: int) -> int:
        """io_uring_enter of a BPF_EXT ring: the native path (ops_enter in C) or the Python one."""
        me = threading.get_ident()
        self._entering.append(me)
        try:
            return self._enter(ring, to_submit, min_complete, flags)
        finally:
            self._entering.remove(me)

    def _enter(self, ring, to_submit: int, min_complete: int, flags: int) -> int:
        if self.native_path and any(j._closed for j in self._native_jits):
            # a program's JIT code was closed while attached: C must not call into it; the
            # Python path refuses the run (-EFAULT, the error in self.errors)
            self.native_path = False
        if self.native_path and self.allow_native and not ring.sqe_filters:
            if self._fixed_dirty:
                self._sync_fixed(ring)
            with self.cond, route_escapes():   # a Ctrl-C that fired as a callback started
                ret = _enter(self.nring, to_submit, min_complete, flags)
            st = self._nstatus
            if st[0]:
                self._take_native_errors()
            _raise_held()
            if st[1]:
                code = -st[1]
                raise OSError(code, "IORING_OP_BPF submit path: " + (
                    "the CQ is full while an IORING_OP_BPF request waits for its chain: "
                    "reap CQEs or size the CQ larger" if code == errno.EBUSY
                    else os.strerror(code)))
            return ret
        if to_submit <= 0:
            return ring.raw_enter(to_submit, min_complete, flags)
        sq = _SqAccess(ring)
        head, tail = sq.head(), sq.tail()
        n = min(to_submit, (tail - head) & _M32)
        sqes = [sq.read(head + i) for i in range(n)]
        if not any(s[0] == IORING_OP_BPF for s in sqes):
            return ring.raw_enter(to_submit, min_complete, flags)
        with self.cond:
            ret = _Window(self, ring, sq, head, tail, sqes).run(min_complete, flags)
        _raise_held()
        return ret


#: how long Ring.close() waits for an enter running on another thread to end
_CLOSE_WAIT = 5.0
_CANCEL_EVERYTHING = u.IORING_ASYNC_CANCEL_ANY | u.IORING_ASYNC_CANCEL_ALL


class _SyncCancelReg(ctypes.Structure):
    """struct io_uring_sync_cancel_reg (IORING_REGISTER_SYNC_CANCEL, Linux 6.0)."""

    _fields_ = [("addr", ctypes.c_uint64), ("fd", ctypes.c_int32), ("flags", ctypes.c_uint32),
                ("timeout_sec", ctypes.c_int64), ("timeout_nsec", ctypes.c_int64),
                ("opcode", ctypes.c_uint8), ("pad", ctypes.c_uint8 * 7),
                ("pad2", ctypes.c_uint64 * 3)]


class _SqAccess:
    """Raw access to the kernel SQ of a (non-REWIND) ring: what native drivers do."""

    def __init__(self, ring):
        self.ring = ring
        self.mask = ring.sq_mask
        self.size = ring.sqe_size
        self.ksqes = ring.kernel_sqes_addr
        self.array = ring.sq_array_addr
        self._head = ctypes.c_uint32.from_address(ring.sq_head_addr)
        self._tail = ctypes.c_uint32.from_address(ring.sq_tail_addr)

    def head(self) -> int:
        return self._head.value

    def tail(self) -> int:
        return self._tail.value

    def set_tail(self, v: int) -> None:
        self._tail.value = v & _M32

    def _slot(self, pos: int) -> int:
        p = pos & self.mask
        if self.array:
            return ctypes.c_uint32.from_address(self.array + 4 * p).value
        return p

    def read(self, pos: int) -> bytes:
        return ctypes.string_at(self.ksqes + self._slot(pos) * self.size, self.size)

    def write(self, pos: int, sqe: bytes) -> None:
        p = pos & self.mask
        ctypes.memmove(self.ksqes + p * self.size, sqe, len(sqe))
        if self.array:
            ctypes.c_uint32.from_address(self.array + 4 * p).value = p


def _nop(sqe_size: int, user_data: int, flags: int, inject: int | None = None) -> bytes:
    """The bytes of a NOP SQE (``deny_sqe``'s rewrite) with these flags and user_data."""
    b = (ctypes.c_uint8 * sqe_size)()
    sqe = u.Sqe.from_buffer(b)
    sqe.user_data, sqe.flags = user_data, flags & 0xFF
    deny_sqe(sqe, inject, keep_flags=0xFF, size=sqe_size)
    return bytes(b)


class _Window:
    """One io_uring_enter's worth of SQEs containing BPF ops (see the module docstring)."""

    def __init__(self, table: OpsTable, ring, sq: _SqAccess, head: int, tail: int, sqes):
        self.t, self.ring, self.sq = table, ring, sq
        self.head, self.orig_tail = head, tail
        self.pos = head                    # next SQ position we write to
        self.items: list[list] = []        # [kind, payload, flags, user_data]
        for s in sqes:
            self.items.append(["b" if s[0] == IORING_OP_BPF else "k", s, s[1],
                               struct.unpack_from("<Q", s, 32)[0]])
        self.chain = []
        cid = 0
        for i, it in enumerate(self.items):
            self.chain.append(cid)
            if not it[2] & _LINKS:
                cid += 1

    def _chain_members(self, i: int) -> list[int]:
        return [j for j in range(len(self.items)) if self.chain[j] == self.chain[i]]

    def _cancel_item(self, j: int, silent: bool = False, res: int = -errno.ECANCELED) -> None:
        it = self.items[j]
        if it[0] == "b" and isinstance(it[1], Request):
            self.t._cancel(it[1])
        size = self.sq.size
        if silent:
            it[:] = ["k", _nop(size, it[3], u.IOSQE_CQE_SKIP_SUCCESS), 0, it[3]]
        else:
            it[:] = ["k", _nop(size, it[3], 0, res), 0, it[3]]

    def _prep_all(self) -> None:
        failed_chains = {}
        for i, it in enumerate(self.items):
            if it[0] != "b":
                continue
            req, err = self.t._prep(it[1])
            if err:
                failed_chains.setdefault(self.chain[i], []).append((i, err))
                it[1] = None
            else:
                it[1] = req
        for cid, fails in failed_chains.items():
            errs = dict(fails)
            for j in range(len(self.items)):
                if self.chain[j] == cid:
                    self._cancel_item(j, res=errs.get(j, -errno.ECANCELED))

    def _push(self, items, min_complete: int = 0, flags: int = 0) -> int:
        for k, it in enumerate(items):
            self.sq.write(self.pos + k, it)
        self.sq.set_tail(self.pos + len(items))
        ret = self.ring.raw_enter(len(items), min_complete, flags)
        self.pos = (self.pos + max(ret, 0)) & _M32
        if ret != len(items):
            self.sq.set_tail(self.pos)
            if ret < 0:
                raise _Abort(ret)
            raise _Abort(-errno.EAGAIN)
        return ret

    def run(self, min_complete: int, flags: int) -> int:
        try:
            return self._run(min_complete, flags)
        except _Abort as a:
            # what was not consumed stays dropped; BPF ops among it are cancelled
            for it in self.items:
                if it[0] == "b" and isinstance(it[1], Request) and not it[1].done:
                    self.t._cancel(it[1])
            consumed = (self.pos - self.head) & _M32
            return consumed if consumed else a.ret

    def _run(self, min_complete: int, flags: int) -> int:
        self._prep_all()
        i, n = 0, len(self.items)
        waited = False
        while i < n:
            b = next((j for j in range(i, n) if self.items[j][0] == "b"), None)
            if b is None:
                waited = True
                self._push([it[1] for it in self.items[i:]], min_complete, flags)
                break
            req = self.items[b][1]
            token = _TOKEN_BASE | next(_tokens)
            sentinel = _nop(self.sq.size, token, req.flags & u.IOSQE_IO_DRAIN)
            skip = {}
            batch = []
            for j in range(i, b):
                it = self.items[j]
                sqe = it[1]
                if it[2] & u.IOSQE_CQE_SKIP_SUCCESS and self.chain[j] == self.chain[b]:
                    tok = _TOKEN_BASE | next(_tokens)
                    skip[tok] = (it[3], it[2])
                    sqe = sqe[:32] + struct.pack("<Q", tok) + sqe[40:]
                batch.append(sqe)
            self.t._pystats["sentinels"] += 1
            self._push(batch + [sentinel])
            state, cqe = _wait_token(self.ring, token, skip)
            members = [j for j in self._chain_members(b) if j > b]
            if state == "silent":
                self.t._cancel(req)
                for j in members:
                    self._cancel_item(j, silent=True)
            elif cqe.res == -errno.ECANCELED:
                cqe.user_data = req.user_data
                self.t._cancel(req)
                for j in members:
                    self._cancel_item(j)
            else:
                res = self.t._issue(req)
                cqe.res = res
                cqe.flags = 0
                cqe.user_data = req.user_data
                self.t._finish(req)
                if res < 0 and req.flags & u.IOSQE_IO_LINK and not req.flags & u.IOSQE_IO_HARDLINK:
                    for j in members:
                        self._cancel_item(j)
            i = b + 1
        if not waited and flags & u.IORING_ENTER_GETEVENTS and min_complete:
            self.ring.raw_enter(0, min_complete, flags)
        if self.orig_tail != self.pos:
            self.sq.set_tail(self.orig_tail)
        return (self.pos - self.head) & _M32


class _Abort(Exception):
    def __init__(self, ret: int):
        super().__init__(ret)
        self.ret = ret


class _Cqe(ctypes.Structure):
    _fields_ = [("user_data", ctypes.c_uint64), ("res", ctypes.c_int32),
                ("flags", ctypes.c_uint32)]


def _wait_token(ring, token: int, skip: dict):
    """Wait until the sentinel's CQE is in the CQ; ('done', cqe) or ('silent', None).

    CQEs of tokenised CQE_SKIP_SUCCESS members get their user_data back as they appear;
    such a CQE means the member failed, and a failed LINK (not HARDLINK) member with
    CQE_SKIP_SUCCESS cancels the rest of its chain silently (no sentinel CQE)."""
    head_w = ctypes.c_uint32.from_address(ring.cq_head_addr)
    tail_w = ctypes.c_uint32.from_address(ring.cq_tail_addr)
    seen = None
    while True:
        head, tail = head_w.value, tail_w.value
        silent = False
        pos = head if seen is None else seen
        while pos != tail:
            c = _Cqe.from_address(ring.cqes_addr + (pos & ring.cq_mask) * ring.cqe_size)
            if c.user_data == token:
                return "done", c
            orig = skip.pop(c.user_data, None)
            if orig is not None:
                c.user_data = orig[0]
                if orig[1] & u.IOSQE_IO_LINK and not orig[1] & u.IOSQE_IO_HARDLINK:
                    silent = True
            pos = (pos + 1) & _M32
        seen = tail
        if silent:
            return "silent", None
        ready = (tail - head) & _M32
        if ready >= ring.cq_entries:
            raise OSError(errno.EBUSY, "the CQ is full while an IORING_OP_BPF request waits "
                                       "for its chain: reap CQEs or size the CQ larger")
        ret = ring.raw_enter(0, ready + 1, u.IORING_ENTER_GETEVENTS)
        if ret < 0 and ret != -errno.EINTR:
            raise OSError(-ret, "io_uring_enter while waiting for a BPF op's chain")


# --- attaching (struct_ops and direct) -------------------------------------------------
def _table_of(ring) -> OpsTable:
    table = getattr(ring, "ops", None) if isinstance(ring, OpsRing) else None
    if not isinstance(table, OpsTable):
        raise OSError(errno.EINVAL, "the ring was not set up with IORING_SETUP_BPF_EXT")
    # (io_uring_bpf_ops of the loop design cannot be attached as well: OpsRing.set_enter_hook
    # refuses any enter hook but its own)
    return table


def register_ops(ring, op_id: int, prep_fn=None, issue_fn=None, fail_fn=None,
                 cleanup_fn=None) -> OpsSlot:
    """Install ops ``op_id`` on ``ring`` from loaded programs (what the struct_ops reg() does).

    OSError EINVAL: not a BPF_EXT ring, id >= 16, a sleepable callback, loop ops attached;
    EBUSY: slot taken.  ``slot.destroy()`` unregisters (waiting for requests in flight).
    """
    return _table_of(ring).register(op_id, {"prep_fn": prep_fn, "issue_fn": issue_fn,
                                            "fail_fn": fail_fn, "cleanup_fn": cleanup_fn})


def _ring_from_fd(fd: int):
    return Ring.by_fd(fd)


def _attach_struct_ops(obj, st_map) -> OpsSlot:
    ring = _ring_from_fd(int(st_map.get("ring_fd")))
    return register_ops(ring, int(st_map.get("id")), **{m: st_map.programs.get(m) for m in MEMBERS})


# --- kfuncs -------------------------------------------------------------------------
_by_data: dict[int, Request] = {}
#: iterator id -> [runtime, request data, region]: the interpreter's view of the page an
#: iterator handed out (added to the run's address space, removed on next/destroy)
_iter_regions: dict[int, list] = {}


def _req(addr: int) -> Request | None:
    return _by_data.get(addr)


def kf_set_result(rt, r1, r2, r3, r4, r5) -> int:
    """``uring_bpf_set_result``: the interpreter's entry calls the JIT's C twin."""
    return _lib().ops_set_result(r1, r2, 0, 0, 0)

def _read_desc(rt, addr: int) -> bytes | None:
    if rt is not None and rt.mem.find(addr, 16) is None:
        return syscalls.read_user(addr, 16)
    return ctypes.string_at(addr, 16) if addr else None


def _registered(ring, index: int):
    return ring.fixed_buffer(index)


def _iovecs(addr: int, nr: int):
    if nr > UIO_MAXIOV:
        return -errno.EINVAL
    raw = syscalls.read_user(addr, 16 * nr)
    if raw is None:
        return -errno.EFAULT
    return [struct.unpack_from("<QQ", raw, 16 * i) for i in range(nr)]


def resolve_desc(ring, desc: bytes, direction: int):
    """Segments ``[(addr, len, checked)]`` a descriptor names, or -errno.

    ``checked`` is True when the memory is known valid (registered buffers); user
    memory is probed page by page as it is used, like the kernel's page pinning."""
    t, reserved, index, length, addr = struct.unpack("<BBHIQ", desc)
    if reserved:
        return -errno.EINVAL
    if t == IO_BPF_BUF_USER:
        return [(addr, length, False)]
    if t == IO_BPF_BUF_VEC:
        vecs = _iovecs(addr, length)
        return vecs if isinstance(vecs, int) else [(a, n, False) for a, n in vecs]
    if t == IO_BPF_BUF_FIXED:
        reg = _registered(ring, index)
        if reg is None or addr < reg[0] or addr + length > reg[0] + reg[1]:
            return -errno.EFAULT
        return [(addr, length, True)]
    if t == IO_BPF_BUF_REG_VEC:
        reg = _registered(ring, index)
        if reg is None:
            return -errno.EFAULT
        vecs = _iovecs(addr, length)
        if isinstance(vecs, int):
            return vecs
        for a, n in vecs:
            if a < reg[0] or a + n > reg[0] + reg[1]:
                return -errno.EFAULT
        return [(a, n, True) for a, n in vecs]
    if t == IO_BPF_BUF_KFIXED:
        base = _kfixed_base(ring, index, direction)
        if isinstance(base, int) or addr + length > base[1]:
            return -errno.EFAULT
        return [(base[0] + addr, length, True)]
    return -errno.EINVAL


def _kfixed_base(ring, index: int, direction: int):
    """``(addr, len)`` of the buffer a KFIXED descriptor's index names, or -errno: a kernel
    buffer of the kbuf design's table if the ring has one (its direction checked), else a
    registered buffer."""
    try:
        found = _kbuf.kbuf_table(ring).lookup(index)
    except LookupError:
        found = None
    if found is not None:
        kaddr, klen, kdir = found
        need = _kbuf.KBUF_DIR_DEST if direction == ITER_DEST else _kbuf.KBUF_DIR_SOURCE
        if not kdir & need:
            return -errno.EFAULT
        return (kaddr, klen)
    base = _registered(ring, index)
    return -errno.EFAULT if base is None else base


# --- native request state (mirrors of designs/ops/ops.c) ------------------------------------
class _Seg(ctypes.Structure):
    """``struct ops_seg``: one piece of a buffer; ``checked`` = registered (known valid)."""

    _fields_ = [("addr", ctypes.c_uint64), ("len", ctypes.c_uint64),
                ("checked", ctypes.c_uint64)]


class _RDesc(ctypes.Structure):
    """``struct ops_rdesc``: a descriptor resolved for one direction (segments or -errno)."""

    _fields_ = [("desc", ctypes.c_uint8 * 16), ("dir", ctypes.c_int32),
                ("err", ctypes.c_int32), ("nseg", ctypes.c_uint64), ("segs", ctypes.c_uint64)]


class _NReq(ctypes.Structure):
    """``struct ops_req``: what the C kfuncs know of a live request."""

    _fields_ = [("data", ctypes.c_uint64), ("result", ctypes.c_int32),
                ("live", ctypes.c_uint32), ("ndesc", ctypes.c_uint64),
                ("descs", ctypes.c_uint64)]


#: descriptors of one SQE resolved at prep (more are resolved on demand by the callback)
_MAX_PREP_DESCS = 16


_RDESC_FMT = struct.Struct("<16siiQQ")       # struct ops_rdesc, packed in one go
_SEG_FMT = struct.Struct("<QQQ")             # struct ops_seg


def _rdesc_bytes(ring, desc: bytes, direction: int, keep: list) -> bytes:
    """One ``struct ops_rdesc``: the segments go to a buffer kept alive in ``keep``."""
    segs = resolve_desc(ring, desc, direction)
    if isinstance(segs, int):
        return _RDESC_FMT.pack(desc, direction, segs, 0, 0)
    arr = ctypes.create_string_buffer(
        b"".join(_SEG_FMT.pack(a, n, 1 if checked else 0) for a, n, checked in segs) or b"\0")
    keep.append(arr)
    return _RDESC_FMT.pack(desc, direction, 0, len(segs), ctypes.addressof(arr))


def _fill_rdesc(ring, rd: _RDesc, desc: bytes, direction: int, keep: list) -> None:
    ctypes.memmove(ctypes.addressof(rd), _rdesc_bytes(ring, desc, direction, keep),
                   ctypes.sizeof(_RDesc))


def _prep_descs(ring, req: Request, sqe: bytes) -> None:
    """Resolve the descriptors ``sqe->addr`` names (``sqe->len`` of them), both directions,
    into the request's native table: the kfuncs then only walk C arrays.  This is the one
    Python pass per request; a descriptor the program builds itself goes through
    :func:`_resolve_cb` when it is used."""
    addr, count = struct.unpack_from("<QI", sqe, 16)
    if not addr or not 0 < count <= _MAX_PREP_DESCS or ring is None:
        return
    raw_buf = ctypes.create_string_buffer(16 * count)
    if not _lib().ops_read_user(addr, ctypes.addressof(raw_buf), 16 * count):
        return
    raw = raw_buf.raw
    parts = []
    for i in range(count):
        desc = raw[16 * i:16 * i + 16]
        dest = _rdesc_bytes(ring, desc, ITER_DEST, req.keep)
        parts.append(dest)
        if desc[0] == IO_BPF_BUF_KFIXED:          # the only type whose check has a direction
            parts.append(_rdesc_bytes(ring, desc, ITER_SOURCE, req.keep))
        else:
            parts.append(dest[:16] + struct.pack("<i", ITER_SOURCE) + dest[20:])
    table = ctypes.create_string_buffer(b"".join(parts))
    req.keep.append(table)
    req.native.ndesc, req.native.descs = 2 * count, ctypes.addressof(table)


#: how often a kfunc's C twin had to call back into Python (descriptors the SQE did not name)
native_stats = {"resolve_fallbacks": 0}

_RESOLVE_FN = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64,
                               ctypes.c_int64, ctypes.c_uint64)


def _resolve_py(data: int, desc_addr: int, direction: int, out: int) -> int:
    """Called by designs/ops/ops.c for a descriptor the prep-time table does not hold."""
    rd = _RDesc.from_address(out)
    native_stats["resolve_fallbacks"] += 1
    req = _req(data)
    if req is None:
        rd.err = -errno.EINVAL
        return 0
    _fill_rdesc(req.slot.table.ring, rd, ctypes.string_at(desc_addr, 16), direction,
                req.keep)
    return 0


#: What C's callbacks caught that is not the request's failure (a KeyboardInterrupt, or
#: whatever escaped a callback before its barrier's try, see uringbpf.callbacks): raised
#: again once ops_enter has returned.  C cannot be told to stop: the request the callback
#: served fails cleanly (-EFAULT) and ops_enter finishes its window.
_HELD: list[BaseException] = []


def _hold(exc: BaseException, args: tuple) -> bool:
    """Keep ``exc`` for :func:`_raise_held` when it is not a failure of the callback."""
    if isinstance(exc, Exception) and args:
        return False
    _HELD.append(exc)
    return True


def _raise_held() -> None:
    if _HELD:
        exc = _HELD[0]
        _HELD.clear()
        raise exc


def _resolve_failed(exc: BaseException, args: tuple) -> int:
    """A failed resolve is a clean -EFAULT for the request (C cannot take an exception);
    an interrupt is raised again after ops_enter."""
    _hold(exc, args)
    if args:                       # () when it escaped before the try: C's rd is its own
        rd = _RDesc.from_address(args[3])
        rd.err, rd.nseg, rd.segs = -errno.EFAULT, 0, 0
    return 0


_resolve_cb = _RESOLVE_FN(barrier(_resolve_py, _resolve_failed))


def _stack_ok(rt, addr: int, size: int) -> bool:
    return rt is None or (rt.mem.find(addr, size) is not None and rt.mem.find(addr, size).writable)


def _iter_id(addr: int) -> int:
    return ctypes.c_uint64.from_address(addr + 8).value


def _drop_region(iid: int) -> None:
    entry = _iter_regions.get(iid)
    if entry is not None and entry[2] is not None:
        try:
            entry[0].mem.remove(entry[2])
        except ValueError:
            pass
        entry[2] = None


def kf_iter_new(rt, r1, r2, r3, r4, r5) -> int:
    """The interpreter's entry: checks the iterator's stack slot, then the C twin."""
    if not _stack_ok(rt, r1, 64):
        return -errno.EINVAL & _U64
    ret = _lib().ops_iter_new(r1, r2, r3, r4, 0)
    if ctypes.c_uint64.from_address(r1).value == _ITER_MAGIC and rt is not None:
        _iter_regions[_iter_id(r1)] = [rt, r2, None]
    return ret


def kf_iter_next(rt, r1, r2, r3, r4, r5) -> int:
    """C twin, then the chunk handed out becomes a region of the run (interpreter and
    checked JIT code may then touch it)."""
    if not _stack_ok(rt, r1, 24):
        return 0
    iid = _iter_id(r1)
    _drop_region(iid)
    ret = _lib().ops_iter_next(r1, 0, 0, 0, 0)
    entry = _iter_regions.get(iid)
    if ret and entry is not None:
        cur = (ctypes.c_uint64 * 3)()
        if _lib().ops_iter_cur(r1, ctypes.addressof(cur)):
            addr, count = cur[0], cur[1]
            if entry[0].mem.find(addr, count) is None:
                try:
                    entry[2] = entry[0].mem.add(addr, count, cur[2] == ITER_DEST,
                                                "uring_bpf buffer page")
                except ValueError:
                    entry[2] = None
    return ret


def kf_iter_destroy(rt, r1, r2, r3, r4, r5) -> int:
    """The interpreter's entry of bpf_iter_uring_buf_destroy (checks the stack slot, then C)."""
    if not _stack_ok(rt, r1, 24):
        return 0
    iid = _iter_id(r1)
    _drop_region(iid)
    _iter_regions.pop(iid, None)
    return _lib().ops_iter_destroy(r1, 0, 0, 0, 0)


def _close_iters(req: Request) -> None:
    """A callback returned: its iterators are gone (native state and regions)."""
    _lib().ops_close_iters(req.data)
    for iid in [k for k, v in _iter_regions.items() if v[1] == req.data]:
        _drop_region(iid)
        del _iter_regions[iid]


def _buf_dynptr(rt, it: int, ptr: int, native: Callable[..., int]) -> int:
    """bpf_uring_buf_dynptr[_rdwr] from the interpreter: the dynptr (16 bytes) and the
    iterator (24) must be the program's stack slots, then the C kfunc ``native`` runs."""
    if not _stack_ok(rt, ptr, 16):
        return -errno.EINVAL & _U64
    if not _stack_ok(rt, it, 24):
        ctypes.memset(ptr, 0, 16)
        return -errno.EINVAL & _U64
    return native(it, ptr, 0, 0, 0)


def kf_buf_dynptr(rt, r1, r2, r3, r4, r5) -> int:
    """The interpreter's entry of bpf_uring_buf_dynptr (checks the stack slots, then C)."""
    return _buf_dynptr(rt, r1, r2, _lib().ops_buf_dynptr)


def kf_buf_dynptr_rdwr(rt, r1, r2, r3, r4, r5) -> int:
    """The interpreter's entry of bpf_uring_buf_dynptr_rdwr (checks the stack slots, then C)."""
    return _buf_dynptr(rt, r1, r2, _lib().ops_buf_dynptr_rdwr)


def _set_prototypes(lib: ctypes.CDLL) -> None:
    native.set_register_prototypes(lib, list(_NATIVE.values()) + list(_OP_NATIVE.values()))
    U = ctypes.c_uint64
    for name, res, args in (("ops_tab_new", U, [U, U]), ("ops_tab_free", None, [U]),
                            ("ops_tab_req", U, [U, U]), ("ops_set_resolver", None, [U]),
                            ("ops_iter_cur", U, [U, U]), ("ops_close_iters", None, [U]),
                            ("ops_read_user", U, [U, U, U])):
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    lib.ops_set_resolver(ctypes.cast(_resolve_cb, ctypes.c_void_p).value)
    I = ctypes.c_int64
    for name, res, args in (("ops_ring_new", U, [U] * 12), ("ops_ring_free", None, [U]),
                            ("ops_ring_set_prog", None, [U] * 5),
                            ("ops_ring_set_slot", None, [U] * 5),
                            ("ops_ring_set_fixed", None, [U, I, U, U, U]),
                            ("ops_ring_stats", U, [U, U]), ("ops_ring_status", U, [U]),
                            ("ops_ring_take_error", U, [U, U, U, U]),
                            ("ops_set_lookup", None, [U]), ("ops_enter", I, [U, U, U, U])):
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    lib.ops_set_lookup(ctypes.cast(_lookup_cb, ctypes.c_void_p).value)


def _lib():
    return native.load(NATIVE_SOURCE, configure=_set_prototypes)


def _enter(handle: int, to_submit: int, min_complete: int, flags: int) -> int:
    """ops_enter(): the native submit path (the C function bound once, on first use)."""
    global _enter
    fn = _lib().ops_enter
    _enter = fn
    return fn(handle, to_submit, min_complete, flags)


def _free_native(lib, tab: int, nring: int) -> None:
    if nring:
        lib.ops_ring_free(nring)
    lib.ops_tab_free(tab)


#: registered buffers mirrored in C for the native path (ops.c OPS_NFIXED); higher indices
#: and KFIXED descriptors are looked up through _native_lookup
_NFIXED = 1024
#: table id -> OpsTable, for _native_lookup (weak: a table goes with its ring)
_native_tables: "weakref.WeakValueDictionary[int, OpsTable]" = weakref.WeakValueDictionary()
_LOOKUP_FN = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_int64, ctypes.c_uint64,
                              ctypes.c_int64, ctypes.c_uint64)


def _native_lookup(table_id: int, kind: int, index: int, direction: int, out: int) -> int:
    """Called by ops.c for a registered buffer beyond its mirror (kind 1) or a KFIXED
    descriptor's base (kind 3): writes (addr, len) to out; 0 or -errno."""
    table = _native_tables.get(table_id)
    ring = table.ring if table is not None else None
    if ring is None:
        return -errno.EFAULT
    if kind == 3:
        found = _kfixed_base(ring, index, direction)
        if isinstance(found, int):
            return found
        (ctypes.c_uint64 * 2).from_address(out)[:] = [found[0], found[1]]
        return 0
    reg = _registered(ring, index)
    if reg is None:
        return -errno.EFAULT
    (ctypes.c_uint64 * 2).from_address(out)[:] = [reg[0], reg[1]]
    return 0


def _efault(exc: BaseException, args: tuple) -> int:
    """A failed lookup is a clean -EFAULT (C cannot take an exception); an interrupt is
    raised again after ops_enter."""
    _hold(exc, args)
    return -errno.EFAULT


_lookup_cb = _LOOKUP_FN(barrier(_native_lookup, _efault))


#: helper/kfunc name -> C twin in designs/ops/ops.c (the JIT calls these directly)
_NATIVE = {"bpf_dynptr_read": "ops_dynptr_read", "bpf_dynptr_write": "ops_dynptr_write",
           "bpf_dynptr_data": "ops_dynptr_data", "bpf_dynptr_slice": "ops_dynptr_slice",
           "bpf_dynptr_slice_rdwr": "ops_dynptr_slice_rdwr", "bpf_dynptr_size": "ops_dynptr_size"}
#: the op-specific kfuncs -> their C twins (always ours: registered by this module)
_OP_NATIVE = {"uring_bpf_set_result": "ops_set_result", "uring_bpf_memcpy": "ops_memcpy",
              "bpf_iter_uring_buf_new": "ops_iter_new", "bpf_iter_uring_buf_next": "ops_iter_next",
              "bpf_iter_uring_buf_destroy": "ops_iter_destroy",
              "bpf_uring_buf_dynptr": "ops_buf_dynptr",
              "bpf_uring_buf_dynptr_rdwr": "ops_buf_dynptr_rdwr"}


def _mem_ok(rt, addr: int, size: int, write: bool) -> bool:
    """The interpreter's check of program-side memory before the C twin touches it."""
    if size == 0:
        return True
    r = rt.mem.find(addr, size) if rt is not None else None
    return r is not None and (r.writable or not write)


def _dynptr_ok(rt, addr: int) -> bool:
    return _mem_ok(rt, addr, 16, False)


def h_dynptr_read(rt, r1, r2, r3, r4, r5) -> int:
    """The interpreter's entry of bpf_dynptr_read (checks program memory, then C)."""
    if not _dynptr_ok(rt, r3) or not _mem_ok(rt, r1, r2 & _M32, True):
        return -errno.EINVAL & _U64
    return _lib().ops_dynptr_read(r1, r2, r3, r4, r5)


def h_dynptr_write(rt, r1, r2, r3, r4, r5) -> int:
    """The interpreter's entry of bpf_dynptr_write (checks program memory, then C)."""
    if not _dynptr_ok(rt, r1) or not _mem_ok(rt, r3, r4 & _M32, False):
        return -errno.EINVAL & _U64
    return _lib().ops_dynptr_write(r1, r2, r3, r4, r5)


def h_dynptr_data(rt, r1, r2, r3, r4, r5) -> int:
    """The interpreter's entry of bpf_dynptr_data (checks the dynptr, then C)."""
    return _lib().ops_dynptr_data(r1, r2, r3, r4, r5) if _dynptr_ok(rt, r1) else 0


def kf_dynptr_slice(rt, r1, r2, r3, r4, r5) -> int:
    """The interpreter's entry of bpf_dynptr_slice (checks the dynptr, then C)."""
    return _lib().ops_dynptr_slice(r1, r2, r3, r4, r5) if _dynptr_ok(rt, r1) else 0


def kf_dynptr_slice_rdwr(rt, r1, r2, r3, r4, r5) -> int:
    """The interpreter's entry of bpf_dynptr_slice_rdwr (checks the dynptr, then C)."""
    return _lib().ops_dynptr_slice_rdwr(r1, r2, r3, r4, r5) if _dynptr_ok(rt, r1) else 0


def kf_dynptr_size(rt, r1, r2, r3, r4, r5) -> int:
    """The interpreter's entry of bpf_dynptr_size (checks the dynptr, then C)."""
    return _lib().ops_dynptr_size(r1, r2, r3, r4, r5) if _dynptr_ok(rt, r1) else 0


def kf_memcpy(rt, r1, r2, r3, r4, r5) -> int:
    """v2's ``uring_bpf_memcpy(data, dst, src)``: min(len) bytes; bytes copied or -errno.
    The C twin reads descriptors with ``process_vm_readv`` (a wild pointer is -EFAULT)."""
    return _lib().ops_memcpy(r1, r2, r3, 0, 0)


# --- registration with the helper table, the verifier and struct_ops ------------------
BPF_FUNC_dynptr_read, BPF_FUNC_dynptr_write, BPF_FUNC_dynptr_data = 201, 202, 203


def _add_kfuncs(platform: Platform) -> None:
    ours = PROG_TYPES

    def kf(name, args, ret=Ret.INTEGER, fn=None, **kw):
        platform.kfunc(name, args, ret, **kw)(fn)

    kf("uring_bpf_set_result", (Arg.ANYTHING, Arg.SCALAR), Ret.VOID, kf_set_result,
       prog_types=ours)
    kf("uring_bpf_memcpy", (Arg.ANYTHING, Arg.ANYTHING, Arg.ANYTHING), Ret.INTEGER, kf_memcpy,
       prog_types=ours)
    kf("bpf_iter_uring_buf_new", (Arg.STACK_PTR, Arg.ANYTHING, Arg.ANYTHING, Arg.SCALAR),
       Ret.INTEGER, kf_iter_new, prog_types=ours,
       kfunc_flags=frozenset({"ITER_NEW", f"ITER_SIZE:{ITER_SIZE}"}))
    kf("bpf_iter_uring_buf_next", (Arg.STACK_PTR,), Ret.MEM_OR_NULL, kf_iter_next, ret_size=4,
       prog_types=ours, kfunc_flags=frozenset({"ITER_NEXT", "RET_NULL", f"ITER_SIZE:{ITER_SIZE}"}))
    kf("bpf_iter_uring_buf_destroy", (Arg.STACK_PTR,), Ret.VOID, kf_iter_destroy,
       prog_types=ours, kfunc_flags=frozenset({"ITER_DESTROY", f"ITER_SIZE:{ITER_SIZE}"}))
    kf("bpf_uring_buf_dynptr", (Arg.STACK_PTR, Arg.STACK_PTR), Ret.INTEGER, kf_buf_dynptr,
       prog_types=ours, kfunc_flags=frozenset({"DYNPTR_NEW:1", "ITER_ARG:0:bpf_iter_uring_buf"}))
    kf("bpf_uring_buf_dynptr_rdwr", (Arg.STACK_PTR, Arg.STACK_PTR), Ret.INTEGER,
       kf_buf_dynptr_rdwr, prog_types=ours,
       kfunc_flags=frozenset({"DYNPTR_NEW:1", "ITER_ARG:0:bpf_iter_uring_buf"}))
    kf("bpf_dynptr_slice", (Arg.STACK_PTR, Arg.SCALAR, Arg.ANYTHING, Arg.SCALAR),
       Ret.MEM_OR_NULL, kf_dynptr_slice, ret_size_arg=3, kfunc_flags=frozenset({"DYNPTR:0"}))
    kf("bpf_dynptr_slice_rdwr", (Arg.STACK_PTR, Arg.SCALAR, Arg.ANYTHING, Arg.SCALAR),
       Ret.MEM_OR_NULL, kf_dynptr_slice_rdwr, ret_size_arg=3,
       kfunc_flags=frozenset({"DYNPTR:0"}))
    kf("bpf_dynptr_size", (Arg.STACK_PTR,), Ret.INTEGER, kf_dynptr_size,
       kfunc_flags=frozenset({"DYNPTR:0"}))
    platform.helper(BPF_FUNC_dynptr_read, "bpf_dynptr_read",
                    (Arg.UNINIT_MEM, Arg.CONST_SIZE_OR_ZERO, Arg.STACK_PTR, Arg.SCALAR,
                     Arg.SCALAR), kfunc_flags=frozenset({"DYNPTR:2"}))(h_dynptr_read)
    platform.helper(BPF_FUNC_dynptr_write, "bpf_dynptr_write",
                    (Arg.STACK_PTR, Arg.SCALAR, Arg.MEM, Arg.CONST_SIZE_OR_ZERO, Arg.SCALAR),
                    kfunc_flags=frozenset({"DYNPTR:0"}))(h_dynptr_write)
    platform.helper(BPF_FUNC_dynptr_data, "bpf_dynptr_data",
                    (Arg.STACK_PTR, Arg.SCALAR, Arg.SCALAR), Ret.MEM_OR_NULL, ret_size_arg=2,
                    kfunc_flags=frozenset({"DYNPTR:0"}))(h_dynptr_data)


def _bind_native(platform: Platform) -> None:
    """The C twins of our kfuncs and dynptr accessors: JIT code calls them directly.  The
    interpreter's entries call the same C (one implementation), so designs/ops/ops.c must
    build (on first use, not here); without a C compiler the ops design cannot run."""
    for name, sym in _OP_NATIVE.items():
        platform.kfuncs[name].native = (NATIVE_SOURCE, sym)
    by_name = {h.name: h for h in platform.helpers.values()}
    for name, sym in _NATIVE.items():
        (platform.kfuncs.get(name) or by_name[name]).native = (NATIVE_SOURCE, sym)


def _add_prog_types(platform: Platform) -> None:
    """The four members: r1 -> [data, sqe] (prep) or [data]; only ``pdu`` is writable,
    the SQE is read-only; callbacks are never sleepable (check_member in the series)."""
    data = pt.Layout("uring_bpf_data", DATA_SIZE, (
        pt.Field("req_data", 0, 8), pt.Field("ops", 8, 8), pt.Field("opf", 16, 4),
        pt.Field("issue_flags", 20, 4), pt.Field("lock_depth", 24, 4),
        pt.Field("pdu", PDU_OFFSET, PDU_SIZE, read=True, write=True)))
    sqe = pt.Layout("io_uring_sqe", 64, (pt.Field("sqe", 0, 64),))
    for m in MEMBERS:
        args = [pt.ValueKind.struct(data)]
        if m == "prep_fn":
            args.append(pt.ValueKind.struct(sqe))
        platform.add_struct_ops_member(STRUCT_OPS_TYPE, m, args, ret_range=None,
                                       sleepable=False,
                                       ret_void=m in ("fail_fn", "cleanup_fn"))


# --- examples -------------------------------------------------------------------------
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


def example_object(name: str, out_dir: Path | None = None) -> Path:
    """Compile ``examples/ops/<name>.bpf.c``: into ``out_dir`` if given, else cached
    (see cc.compile_cached)."""
    src = EXAMPLES_DIR / f"{name}.bpf.c"
    if out_dir is None:
        return compile_cached(src)
    return compile_c(src, Path(out_dir) / f"{name}.bpf.o")


def open_example(name: str, ring, *, engine: str = "jit", verify: bool = True,
                 maps: tuple = (), attach: bool = True, **kw):
    """Open ``examples/ops/<name>.bpf.c``, point its struct_ops maps (all, or ``maps``) at
    ``ring``, load, and attach them; returns ``(obj, links)``."""
    obj = BpfObject.open(str(example_object(name)))
    chosen = [m for m in obj.struct_ops if not maps or m.name in maps]
    for m in chosen:
        m.ring_fd = ring.fd
    obj.load(engine=engine, verify=verify, **kw)
    links = [obj.attach_struct_ops(m.name) for m in chosen] if attach else []
    return obj, links


class OpsDesign(Design):
    """IORING_OP_BPF (Ming Lei v3): its kfuncs and dynptr helpers (C twins in ops.c), the
    four ``uring_bpf_ops`` members' program types and the struct_ops attach function."""

    name = "ops"

    def contribute(self, platform: Platform) -> None:
        """Register the kfuncs, their C twins, the member prog types and the struct_ops type."""
        _add_kfuncs(platform)
        _bind_native(platform)
        _add_prog_types(platform)
        platform.add_struct_ops_type(STRUCT_OPS_TYPE, _attach_struct_ops)


DESIGN = OpsDesign()
