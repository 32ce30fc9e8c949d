"""Linux 7.0 io_uring opcode filters: classic BPF run on every SQE before it is issued.

``IORING_REGISTER_BPF_FILTER`` (37) attaches a classic-BPF program to one opcode of a
ring (include/uapi/linux/io_uring/bpf_filter.h, io_uring/bpf_filter.c).  Each request
of that opcode builds a ``struct io_uring_bpf_ctx`` (user_data, opcode, sqe flags and
an opcode-specific payload for SOCKET/OPENAT/OPENAT2) and runs every filter stacked on
the opcode, newest first; one returning 0 fails the request with ``-EACCES`` (its CQE
keeps the user_data).  ``DENY_REST`` installs a deny-all filter on every opcode that
has none yet.

The running kernel (6.18) has no such filters, so we run them ourselves on the ring's
submit path through ``ring.add_sqe_filter``: the ring calls us for every SQE it hands to
the kernel — from the application and from BPF programs (``bpf_io_uring_submit_sqes``)
alike — and turns a negative return into a CQE carrying that error.  Registration
follows the kernel's import checks and errnos exactly, including the payload-size
negotiation (``-EMSGSIZE``) and the write-back of the kernel's ``pdu_size``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import weakref
from ctypes import Structure, Union, c_uint8, c_uint16, c_uint32, c_uint64, sizeof
from pathlib import Path
from typing import Iterable, Sequence

from ... import native
from ...uring import uapi
from ...uring.ring import add_setup_hook
from ...uring.syscalls import read_user, write_user
from . import cbpf
from .cbpf import CbpfError, SockFilter

IORING_REGISTER_BPF_FILTER = 37
IO_URING_BPF_CMD_FILTER = 1
IO_URING_BPF_FILTER_DENY_REST = 1
IO_URING_BPF_FILTER_SZ_STRICT = 2
_FILTER_FLAGS = IO_URING_BPF_FILTER_DENY_REST | IO_URING_BPF_FILTER_SZ_STRICT
# Short names, after the uapi module's rule.
BPF_CMD_FILTER = IO_URING_BPF_CMD_FILTER
FILTER_DENY_REST = IO_URING_BPF_FILTER_DENY_REST
FILTER_SZ_STRICT = IO_URING_BPF_FILTER_SZ_STRICT


class _Socket(Structure):
    _fields_ = [("family", c_uint32), ("type", c_uint32), ("protocol", c_uint32)]


class _Open(Structure):
    _fields_ = [("flags", c_uint64), ("mode", c_uint64), ("resolve", c_uint64)]


class _Connect(Structure):
    """7.2's CONNECT payload: ``port`` and the address stay in network byte order."""

    _fields_ = [("family", c_uint32), ("port", c_uint8 * 2), ("pad", c_uint8 * 2),
                ("addr", c_uint8 * 16)]   # v4_addr (4 bytes) or v6_addr (16) in the kernel


class _CtxU(Union):
    _fields_ = [("socket", _Socket), ("open", _Open), ("connect", _Connect)]


class FilterCtx(Structure):
    """``struct io_uring_bpf_ctx``: what a filter's 32-bit loads read (40 bytes)."""

    _anonymous_ = ("u",)
    _fields_ = [("user_data", c_uint64), ("opcode", c_uint8), ("sqe_flags", c_uint8),
                ("pdu_size", c_uint8), ("pad", c_uint8 * 5), ("u", _CtxU)]


class IoUringBpfFilter(Structure):
    """``struct io_uring_bpf_filter`` (64 bytes; ``pdu_size`` is written back)."""

    _fields_ = [("opcode", c_uint32), ("flags", c_uint32), ("filter_len", c_uint32),
                ("pdu_size", c_uint8), ("resv", c_uint8 * 3), ("filter_ptr", c_uint64),
                ("resv2", c_uint64 * 5)]


class _BpfU(Union):
    _fields_ = [("filter", IoUringBpfFilter)]


class IoUringBpf(Structure):
    """``struct io_uring_bpf``: the IORING_REGISTER_BPF_FILTER argument (72 bytes)."""

    _anonymous_ = ("u",)
    _fields_ = [("cmd_type", c_uint16), ("cmd_flags", c_uint16), ("resv", c_uint32),
                ("u", _BpfU)]


