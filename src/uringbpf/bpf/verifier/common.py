"""Shared pieces of the verifier: limits, result and error types, small helpers."""

from __future__ import annotations

import ctypes
import functools
import gc
from dataclasses import dataclass, field

from .. import btf as _btf
from .. import helpers as helpers_mod
from .. import isa
from ...errors import MapError
from ..helpers import Arg, Ret
from ..platform import Platform, default_platform
from . import scalar as sc
from .state import (  # (Num: defined there, the lowest module using it)
    Num,
    CONST_MAP, PTR_ARENA, PTR_MAP_VALUE, PTR_MEM, PTR_TRUSTED, SCALAR, UNKNOWN_SCALAR, Reg,
    const_reg,
)


MAX_INSNS_PROCESSED = 1_000_000
MAX_VAR_OFF = 1 << 29
LEN_ID = 1                      # scalar id of the data-buffer length (r2 of "buffer" programs)
BPF_F_RDONLY_PROG = 1 << 7
_MAP_TYPE_ARRAY = 2
_MAP_TYPE_PERCPU_ARRAY = 6
_MAP_TYPE_ARENA = 33
_MAP_TYPE_RINGBUF = 27
_RINGBUF_FUNCS = frozenset({"bpf_ringbuf_output", "bpf_ringbuf_reserve", "bpf_ringbuf_query",
                            "bpf_ringbuf_reserve_dynptr", "bpf_ringbuf_submit_dynptr",
                            "bpf_ringbuf_discard_dynptr"})

#: the kernel's check_map_func_compatibility for the map types and helpers we have: a map
#: type that takes only some helpers, then a helper that takes only some map types (hash,
#: array, per-CPU hash, per-CPU array, LRU per-CPU hash, ring buffer)
MAP_TYPE_ONLY_FUNCS = {_MAP_TYPE_RINGBUF: _RINGBUF_FUNCS}
FUNC_ONLY_MAP_TYPES = {**{f: frozenset({_MAP_TYPE_RINGBUF}) for f in _RINGBUF_FUNCS
                          if f not in ("bpf_ringbuf_submit_dynptr", "bpf_ringbuf_discard_dynptr")},
                       "bpf_map_lookup_percpu_elem": frozenset({5, 6, 10})}

#: the register types check_helper_mem_access takes for a memory argument, as Linux 7.2
#: lists them when the argument is something else (measured in the guest)
MEM_ARG_TYPES = "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_, ctx"
LOG_LIMIT = 4_000_000           # characters kept in the log (like the kernel's log buffer)




@dataclass
class VerifierResult:
    """Statistics of a successful verification (named like the kernel's)."""

    processed_insns: int
    total_states: int
    peak_states: int
    max_states_per_insn: int
    max_stack: int
    stack_depths: dict[int, int] = field(default_factory=dict)
    prog_type: str = ""
    log: str = ""

    def stats_line(self) -> str:
        """The kernel's closing statistics lines (``processed N insns ...`` and ``stack depth``).
        """
        depths = "+".join(str(self.stack_depths[k]) for k in sorted(self.stack_depths))
        return (f"processed {self.processed_insns} insns (limit {MAX_INSNS_PROCESSED}) "
                f"max_states_per_insn {self.max_states_per_insn} total_states {self.total_states} "
                f"peak_states {self.peak_states} mark_read 0\nstack depth {depths or 0}")


_BTF_KIND_INT, _BTF_KIND_PTR, _BTF_KIND_STRUCT = _btf.KIND_INT, _btf.KIND_PTR, _btf.KIND_STRUCT
_BTF_KIND_ENUM, _BTF_KIND_FUNC, _BTF_KIND_ENUM64 = _btf.KIND_ENUM, _btf.KIND_FUNC, _btf.KIND_ENUM64
_BTF_FUNC_GLOBAL = _btf.FUNC_GLOBAL


@dataclass
class _GlobalFunc:
    idx: int            # subprogram number (func#N in messages)
    name: str
    entry: int
    args: list          # ("scalar",) | ("ctx",) | ("mem", size) per argument
    void: bool = False  # returns void: r0 is not checked at its exit (check_return_code)