assert sizeof(FilterCtx) == 40 and sizeof(IoUringBpfFilter) == 64 and sizeof(IoUringBpf) == 72
CTX_SIZE = sizeof(FilterCtx)
_PDU_OFFSET = FilterCtx.pdu_size.offset
_UNION_OFFSET = FilterCtx.u.offset

#: The payload each opcode adds to the context (io_issue_def.filter_pdu_size); 0 if none.
FILTER_PDU_SIZE: dict[int, int] = {
    uapi.IORING_OP_SOCKET: sizeof(_Socket),
    uapi.IORING_OP_OPENAT: sizeof(_Open),
    uapi.IORING_OP_OPENAT2: sizeof(_Open),
    uapi.IORING_OP_CONNECT: sizeof(_Connect),
}
OP_LAST = uapi.IORING_OP_LAST
SQE_VALID_FLAGS = 0x7F

# x86-64 open flags used to rebuild the kernel's struct open_how for OPENAT.
_O_CREAT, _O_LARGEFILE, _O_DIRECTORY, _O_NOFOLLOW = 0o100, 0o100000, 0o200000, 0o400000
_O_CLOEXEC, _O_PATH, _O_TMPFILE_BIT = 0o2000000, 0o10000000, 0o20000000
_VALID_OPEN_FLAGS = 0o37777703 | _O_LARGEFILE
_O_PATH_FLAGS = _O_DIRECTORY | _O_NOFOLLOW | _O_PATH | _O_CLOEXEC
_S_IALLUGO = 0o7777


# --- the io_uring whitelist (io_uring_check_cbpf_filter) -------------------------------
_OK = frozenset(
    [cbpf.RET | cbpf.K, cbpf.RET | cbpf.A, cbpf.ALU | cbpf.NEG, cbpf.LD | cbpf.IMM,
     cbpf.LDX | cbpf.IMM, cbpf.MISC | cbpf.TAX, cbpf.MISC | cbpf.TXA, cbpf.LD | cbpf.MEM,
     cbpf.LDX | cbpf.MEM, cbpf.ST, cbpf.STX, cbpf.JMP | cbpf.JA]
    + [cbpf.ALU | op | src for op in (cbpf.ADD, cbpf.SUB, cbpf.MUL, cbpf.DIV, cbpf.AND,
                                      cbpf.OR, cbpf.XOR, cbpf.LSH, cbpf.RSH)
       for src in (cbpf.K, cbpf.X)]
    + [cbpf.JMP | op | src for op in (cbpf.JEQ, cbpf.JGE, cbpf.JGT, cbpf.JSET)
       for src in (cbpf.K, cbpf.X)]
)


def check_io_uring_filter(insns: list[SockFilter]) -> list[SockFilter]:
    """Refuse (EINVAL) what an io_uring filter may not do and rewrite context loads.

    Allowed: aligned 32-bit loads inside the 40-byte context (rewritten to native
    loads), length loads (the context size), ALU without MOD, forward jumps, returns,
    scratch memory.  No packet (IND/H/B) loads, no MOD, no MSH.
    """
    out = []
    for pc, ins in enumerate(insns):
        code, k = ins.code, ins.k
        if code == cbpf.LD | cbpf.W | cbpf.ABS:
            if k >= CTX_SIZE or k & 3:
                raise CbpfError(f"context load at offset {k} (must be 4-aligned, < {CTX_SIZE})",
                                pc=pc)
            ins = SockFilter(cbpf.CTX_LOAD, 0, 0, k)
        elif code == cbpf.LD | cbpf.W | cbpf.LEN:
            ins = SockFilter(cbpf.LD | cbpf.IMM, 0, 0, CTX_SIZE)
        elif code == cbpf.LDX | cbpf.W | cbpf.LEN:
            ins = SockFilter(cbpf.LDX | cbpf.IMM, 0, 0, CTX_SIZE)
        elif code not in _OK:
            raise CbpfError(f"opcode {code:#06x} is not allowed in an io_uring filter", pc=pc)
        out.append(ins)
    return out


def compile_filter(insns: Sequence[SockFilter]) -> cbpf.Program:
    """Check a classic program as the kernel would for an io_uring filter (CbpfError)."""
    return cbpf.Program(insns, transform=check_io_uring_filter)


# --- safe access to user memory: the ring layer's process_vm_readv/writev wrappers -------
copy_from_user = read_user     # bytes, or None where the kernel would say -EFAULT
copy_to_user = write_user      # False where the kernel would say -EFAULT


# --- the per-ring filter table ---------------------------------------------------------
_DENY = object()   # the kernel's dummy_filter: an opcode denied by DENY_REST


class FilterSet:
    """One set of filters (``struct io_bpf_filters``): per opcode a chain (newest first) or
    the deny marker.  Rings and the task may share a set (see the task-level section);
    every :class:`FilterTable` sharing it sees a change at once."""

    def __init__(self) -> None:
        self.chains: dict[int, list | object] = {}
        self.tables: "weakref.WeakSet[FilterTable]" = weakref.WeakSet()

    def copy(self) -> "FilterSet":
        """A set with the same filters (io_bpf_filter_cow: filters never change once
        installed and new ones only go in front of a chain, so sharing them is a copy)."""
        twin = FilterSet()
        twin.chains = {op: (c if c is _DENY else list(c)) for op, c in self.chains.items()}
        return twin

    def install(self, opcode: int, program: cbpf.Program, flags: int) -> None:
        """Stack ``program`` on ``opcode`` (newest runs first); DENY_REST fills empty opcodes per
        ``flags``."""
        chain = self.chains.get(opcode)
        # A DENY_REST marker only ever fills an empty slot; a real filter stacks on top of it.
        if chain is None:
            chain = self.chains[opcode] = []
        elif chain is _DENY:
            chain = self.chains[opcode] = [_DENY]
        chain.insert(0, program)
        if flags & IO_URING_BPF_FILTER_DENY_REST:
            for op in range(OP_LAST):
                self.chains.setdefault(op, _DENY)
        for table in list(self.tables):
            table._changed()


class FilterTable:
    """The filters one ring (or the task) runs: a :class:`FilterSet`, maybe shared.

    ``cow`` says the set is shared copy-on-write (``bpf_filters_cow``): the next
    registration through this table first takes a private copy.  The table is also
    flattened into a native blob (:meth:`native_addr`, layout in native/cbpf.h) that the
    C loop driver checks SQEs against when a loop_step program submits them, so
    program-submitted SQEs are filtered without a trip to Python.
    """

    def __init__(self, shared: FilterSet | None = None, cow: bool = False) -> None:
        self.filters = shared if shared is not None else FilterSet()
        self.filters.tables.add(self)
        self.cow = cow
        self.listeners: list = []
        self.sqe_filter = None   # the function installed with ring.add_sqe_filter
        #: the ring has IORING_SETUP_SUBMIT_ALL (native paths then go on after a refusal)
        self.submit_all = False
        self._blob = None

    @property
    def chains(self) -> dict[int, list | object]:
        """Per opcode the chain of programs (newest first) or the deny marker."""
        return self.filters.chains

    def share(self) -> "FilterTable":
        """A new table on the same set, copy-on-write for the new one only (what
        io_bpf_filter_clone does for a ring made by the task, and a fork's child)."""
        return FilterTable(self.filters, cow=True)

    def install(self, opcode: int, program: cbpf.Program, flags: int) -> None:
        """Register ``program`` here: on a shared copy-on-write set, on a private copy first
        (io_register_bpf_filter's io_bpf_filter_cow); everyone sharing the set sees it."""
        if self.cow:
            self.filters.tables.discard(self)
            self.filters = self.filters.copy()
            self.filters.tables.add(self)
            self.cow = False
        self.filters.install(opcode, program, flags)

    def _changed(self) -> None:
        self._blob = None
        for listener in list(self.listeners):
            listener(self.native_addr())

    def native_blob(self) -> bytes:
        """The table as ``struct ub_filter_table`` + chains + programs (native/cbpf.h)."""
        header = 12 + 4 * _NATIVE_MAX_OPS
        body = bytearray()
        chain_off = [0] * _NATIVE_MAX_OPS
        prog_off: dict[int, int] = {}
        for prog in {id(p): p for c in self.chains.values() if c is not _DENY
                     for p in c if p is not _DENY}.values():
            prog_off[id(prog)] = header + len(body)
            body += struct.pack("<II", len(prog.insns), 0) + cbpf.pack(prog.insns)
        for op, chain in sorted(self.chains.items()):
            if op >= _NATIVE_MAX_OPS:
                continue
            items = [0] if chain is _DENY else [0 if p is _DENY else prog_off[id(p)]
                                                 for p in chain]
            chain_off[op] = header + len(body)
            body += struct.pack(f"<I{len(items)}I", len(items), *items)
        flags = _NATIVE_F_SUBMIT_ALL if self.submit_all else 0
        return struct.pack(f"<III{_NATIVE_MAX_OPS}I", _NATIVE_MAGIC, OP_LAST, flags,
                           *chain_off) + body

    def native_addr(self) -> int:
        """Address of the current native blob (kept alive by this table until it changes)."""
        if self._blob is None:
            blob = self.native_blob()
            self._blob = ctypes.create_string_buffer(blob, len(blob))
        return ctypes.addressof(self._blob)

    def check(self, sqe: bytes) -> int:
        """0 to let the SQE through, -EACCES to fail it (io_uring_run_bpf_filters)."""
        opcode = sqe[0]
        chain = self.chains.get(opcode)
        if chain is None or opcode >= OP_LAST:
            return 0
        if chain is _DENY:
            return -errno.EACCES
        ctx = build_ctx(sqe)
        if ctx is None:  # the kernel's prep would fail first; let it report that
            return 0
        for prog in chain:
            if prog is _DENY or not prog.run(ctx):
                return -errno.EACCES
        return 0