class _Reject(Exception):
    """A refusal: ``message`` is the log's last line (the kernel's error), ``pre`` the
    lines the kernel prints just before it (e.g. the access that failed, then the bound)."""

    def __init__(self, message: str, pre: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.pre = pre


class _DInsn:
    """The verifier's copy of an instruction (:class:`isa.Insn`), made once per
    verification: the same field names, as slots of an extension type in the compiled
    core (``common.pxd``: the opcode, registers and opcode parts are C integers there), so
    the explorer and the transfer functions read them as struct fields.  Anything else
    (``is_lddw``, ``jump_offset()``...) is the original's, ``insn``."""

    __slots__ = ("opcode", "dst", "src", "off", "imm", "imm64", "cls", "op", "source", "size",
                 "mode", "insn", "kreg", "memo_a", "memo_b", "memo_r", "memo_looks",
                 "memo_hits", "call")

    def __init__(self, insn: isa.Insn):
        self.insn = insn
        self.opcode = insn.opcode
        self.dst = insn.dst
        self.src = insn.src
        self.off = insn.off
        self.imm = insn.imm
        self.imm64 = insn.imm64
        self.cls = insn.cls
        self.op = insn.op
        self.source = insn.source
        self.size = insn.size
        self.mode = insn.mode
        # the immediate as the constant register an ALU or jump with a K source reads:
        # zero-extended from 32 bits in ALU32 and JMP32, sign-extended otherwise
        wide = insn.cls != isa.ALU and insn.cls != isa.JMP32
        self.kreg = const_reg(insn.imm if wide else insn.imm & sc.U32)
        # The last result this instruction computed from two scalar values (the ALU
        # result register, or the conditional jump's scalar_cond tuple), and those two
        # values: a loop computes the same thing from the very same value objects on
        # every iteration, and an identity test is cheaper than hashing them for the
        # shared caches.  (The references keep the objects alive, so ``is`` cannot be
        # fooled by a reused address.)
        self.memo_a = self.memo_b = self.memo_r = None
        # this instruction's lookups in the shared caches and how many found their
        # answer there (shared_memo_pays)
        self.memo_looks = self.memo_hits = 0
        # a call instruction's calls._CallPlan, made at its first visit
        self.call = None

    def __getattr__(self, name: str):
        return getattr(self.insn, name)


#: lookups an instruction makes in the shared result caches before shared_memo_pays judges
_MEMO_TRIAL = 128


def shared_memo_pays(insn: _DInsn) -> bool:
    """Whether ``insn`` should keep looking its results up in the shared caches
    (transfer._ALU_MEMO, _COND_MEMO): until it has made _MEMO_TRIAL lookups, and after
    that while at least one in eight found its answer there.  A loop whose values are new
    each iteration (an accumulator, a growing range) only pays the hashing of two value
    tuples and the cache's refills there; paths that meet the same values again (branchy
    code) keep it.  Only the time changes: a result is the same computed or cached."""
    return insn.memo_looks < _MEMO_TRIAL or insn.memo_hits * 8 >= insn.memo_looks


class _Checkpoint:
    """A state stored at a prune point.  ``live`` counts the paths still being explored
    below it (it is ``done`` at zero); ``decided`` records that some path below it took
    only one side of a branch because of register values, so comparisons against it
    must be exact (see docs/verifier.md, "precision")."""

    __slots__ = ("state", "parent", "live", "done", "pc", "decided", "hit", "miss",
                 "loop_head")

    def __init__(self, state, parent, pc):
        self.state = state
        self.parent = parent
        self.live = 1
        self.done = False
        self.pc = pc
        self.decided = False
        self.hit = 0
        self.miss = 0
        # the unfinished may_goto state a path below this one was pruned against: while it
        # is unfinished, comparisons against this one use every range (explore.py)
        self.loop_head = None


_JMP_TO_CMP = {
    isa.JEQ: sc.EQ, isa.JNE: sc.NE, isa.JGT: sc.GT, isa.JGE: sc.GE, isa.JLT: sc.LT,
    isa.JLE: sc.LE, isa.JSGT: sc.SGT, isa.JSGE: sc.SGE, isa.JSLT: sc.SLT, isa.JSLE: sc.SLE,
    isa.JSET: sc.SET,
}
_SIGNED_CMP = {sc.SGT, sc.SGE, sc.SLT, sc.SLE}
_NOT_NULL_TYPES = {PTR_MAP_VALUE, PTR_MEM, PTR_TRUSTED, CONST_MAP}
#: Arg's and Ret's members as attributes of plain classes: on Python 3.11 every attribute
#: of an Enum class is looked up through EnumType.__getattr__'s slow hook (the call checks
#: compare kinds with them where the plan's C codes do not tell them apart, calls.py)
_ArgK = type("_ArgK", (), dict(Arg.__members__))
_RetK = type("_RetK", (), dict(Ret.__members__))
#: helpers that copy from an untyped source address (arg 3): see _check_raw_read_src
_RAW_READ_HELPERS = frozenset({
    "bpf_probe_read", "bpf_probe_read_str", "bpf_probe_read_kernel", "bpf_probe_read_user",
    "bpf_probe_read_kernel_str", "bpf_probe_read_user_str"})


def gc_paused(fn):
    """Run ``fn`` with Python's cyclic garbage collector paused (restored after).

    Exploring makes millions of short-lived tuples and registers, and thousands of
    checkpoint states stay alive; every few hundred allocations the collector would walk
    all of them (a fifth of the time of a long verification).  Nothing here makes
    reference cycles: reference counting frees it all the same."""
    @functools.wraps(fn)
    def paused(*args, **kwargs):
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()
    return paused


def map_ro(m) -> bool:
    """Whether programs may only read the values of map ``m`` (BPF_F_RDONLY_PROG)."""
    flags = getattr(m, "map_flags", None)
    if flags is None:
        flags = getattr(m, "flags", 0) or 0
    return bool(int(flags) & BPF_F_RDONLY_PROG)


def _flag(proto, name: str) -> str | None:
    """A kfunc flag, bare or with a ``:value`` / ``=value`` suffix (returns "" or the value)."""
    flags = proto.kfunc_flags
    if not flags:
        return None     # helpers: no flags (asked a dozen times per call instruction)
    fixed = isinstance(flags, frozenset)   # hashable and unchanging: its answers are too
    if fixed and (flags, name) in _FLAG_MEMO:
        return _FLAG_MEMO[flags, name]
    found = None
    for f in flags:
        if f == name:
            found = ""
            break
        for sep in (":", "="):
            if f.startswith(name + sep):
                found = f[len(name) + 1:]
        if found is not None:
            break
    if fixed:
        _FLAG_MEMO[flags, name] = found
    return found


#: _flag's answers by (kfunc flags, name)
_FLAG_MEMO: dict = {}


def _frozen_map_read(ptr: Reg, lo: Num, size: Num, signed: bool) -> Reg | None:
    """A load at a constant offset from a frozen, program-read-only, one-element array
    (``.rodata`` after ``BpfObject.load`` froze it) gives the constant stored there, as the
    kernel's verifier does: nobody can change those bytes any more, so sizes and offsets
    kept in ``.rodata`` verify like literals.  Anything else: None (an unknown value)."""
    m = ptr.obj
    if (not ptr.ro or not sc.is_const(ptr.var) or not getattr(m, "frozen", False)
            or getattr(m, "type", None) != 2 or getattr(m, "max_entries", 0) != 1
            or size not in (1, 2, 4, 8)):
        return None
    try:
        base = int(m.value_addr)
    except (MapError, AttributeError, TypeError):  # a closed map or no map: not a constant
        return None
    if not base:
        return None
    raw = int.from_bytes(ctypes.string_at(base + lo, size), "little", signed=signed)
    return const_reg(raw & sc.U64)


#: ``Reg.obj`` of memory returned by an ``ARENA_RET`` kfunc (bpf_arena_alloc_pages)
ARENA_MEM = "arena"


def _is_arena_ptr(reg: Reg) -> bool:
    """Arena memory is mapped into the user process too (user space reads its addresses
    from the map), so storing an arena address leaks nothing, like the kernel allows.
    The stored copy is a plain scalar: loading it back never gives a usable pointer.
    An arena pointer of the kernel's kind (PTR_ARENA, from an addr_space_cast) likewise,
    and arena memory before its NULL check (NULL or an arena address: no secret either;
    the kernel types bpf_arena_alloc_pages' result a plain number)."""
    return reg.t == PTR_ARENA or (reg.t == PTR_MEM and reg.obj is ARENA_MEM)


def _arena_castable(reg: Reg) -> bool:
    """What an addr_space_cast may convert: any number (the kernel's rule), an arena
    pointer, or arena memory from bpf_arena_alloc_pages (NULL too: the cast keeps 0).
    Other pointers are refused: their bits would become a storable arena value."""
    return reg.t in (SCALAR, PTR_ARENA) or (reg.t == PTR_MEM and reg.obj is ARENA_MEM)


def _obj_type_name(name: str) -> str:
    for suffix in ("_new", "_next", "_destroy"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _check_aligned(ptr: Reg, off: Num, size: Num, what: str) -> None:
    """``ptr + off`` must be a multiple of ``size`` for every value it may take (the
    kernel's check_generic_ptr_alignment; byte accesses are always aligned).  Stack
    offsets are relative to an aligned frame; other objects start aligned."""
    if size == 1:
        return
    v = ptr.var
    fixed = ptr.off + off
    if (v[4] | v[5]) & (size - 1) or fixed % size:
        var_text = str(sc.s64(v[4])) if sc.is_const(v) else f"({v[4]:#x}; {v[5]:#x})"
        raise _Reject(f"misaligned {what}access off {var_text}+{fixed} size {size}")


def _sized_unknown_value(size: int, signed: bool):
    bits = size * 8
    if bits >= 64:
        return sc.UNKNOWN
    if signed:
        return sc.srange(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return sc.urange(0, (1 << bits) - 1)


#: every load makes one of these: computed once
_SIZED_UNKNOWN = {(size, signed): _sized_unknown_value(size, signed)
                  for size in (1, 2, 4, 8) for signed in (False, True)}


def _sized_unknown(size: Num, signed: bool = False):
    """Any value of a ``size``-byte load (sign-extended when ``signed``)."""
    v = _SIZED_UNKNOWN.get((size, signed))
    return v if v is not None else _sized_unknown_value(size, signed)


#: the registers of those values (registers are immutable: one each is enough)
_SIZED_UNKNOWN_REGS = {key: Reg(SCALAR, v) for key, v in _SIZED_UNKNOWN.items()}


def _unknown_load(size: Num, signed: bool = False) -> Reg:
    """The register a ``size``-byte load of unknown memory gives: ``scalar(_sized_unknown())``."""
    r = _SIZED_UNKNOWN_REGS.get((size, signed))
    return r if r is not None else Reg(SCALAR, _sized_unknown_value(size, signed))


def _widened(old: Reg, cur: Reg) -> Reg:
    """A value that changed around a loop: forget it, but keep "fits in 32 bits" (so JMP32
    compares still refine it) and the id links of the current value."""
    if old.var[1] <= sc.U32 and cur.var[1] <= sc.U32:
        return Reg(SCALAR, sc.urange(0, sc.U32), id=cur.id if cur.id == LEN_ID else 0)
    return UNKNOWN_SCALAR


def _sdivmod(op: int, a: int, b: int, width: int) -> int:
    mask = (1 << width) - 1

    def sx(x):
        x &= mask
        return x - (1 << width) if x >> (width - 1) else x

    x, y = sx(a), sx(b)
    if op == isa.DIV:
        if y == 0:
            return 0
        q = abs(x) // abs(y)
        return (q if (x < 0) == (y < 0) else -q) & mask
    if y == 0:
        return x & mask
    r = abs(x) % abs(y)
    return (r if x >= 0 else -r) & mask


def _platform_in_effect() -> Platform:
    """The platform of a caller that passed none: the one made active with
    ``Platform.active()`` (the loader does), else the default platform."""
    active = helpers_mod.ACTIVE_PLATFORM.get()
    return active if active is not None else default_platform()