def build_ctx(sqe: bytes) -> bytes | None:
    """The ``io_uring_bpf_ctx`` the kernel builds for this SQE (None if prep would fail)."""
    ctx = FilterCtx()
    s = uapi.Sqe.from_buffer_copy(sqe[:sizeof(uapi.Sqe)].ljust(sizeof(uapi.Sqe), b"\0"))
    ctx.opcode = s.opcode
    ctx.sqe_flags = s.flags & SQE_VALID_FLAGS
    ctx.user_data = s.user_data
    opcode = s.opcode
    raw = bytes(sqe[:sizeof(uapi.Sqe)])
    if opcode == uapi.IORING_OP_SOCKET:
        ctx.pdu_size = sizeof(_Socket)
        ctx.socket.family = int.from_bytes(raw[4:8], "little")      # sqe->fd
        ctx.socket.type = int.from_bytes(raw[8:12], "little")       # sqe->off
        ctx.socket.protocol = int.from_bytes(raw[24:28], "little")  # sqe->len
    elif opcode in (uapi.IORING_OP_OPENAT, uapi.IORING_OP_OPENAT2):
        ctx.pdu_size = sizeof(_Open)
        if opcode == uapi.IORING_OP_OPENAT:
            flags = int.from_bytes(raw[28:32], "little") & _VALID_OPEN_FLAGS
            mode = int.from_bytes(raw[24:28], "little") & _S_IALLUGO
            if flags & _O_PATH:
                flags &= _O_PATH_FLAGS
            if not flags & (_O_CREAT | _O_TMPFILE_BIT):
                mode = 0
            resolve = 0
        else:
            how_len = int.from_bytes(raw[24:28], "little")
            how = copy_from_user(int.from_bytes(raw[8:16], "little"), min(how_len, 24))
            if how_len < 24 or how is None:
                return None
            flags, mode, resolve = (int.from_bytes(how[i:i + 8], "little") for i in (0, 8, 16))
        if not flags & _O_PATH:
            flags |= _O_LARGEFILE   # force_o_largefile() on 64-bit
        ctx.open.flags, ctx.open.mode, ctx.open.resolve = flags, mode, resolve
    elif opcode == uapi.IORING_OP_CONNECT:
        if not _connect_populate(ctx, raw):
            return None
    return bytes(ctx)


_AF_INET, _AF_INET6 = 2, 10
_SOCKADDR_STORAGE = 128


def _connect_populate(ctx: FilterCtx, raw: bytes) -> bool:
    """CONNECT's payload (7.2 io_connect_prep + io_connect_bpf_populate, io_uring/net.c).

    The filter runs after prep, so a CONNECT whose prep fails (-EINVAL, -EFAULT) never
    reaches it: False then.  The payload is reported (pdu_size 24) for every CONNECT; the
    family is filled once ``addr_len`` covers ``sa_family_t`` (2 bytes), port and
    address only once it covers the whole ``sockaddr_in`` (16) / ``sockaddr_in6`` (28).
    """
    if any(raw[24:32]) or any(raw[40:42]) or any(raw[44:48]):  # len, rw_flags, buf_index, splice_fd_in
        return False
    addr_len = int.from_bytes(raw[8:12], "little", signed=True)  # (int) sqe->addr2
    if addr_len < 0 or addr_len > _SOCKADDR_STORAGE:              # move_addr_to_kernel
        return False
    data = b""
    if addr_len:
        data = copy_from_user(int.from_bytes(raw[16:24], "little"), addr_len)
        if data is None:
            return False
    ctx.pdu_size = sizeof(_Connect)
    if addr_len < 2:
        return True
    family = int.from_bytes(data[0:2], "little")
    ctx.connect.family = family
    if family == _AF_INET and addr_len >= 16:
        ctx.connect.port[:] = data[2:4]
        ctx.connect.addr[:4] = data[4:8]
    elif family == _AF_INET6 and addr_len >= 28:
        ctx.connect.port[:] = data[2:4]
        ctx.connect.addr[:] = data[8:24]
    return True


_NATIVE_MAGIC = 0x63627066
_NATIVE_F_SUBMIT_ALL = 1     # UB_FILTER_F_SUBMIT_ALL
_NATIVE_MAX_OPS = 256

_tables: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_pending_listeners: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def add_listener(ring, fn) -> None:
    """Call ``fn(native_table_addr)`` now (if the ring has filters) and on every change.

    The loop design uses this to keep its native submit path's filter table current.
    """
    table = _tables.get(ring)
    if table is None:
        _pending_listeners.setdefault(ring, []).append(fn)
        return
    table.listeners.append(fn)
    fn(table.native_addr())


def remove_listener(ring, fn) -> None:
    """Stop calling ``fn`` when ``ring``'s filter table changes."""
    table = _tables.get(ring)
    for lst in (table.listeners if table is not None else [], _pending_listeners.get(ring, [])):
        while fn in lst:
            lst.remove(fn)


def filters_of(ring) -> FilterTable | None:
    """The filter table of ``ring`` (None before the first registration)."""
    return _tables.get(ring)


def _table_for(ring, base: FilterTable | None = None) -> FilterTable:
    table = _tables.get(ring)
    if table is None:
        table = _tables[ring] = base.share() if base is not None else FilterTable()
        table.submit_all = bool(ring.flags & uapi.IORING_SETUP_SUBMIT_ALL)
        table.listeners.extend(_pending_listeners.pop(ring, []))
        table.sqe_filter = _make_sqe_filter(table)
        ring.add_sqe_filter(table.sqe_filter)
    return table


#: this design's C (built on first use): filter.c, the check over native/cbpf.h
NATIVE_SOURCE = Path(__file__).resolve().with_name("filter.c")


def _set_prototypes(so: ctypes.CDLL) -> None:
    so.filter_sqe_check.restype = ctypes.c_int32
    so.filter_sqe_check.argtypes = [ctypes.c_uint64, ctypes.c_void_p]
    so.filter_cbpf_run.restype = ctypes.c_uint32
    so.filter_cbpf_run.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p,
                                   ctypes.c_uint32]


def lib() -> ctypes.CDLL:
    """The compiled filter.c (with its prototypes)."""
    return native.load(NATIVE_SOURCE, configure=_set_prototypes)


def _make_sqe_filter(table: FilterTable):
    """The ring-side filter: the C check (filter.c over native/cbpf.h) on the SQE in place.

    Same table, same code as the loop's native submit path, one ctypes call per SQE; the
    Python VM (:meth:`FilterTable.check`) is the reference the C code is tested against
    and runs SQEs that are not ctypes views.
    """
    check = lib().filter_sqe_check

    def sqe_filter(sqe, _t=table, _check=check):
        if isinstance(sqe, ctypes.Structure):
            return _check(_t.native_addr(), ctypes.addressof(sqe))
        return _t.check(_sqe_bytes(sqe))

    return sqe_filter


def _sqe_bytes(sqe) -> bytes:
    if isinstance(sqe, int):
        return ctypes.string_at(sqe, sizeof(uapi.Sqe))
    if isinstance(sqe, (bytes, bytearray, memoryview)):
        return bytes(sqe)
    return ctypes.string_at(ctypes.addressof(sqe), sizeof(uapi.Sqe))


# --- registration ----------------------------------------------------------------------
def _import(reg: IoUringBpf) -> int:
    """io_bpf_filter_import: header checks, then the payload-size negotiation."""
    f = reg.filter
    if reg.cmd_type != IO_URING_BPF_CMD_FILTER or reg.cmd_flags or reg.resv:
        return -errno.EINVAL
    if f.opcode >= OP_LAST or f.flags & ~_FILTER_FLAGS:
        return -errno.EINVAL
    if any(f.resv) or any(f.resv2):
        return -errno.EINVAL
    if not f.filter_len or f.filter_len > cbpf.MAXINSNS:
        return -errno.EINVAL
    want = FILTER_PDU_SIZE.get(f.opcode, 0)
    ret = 0
    if f.pdu_size != want and (f.flags & IO_URING_BPF_FILTER_SZ_STRICT or f.pdu_size > want):
        ret = -errno.EMSGSIZE
    f.pdu_size = want
    return ret


def register_bpf_filter_raw(ring, arg: int, nr_args: int = 1) -> int:
    """``io_uring_register(fd, IORING_REGISTER_BPF_FILTER, arg, nr_args)``: 0 or -errno.

    ``arg`` is the address of a ``struct io_uring_bpf``; like the kernel we read it (and
    the filter it points to) without trusting it, and write back ``filter.pdu_size``.
    """
    got = _read_registration(arg, nr_args)
    if isinstance(got, int):
        return got
    f, program = got
    _table_for(ring).install(f.opcode, program, f.flags)
    return 0


def _read_registration(arg: int, nr_args: int) -> int | tuple[IoUringBpfFilter, cbpf.Program]:
    """io_register_bpf_filter up to the install: -errno, or (filter header, checked program).

    ``-EINVAL`` unless ``nr_args`` is 1; reads ``struct io_uring_bpf`` at ``arg`` without
    trusting it, writes back ``filter.pdu_size`` (also on -EMSGSIZE, as the kernel does),
    then copies and checks the classic program.
    """
    if nr_args != 1:
        return -errno.EINVAL
    raw = copy_from_user(arg, sizeof(IoUringBpf))
    if raw is None:
        return -errno.EFAULT
    reg = IoUringBpf.from_buffer_copy(raw)
    ret = _import(reg)
    if not copy_to_user(arg + IoUringBpf.u.offset, bytes(reg.filter)):
        return -errno.EFAULT
    if ret:
        return ret
    f = reg.filter
    if not f.filter_ptr:
        return -errno.EINVAL
    code = copy_from_user(f.filter_ptr, f.filter_len * cbpf.INSN_SIZE)
    if code is None:
        return -errno.EFAULT
    try:
        return f, compile_filter(cbpf.unpack(code))
    except CbpfError as exc:
        return -exc.errno


def register_bpf_filter(ring, opcode: int, insns: Iterable[SockFilter] | bytes,
                        flags: int = 0, pdu_size: int | None = None) -> int:
    """liburing's ``io_uring_register_bpf_filter`` with the struct built for you.

    ``pdu_size`` defaults to what the kernel expects for ``opcode``; returns 0 or
    -errno (-EINVAL for a refused program, -EMSGSIZE for a payload-size mismatch).
    """
    reg, _buf = build_registration(opcode, insns, flags, pdu_size)
    return register_bpf_filter_raw(ring, ctypes.addressof(reg), 1)


def build_registration(opcode: int, insns: Iterable[SockFilter] | bytes, flags: int = 0,
                       pdu_size: int | None = None) -> tuple[IoUringBpf, ctypes.Array]:
    """``(struct io_uring_bpf, program buffer)`` for IORING_REGISTER_BPF_FILTER; keep both
    alive until the registration returns. ``pdu_size`` defaults to the kernel's."""
    code = insns if isinstance(insns, (bytes, bytearray)) else cbpf.pack(insns)
    buf = ctypes.create_string_buffer(bytes(code), max(len(code), 1))
    reg = IoUringBpf(cmd_type=IO_URING_BPF_CMD_FILTER)
    reg.filter.opcode = opcode
    reg.filter.flags = flags
    reg.filter.filter_len = len(code) // cbpf.INSN_SIZE
    reg.filter.pdu_size = FILTER_PDU_SIZE.get(opcode, 0) if pdu_size is None else pdu_size
    reg.filter.filter_ptr = ctypes.addressof(buf)
    return reg, buf


def register_hook(ring, opcode: int, arg: int, nr_args: int) -> int | None:
    """For a ring's register hook: handle IORING_REGISTER_BPF_FILTER, pass on the rest."""
    if opcode != IORING_REGISTER_BPF_FILTER:
        return None
    return register_bpf_filter_raw(ring, arg, nr_args)


def enable(ring) -> None:
    """Let ``ring.register(IORING_REGISTER_BPF_FILTER, arg, 1)`` reach this design.

    The ring knows no designs; this adds :func:`register_hook` to its register hooks
    (once), as the 7.0 kernel's io_uring_register would handle the opcode itself.
    """
    if ring in _hooked:
        return
    ring.add_register_hook(register_hook)
    _hooked.add(ring)


_hooked: "weakref.WeakSet" = weakref.WeakSet()   # rings enable() added register_hook to


# --- task-level ("blind") filters ------------------------------------------------------
# io_uring_register(-1, IORING_REGISTER_BPF_FILTER, arg, 1) (io_uring/register.c,
# io_register_bpf_filter_task) installs the filter in the calling task's restriction set
# (task_struct.io_uring_restrict) instead of a ring's.  The set is then shared, not
# copied (io_uring/bpf_filter.c io_bpf_filter_clone): io_uring_create() gives every ring
# the task creates afterwards the task's set, and fork/clone gives the child the parent's
# (__io_uring_fork); the receiving side is marked copy-on-write (bpf_filters_cow), the
# task that registered is not.  What Linux 7.2 does with that (checked in the 7.2 guest,
# tests/kernel filter_task_* cases):
#   * a later registration on the task changes the shared set in place: rings the task
#     created since its first registration see it too (not rings made before that: they
#     got no set);
#   * a ring-level registration on an inherited ring copies the set first: it stays in
#     that ring, which from then on no longer sees the task's later registrations;
#   * a child's first registration copies likewise: the parent does not see it.
# There is no way to remove a task's filters.
#
# Emulated per process: the task's table lives in this module, rings get a table sharing
# its set through uring.ring.add_setup_hook, and after fork() the child's task table is
# marked copy-on-write (os.register_at_fork).  Not emulated: the kernel keeps one set per
# thread (threads share one here), and a parent's registrations after a fork() also reach
# a child that has not registered itself (a child process here has its own copy).
_task_table: FilterTable | None = None

_PR_GET_NO_NEW_PRIVS = 39
_CAP_SYS_ADMIN = 21
_libc = ctypes.CDLL(None, use_errno=True)


def _task_may_register() -> bool:
    """The seccomp-like rule of io_register_bpf_filter_task: no_new_privs set, or
    CAP_SYS_ADMIN in the task's (effective) capabilities."""
    if _libc.prctl(_PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1:
        return True
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> _CAP_SYS_ADMIN & 1)
    raise OSError(errno.ENOENT, "no CapEff line in /proc/self/status")


def register_task_bpf_filter_raw(arg: int, nr_args: int = 1) -> int:
    """``io_uring_register(-1, IORING_REGISTER_BPF_FILTER, arg, nr_args)``: 0 or -errno.

    Same checks and errnos as a ring's registration, after the task-level ones:
    ``-EACCES`` unless no_new_privs is set or the caller has CAP_SYS_ADMIN, ``-EINVAL``
    unless ``nr_args`` is 1.  A filter registered here applies to the rings this process
    creates from now on, and to those it created since its first task-level registration
    that have no ring-level filter of their own (they share the set; section comment).
    """
    global _task_table
    if not _task_may_register():
        return -errno.EACCES
    got = _read_registration(arg, nr_args)
    if isinstance(got, int):
        return got
    f, program = got
    if _task_table is None:
        _task_table = FilterTable()
        add_setup_hook(_inherit_task_filters)
    _task_table.install(f.opcode, program, f.flags)
    return 0


def register_task_bpf_filter(opcode: int, insns: Iterable[SockFilter] | bytes, flags: int = 0,
                             pdu_size: int | None = None) -> int:
    """:func:`register_bpf_filter` for the calling task (``fd = -1``): rings created from
    now on start with this filter; returns 0 or -errno."""
    reg, _buf = build_registration(opcode, insns, flags, pdu_size)
    return register_task_bpf_filter_raw(ctypes.addressof(reg), 1)


def task_filters() -> FilterTable | None:
    """The calling process's task-level filter set (None before the first registration)."""
    return _task_table


def _task_forked() -> None:
    """In a fork()'s child: its task set is the parent's, shared copy-on-write."""
    if _task_table is not None:
        _task_table.cow = True


os.register_at_fork(after_in_child=_task_forked)


def _inherit_task_filters(ring) -> None:
    """Ring set-up hook: a new ring starts with a copy of the task's filters, and its own
    ring-level registrations (through :func:`enable`) stack on that copy."""
    if _task_table is None:
        return
    _table_for(ring, base=_task_table)
    enable(ring)
