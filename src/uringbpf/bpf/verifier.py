"""The verifier: refuse every unsafe program before it runs, with a kernel-style log.

It works like the Linux verifier (see docs/verifier.md): after static checks of the
instructions and the control-flow graph (``verifier_cfg``), it explores every path of
the program with an abstract state per path (``verifier_state``: typed registers,
a byte-precise stack, acquired references) whose scalars carry ranges and known bits
(``verifier_scalar``).  Conditional jumps refine the ranges, so an index proven in
bounds is accepted.  Paths are pruned when they reach an instruction in a state
covered by one already proven safe there; bounded loops are simply followed until
they exit, with an instruction budget (1M, as the kernel) that stops runaway loops.

Public API: :func:`verify`, :class:`VerifierResult`, :class:`BpfVerifierError`,
:func:`main_verify` (the ``uringbpf verify`` command).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import helpers as helpers_mod
from . import isa, progtypes
from ..errors import BpfLoadError, ProgTypeError
from . import btf as _btf
from .platform import Platform, default_platform
from . import verifier_scalar as sc
from .helpers import Arg, Ret
from .verifier_cfg import CALLER_SAVED, Cfg, CfgError
from .verifier_disasm import insn_text
from .verifier_state import (
    CONST_MAP, NOT_INIT, PTR_BUF, PTR_CTX, PTR_FUNC, PTR_MAP_VALUE, PTR_MEM, PTR_STACK,
    PTR_TRUSTED, SCALAR, SLOT_UNINIT, UNINIT, UNKNOWN_SCALAR, Frame, ObjSlot, Reg, State,
    const_reg, iter_depths_differ, scalar, state_subsumes, states_equal,
)

MAX_INSNS_PROCESSED = 1_000_000
MAX_VAR_OFF = 1 << 29
LEN_ID = 1                      # scalar id of the data-buffer length (r2 of "buffer" programs)
BPF_F_RDONLY_PROG = 1 << 7
_MAP_TYPE_ARRAY = 2
LOG_LIMIT = 4_000_000           # characters kept in the log (like the kernel's log buffer)


from ..errors import BpfVerifierError  # noqa: E402,F401  (defined in uringbpf.errors)


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


class _Reject(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class _Checkpoint:
    """A state stored at a prune point.  ``live`` counts the paths still being explored
    below it (it is ``done`` at zero); ``decided`` records that some path below it took
    only one side of a branch because of register values, so comparisons against it
    must be exact (see docs/verifier.md, "precision")."""

    __slots__ = ("state", "parent", "live", "done", "pc", "decided", "hit", "miss")

    def __init__(self, state, parent, pc):
        self.state = state
        self.parent = parent
        self.live = 1
        self.done = False
        self.pc = pc
        self.decided = False
        self.hit = 0
        self.miss = 0


_JMP_TO_CMP = {
    isa.JEQ: sc.EQ, isa.JNE: sc.NE, isa.JGT: sc.GT, isa.JGE: sc.GE, isa.JLT: sc.LT,
    isa.JLE: sc.LE, isa.JSGT: sc.SGT, isa.JSGE: sc.SGE, isa.JSLT: sc.SLT, isa.JSLE: sc.SLE,
    isa.JSET: sc.SET,
}
_SIGNED_CMP = {sc.SGT, sc.SGE, sc.SLT, sc.SLE}
_NOT_NULL_TYPES = {PTR_MAP_VALUE, PTR_MEM, PTR_TRUSTED, CONST_MAP}
_MEM_ARGS = {Arg.MEM, Arg.UNINIT_MEM, Arg.MEM_OR_NULL}
_SIZE_ARGS = {Arg.CONST_SIZE, Arg.CONST_SIZE_OR_ZERO}
#: helpers that copy from an untyped source address (arg 3): see _check_raw_read_src
_RAW_READ_HELPERS = frozenset({
    "bpf_probe_read", "bpf_probe_read_str", "bpf_probe_read_kernel", "bpf_probe_read_user",
    "bpf_probe_read_kernel_str", "bpf_probe_read_user_str"})


def _flag(proto, name: str) -> str | None:
    """A kfunc flag, bare or with a ``:value`` / ``=value`` suffix (returns "" or the value)."""
    for f in proto.kfunc_flags:
        if f == name:
            return ""
        for sep in (":", "="):
            if f.startswith(name + sep):
                return f[len(name) + 1:]
    return None


def _frozen_map_read(ptr: Reg, lo: int, size: int, signed: bool) -> Reg | None:
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
    except Exception:  # noqa: BLE001 - a closed or unusual map: just not a constant
        return None
    if not base:
        return None
    import ctypes
    raw = int.from_bytes(ctypes.string_at(base + lo, size), "little", signed=signed)
    return const_reg(raw & sc.U64)


#: ``Reg.obj`` of memory returned by an ``ARENA_RET`` kfunc (bpf_arena_alloc_pages)
ARENA_MEM = "arena"


def _is_arena_ptr(reg: Reg) -> bool:
    """Arena memory is mapped into the user process too (user space reads its addresses
    from the map), so storing an arena address leaks nothing, like the kernel allows.
    The stored copy is a plain scalar: loading it back never gives a usable pointer."""
    return reg.t == PTR_MEM and reg.obj is ARENA_MEM and not reg.null


def _obj_type_name(name: str) -> str:
    for suffix in ("_new", "_next", "_destroy"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _check_aligned(ptr: Reg, off: int, size: int, what: str) -> None:
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


def _sized_unknown(size: int, signed: bool = False):
    bits = size * 8
    if bits >= 64:
        return sc.UNKNOWN
    if signed:
        return sc.srange(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return sc.urange(0, (1 << bits) - 1)


class Verifier:
    def __init__(self, program: isa.Program, ptype: progtypes.ProgType, log_level: int = 0,
                 max_insns: int = MAX_INSNS_PROCESSED, platform: Platform | None = None):
        self.program = program
        self.platform = platform if platform is not None else _platform_in_effect()
        self.insns = program.insns
        self.ptype = ptype
        self.log_level = log_level
        self.max_insns = max_insns
        self.sleepable = progtypes.is_sleepable(program, ptype)
        self.log_lines: list[str] = []
        self.log_size = 0
        self.next_id = LEN_ID + 1
        self.processed = 0
        self.total_states = 0
        self.cur_states = 0
        self.peak_states = 0
        self.stack_depth: dict[int, int] = {}
        self.explored: dict[int, list[_Checkpoint]] = {}
        self.visits: dict[int, int] = {}
        self.iter_next_pcs: set[int] = set()
        self._iter_next_arg: dict[int, int] = {}
        self._new_dynptr_parent = 0
        self.global_funcs: dict[int, _GlobalFunc] = {}
        self._in_global: int | None = None   # entry of the global function being verified
        # False: explore every path (no state pruning); the pruning fuzzer compares
        # verdicts with and without it (bench/fuzz_verifier.py --pruning)
        self.prune = True
        self.callback_entries: set[int] = set()
        self.cfg: Cfg | None = None
        self.pc = 0
        self.state: State | None = None

    # ------------------------------------------------------------ logging

    def log(self, line: str) -> None:
        if self.log_size < LOG_LIMIT:
            self.log_lines.append(line)
            self.log_size += len(line) + 1

    def insn_line(self, pc: int) -> str:
        insn = self.insns[pc]
        return f"{pc}: ({insn.opcode:02x}) {insn_text(insn, pc)}"

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # ------------------------------------------------------------ helpers lookups

    def _callee(self, insn: isa.Insn):
        """The helper or kfunc a call instruction names (None: unknown), from the platform."""
        if insn.src == isa.CALL_HELPER:
            return self.platform.get_helper(insn.imm)
        if insn.src == isa.PSEUDO_KFUNC_CALL:
            if not 0 <= insn.imm < len(self.program.kfuncs):
                return None
            return self.platform.get_kfunc(self.program.kfuncs[insn.imm])
        return None

    def _proto_for_call(self, insn: isa.Insn):
        h = self._callee(insn)
        return None if h is None else h.proto

    def _arg_count(self, insn: isa.Insn) -> int:
        proto = self._proto_for_call(insn)
        return 5 if proto is None else min(5, len(proto.args))

    # ------------------------------------------------------------ entry

    def run(self) -> VerifierResult:
        try:
            self.cfg = Cfg(self.program, self._arg_count, self.ptype.ret_range is not None)
        except CfgError as exc:
            self.pc = exc.pc
            self.log(str(exc))
            raise BpfVerifierError(str(exc), self._final_log(), exc.pc) from None
        for pc, insn in enumerate(self.insns):
            if insn.is_call and insn.src != isa.PSEUDO_CALL and not self.cfg.second_slot[pc]:
                proto = self._proto_for_call(insn)
                if proto is None:
                    # refused even in code no path reaches: the engines compile all of it
                    self.pc = pc
                    msg = (f"invalid func unknown#{insn.imm}" if insn.src == isa.CALL_HELPER else
                           f"calling kernel function {self.program.kfuncs[insn.imm]} is not allowed")
                    self.log(self.insn_line(pc))
                    self.log(msg)
                    raise BpfVerifierError(msg, self._final_log(), pc)
                it = _flag(proto, "ITER_NEXT")
                if it is not None:
                    self.iter_next_pcs.add(pc)
                    self._iter_next_arg[pc] = int(it or 0)
        for pc, insn in enumerate(self.insns):
            if insn.is_lddw and insn.src == isa.PSEUDO_FUNC and not self.cfg.second_slot[pc]:
                self.iter_next_pcs.add(pc + insn.imm + 1)   # callback entries loop like next()
                self.callback_entries.add(pc + insn.imm + 1)
        self.prune_points = self.cfg.jump_targets | self.cfg.cond_fallthrough | self.iter_next_pcs
        st = self._entry_state()
        try:
            self.global_funcs = self._find_global_funcs()
            self._explore(st)
            for entry in sorted(self.global_funcs):
                self._verify_global_func(entry)
            self._check_stack_chain()
        except _Reject as exc:
            self.log(self.insn_line(self.pc) if 0 <= self.pc < len(self.insns) else "")
            self.log(exc.message)
            if self.state is not None:
                try:
                    self.log(f"{self.pc}: {self.state.fmt_regs()}")
                except Exception:  # pragma: no cover - formatting must never mask the error
                    pass
            raise BpfVerifierError(exc.message, self._final_log(), self.pc) from None
        result = VerifierResult(self.processed, self.total_states, self.peak_states,
                                max((len(v) for v in self.explored.values()), default=0),
                                self.max_stack, dict(self.stack_depth), self.ptype.name)
        self.log(result.stats_line())
        result.log = "\n".join(self.log_lines) + "\n"
        return result

    def _final_log(self) -> str:
        self.log(f"processed {self.processed} insns (limit {self.max_insns}) "
                 f"max_states_per_insn {max((len(v) for v in self.explored.values()), default=0)} "
                 f"total_states {self.total_states} peak_states {self.peak_states} mark_read 0")
        return "\n".join(self.log_lines) + "\n"

    def _entry_state(self) -> State:
        st = State()
        f = Frame(0, 0, -1)
        f.regs[10] = Reg(PTR_STACK, frame=0)
        pt = self.ptype
        if pt.ctx in ("struct", "args") and pt.layout is not None:
            f.regs[1] = Reg(PTR_CTX, obj=pt.layout)
        elif pt.ctx == "buffer":
            f.regs[1] = Reg(PTR_BUF, ro=not pt.buffer_writable)
            f.regs[2] = Reg(SCALAR, sc.urange(0, sc.U32), id=LEN_ID)
            st.buf_min = pt.buffer_min_size
        st.frames.append(f)
        return st

    # ------------------------------------------------------------ exploration

    def _explore(self, st: State, start: int = 0) -> None:
        stack: list[tuple[int, State]] = [(start, st)]
        self._dfs = stack
        insns = self.insns
        prune_points = self.prune_points
        log_level = self.log_level
        while stack:
            pc, st = stack.pop()
            self.state = st
            if log_level:
                self.log(f"from branch to {pc}: {st.fmt_regs()}")
            while True:
                self.pc = pc
                self.processed += 1
                if self.processed > self.max_insns:
                    raise _Reject(f"BPF program is too large. Processed {self.processed} insn")
                if pc in prune_points and self.prune:
                    if self._is_state_visited(pc, st):
                        if log_level:
                            self.log(f"{pc}: safe")
                        self._path_end(st)
                        break
                insn = insns[pc]
                if log_level:
                    self.log(self.insn_line(pc))
                cls = insn.cls
                if cls == isa.ALU64 or cls == isa.ALU:
                    self._do_alu(st, insn)
                    pc += 1
                elif cls == isa.LDX:
                    self._do_ldx(st, insn)
                    pc += 1
                elif cls == isa.STX or cls == isa.ST:
                    self._do_store(st, insn)
                    pc += 1
                elif cls == isa.LD:
                    self._do_lddw(st, insn, pc)
                    pc += 2
                else:
                    op = insn.op
                    if op == isa.JA:
                        pc += insn.jump_offset() + 1
                    elif op == isa.EXIT:
                        nxt = self._do_exit(st)
                        if nxt is None:
                            self._path_end(st)
                            break
                        pc = nxt
                    elif op == isa.CALL:
                        pc = self._do_call(st, insn, pc)
                    else:
                        branches = self._do_cond_jump(st, insn, pc)
                        if not branches:  # pragma: no cover - both edges impossible
                            self._path_end(st)
                            break
                        if len(branches) == 2:
                            (pc, st), other = branches[0], branches[1]
                            if st.checkpoint is not None:
                                st.checkpoint.live += 1
                            stack.append(other)
                        else:
                            pc, st = branches[0]
                        self.state = st
                if log_level >= 2:
                    self.log(f"{pc}: {st.fmt_regs()}")

    def _path_end(self, st: State) -> None:
        c = st.checkpoint
        while c is not None:
            c.live -= 1
            if c.live > 0:
                break
            c.done = True
            self.cur_states -= 1
            c = c.parent

    def _live_masks(self, st: State, pc: int) -> list[int]:
        live = self.cfg.live_in
        masks = []
        for f in st.frames[:-1]:
            masks.append(live[f.callsite + 1] & ~CALLER_SAVED)
        masks.append(live[pc])
        return masks

    def _is_state_visited(self, pc: int, st: State) -> bool:
        masks = self._live_masks(st, pc)
        lst = self.explored.get(pc)
        iter_point = pc in self.iter_next_pcs
        if lst:
            evict = False
            for cp in lst:
                if cp.done:
                    prec = (self.cfg.precise_branch_in if cp.decided else self.cfg.precise_in)[pc]
                    impr = [0] * (len(masks) - 1) + [masks[-1] & ~prec]
                    ok = state_subsumes(cp.state, st, masks, impr)
                    if ok:
                        cp.hit += 1
                        if cp.decided:  # what was proven below cp relied on decided branches
                            self._mark_decided(st)
                        return True
                else:
                    # at an iterator's next() (or a callback entry), a state covered by an
                    # unfinished one converges, but only while the iterator is still
                    # active: a drained one returns NULL forever (the kernel's rule)
                    if (iter_point and state_subsumes(cp.state, st, masks)
                            and self._loop_point_converges(st, pc)):
                        self._mark_decided(st)
                        return True
                    if (cp.state.cb_steps == st.cb_steps and not iter_depths_differ(cp.state, st)
                            and states_equal(cp.state, st, masks)
                            and self._is_ancestor(cp, st.checkpoint)):
                        raise _Reject(f"infinite loop detected at insn {pc}")
                cp.miss += 1
                if cp.miss > cp.hit * 3 + 3:
                    evict = True
            if evict and not iter_point:
                lst[:] = [cp for cp in lst if cp.miss <= cp.hit * 3 + 3]
            if iter_point and pc in self.callback_entries:
                self._widen(st, pc, st.checkpoint)
        else:
            lst = self.explored[pc] = []
        visits = self.visits.get(pc, 0) + 1
        self.visits[pc] = visits
        if len(lst) >= 64 and visits % 8:
            return False
        snapshot = st.copy()
        snapshot.checkpoint = None
        cp = _Checkpoint(snapshot, st.checkpoint, pc)
        st.checkpoint = cp
        lst.append(cp)
        self.total_states += 1
        self.cur_states += 1
        if self.cur_states > self.peak_states:
            self.peak_states = self.cur_states
        return False

    def _loop_point_converges(self, st: State, pc: int) -> bool:
        if pc in self.callback_entries:
            return True
        obj = self._iter_obj(st, st.cur.regs[1 + int(self._iter_next_arg.get(pc, 0))])
        return obj is not None and obj.state == "active"

    @staticmethod
    def _stack_obj_at(st: State, reg: Reg) -> ObjSlot | None:
        if reg.t != PTR_STACK or not sc.is_const(reg.var) or reg.frame >= len(st.frames):
            return None
        slot = st.frames[reg.frame].stack.get((-(reg.off + sc.s64(reg.var[4])) - 1) // 8)
        return slot[1] if slot is not None and slot[0] == "O" else None

    @staticmethod
    def _invalidate_slices(st: State, dyn_id: int) -> None:
        if not dyn_id:
            return
        for f, where, r in list(st.all_regs()):
            if r.dyn == dyn_id:
                st.set_reg_anywhere(f, where, UNINIT)

    def _invalidate_iter_children(self, st: State, iter_ref: int) -> None:
        """Dynptrs made from an iterator's current element (and their slices) are
        destroyed when the iterator moves on or goes away."""
        if not iter_ref:
            return
        for f in st.frames:
            for k, slot in list(f.stack.items()):
                if slot[0] == "O" and slot[1].kind == "dynptr" and slot[1].parent == iter_ref:
                    f.stack[k] = SLOT_UNINIT
                    self._invalidate_slices(st, slot[1].id)

    @staticmethod
    def _iter_obj(st: State, reg: Reg) -> ObjSlot | None:
        if reg.t != PTR_STACK or not sc.is_const(reg.var) or reg.frame >= len(st.frames):
            return None
        slot = st.frames[reg.frame].stack.get((-(reg.off + sc.s64(reg.var[4])) - 1) // 8)
        if slot is None or slot[0] != "O" or slot[1].kind != "iter":
            return None
        return slot[1]

    def _iter_next_fork(self, st: State, ireg: Reg, pc: int) -> None:
        """next() of an active iterator: one path gets an element (active, depth + 1,
        non-NULL r0), this one the end (drained, r0 = 0).  A drained iterator only ends."""
        obj = self._iter_obj(st, ireg)
        if obj is None:  # pragma: no cover - checked by _stack_object_arg
            return
        r0 = st.cur.regs[0]
        if obj.state == "active":
            active = st.copy()
            if active.checkpoint is not None:
                active.checkpoint.live += 1
            self._replace_obj(active.frames[ireg.frame], obj, obj.replace(depth=obj.depth + 1))
            active.cur.regs[0] = r0.replace(null=False, id=0) if r0.is_ptr else UNKNOWN_SCALAR
            cp = active.checkpoint
            self._widen(active, pc, cp.parent if cp is not None and cp.pc == pc else cp, obj, ireg.frame)
            self._dfs.append((pc + 1, active))
        self._replace_obj(st.frames[ireg.frame], obj, obj.replace(state="drained"))
        st.cur.regs[0] = const_reg(0)

    @staticmethod
    def _replace_obj(frame: Frame, old: ObjSlot, new: ObjSlot) -> None:
        for k in range(old.first, old.first - old.nslots, -1):
            frame.stack[k] = ("O", new)

    @staticmethod
    def _same_loop(old: State, cur: State, callback_entry: bool) -> bool:
        """Is ``old`` an earlier iteration of the same loop instance as ``cur``?  (An
        iterator created anew, or a new bpf_loop call, starts a fresh instance whose
        first iteration must not be widened against the previous instance's.)"""
        fo, fc = old.cur, cur.cur
        if callback_entry:
            return fo.callback == fc.callback
        ro, rc = fo.regs[1], fc.regs[1]
        if ro.t == PTR_STACK and rc.t == PTR_STACK and ro.frame == rc.frame:
            k = (-(ro.off + sc.s64(ro.var[4])) - 1) // 8
            so = old.frames[ro.frame].stack.get(k)
            scur = cur.frames[rc.frame].stack.get(k)
            if so is not None and scur is not None and so[0] == "O" and scur[0] == "O":
                return so[1].ref == scur[1].ref
        return False

    @staticmethod
    def _mark_decided(st: State) -> None:
        c = st.checkpoint
        while c is not None and not c.decided:
            c.decided = True
            c = c.parent

    @staticmethod
    def _is_ancestor(cp: _Checkpoint, c: _Checkpoint | None) -> bool:
        while c is not None:
            if c is cp:
                return True
            c = c.parent
        return False

    def _widen(self, st: State, pc: int, cp: _Checkpoint | None, iter_obj: ObjSlot | None = None,
               iter_frame: int = 0) -> None:
        """On the path where an active iterator's next() returned an element (or at a
        callback entry), forget scalar values that changed since an earlier visit of the
        same loop, so the loop body converges (the iterator, not the verifier, bounds the
        number of iterations; the kernel's widen_imprecise_scalars).  The drained path
        keeps its values: nothing bounds a loop around it."""
        # the nearest ancestor at this instruction, from ``cp`` up: the previous iteration
        while cp is not None and cp.pc != pc:
            cp = cp.parent
        if cp is not None and not cp.done:
            old = cp.state
            if len(old.frames) != len(st.frames):
                return
            if iter_obj is not None:
                # the same iterator instance (not a new one made in the same slots)
                so = old.frames[iter_frame].stack.get(iter_obj.first)
                if so is None or so[0] != "O" or so[1].ref != iter_obj.ref:
                    return
            elif not self._same_loop(old, st, cp.pc in self.callback_entries):
                return
            for fo, fc in zip(old.frames, st.frames):
                for i in range(10):
                    ro, rc = fo.regs[i], fc.regs[i]
                    if ro.t == SCALAR and rc.t == SCALAR and ro.var != rc.var:
                        fc.regs[i] = _widened(ro, rc)
                for k, slot in list(fc.stack.items()):
                    so = fo.stack.get(k)
                    if so is None or so[0] != slot[0]:
                        continue
                    if (slot[0] == "S" and slot[1].t == SCALAR and so[1].t == SCALAR
                            and slot[1].var != so[1].var):
                        fc.stack[k] = ("S", _widened(so[1], slot[1]))
                    elif slot[0] == "H" and slot[2] != so[2]:
                        halves = tuple(
                            None if h is None else h if (o is not None and o.var == h.var)
                            else scalar(sc.urange(0, sc.U32)) for o, h in zip(so[2], slot[2]))
                        fc.stack[k] = ("H", slot[1], halves)
            return

    # ------------------------------------------------------------ registers

    def read_reg(self, st: State, regno: int) -> Reg:
        r = st.cur.regs[regno]
        if r.t == NOT_INIT:
            raise _Reject(f"R{regno} !read_ok")
        return r

    def write_reg(self, st: State, regno: int, reg: Reg) -> None:
        if regno == 10:
            raise _Reject("frame pointer is read only")
        st.cur.regs[regno] = reg

    # ------------------------------------------------------------ ALU

    def _do_alu(self, st: State, insn: isa.Insn) -> None:
        is64 = insn.cls == isa.ALU64
        op = insn.op
        dst = insn.dst
        if dst == 10:
            raise _Reject("frame pointer is read only")
        if op == isa.END:
            r = self.read_reg(st, dst)
            if r.t != SCALAR:
                raise _Reject(f"R{dst} pointer arithmetic with byte swap prohibited")
            bits = insn.imm
            if is64 or insn.source == isa.TO_BE:
                v = sc.bswap(r.var, bits)
            else:
                v = sc.truncate(r.var, bits)
            st.cur.regs[dst] = scalar(v)
            return
        if op == isa.NEG:
            r = self.read_reg(st, dst)
            if r.t != SCALAR:
                raise _Reject(f"R{dst} pointer arithmetic with neg operator prohibited")
            v = sc.alu_neg(r.var) if is64 else sc.wrap32(sc.alu_neg(sc.trunc32(r.var)))
            st.cur.regs[dst] = scalar(v)
            return
        if insn.source == isa.X:
            src = self.read_reg(st, insn.src)
        else:
            src = const_reg(insn.imm if is64 else insn.imm & sc.U32)
        if op == isa.MOV:
            self._do_mov(st, insn, src, is64)
            return
        d = self.read_reg(st, dst)
        if d.t != SCALAR or src.t != SCALAR:
            st.cur.regs[dst] = self._ptr_alu(insn, d, src, is64)
            return
        a, b = d.var, src.var
        if not is64:
            a, b = sc.trunc32(a), sc.trunc32(b)
        signed = insn.off == 1 and op in (isa.DIV, isa.MOD)
        width = 64 if is64 else 32
        if signed:
            v = sc.UNKNOWN
            if sc.is_const(a) and sc.is_const(b):
                v = sc.const(_sdivmod(op, a[4], b[4], width))
        elif op == isa.ADD:
            v = sc.alu_add(a, b)
        elif op == isa.SUB:
            v = sc.alu_sub(a, b)
        elif op == isa.MUL:
            v = sc.alu_mul(a, b)
        elif op == isa.DIV:
            v = sc.alu_div(a, b)
        elif op == isa.MOD:
            v = sc.alu_mod(a, b)
        elif op == isa.AND:
            v = sc.alu_and(a, b)
        elif op == isa.OR:
            v = sc.alu_or(a, b)
        elif op == isa.XOR:
            v = sc.alu_xor(a, b)
        elif op in (isa.LSH, isa.RSH, isa.ARSH):
            if sc.is_const(b) and b[4] < width:
                k = b[4]
                if op == isa.LSH:
                    v = sc.alu_lsh(a, k, width)
                elif op == isa.RSH:
                    v = sc.alu_rsh(a, k)
                elif is64:
                    v = sc.alu_arsh(a, k)
                else:
                    v = sc.alu_arsh(sc.sext32(a), k)
            elif op == isa.RSH:
                v = sc.urange(0, a[1])
            else:
                v = sc.UNKNOWN
        else:  # pragma: no cover - rejected by the field checks
            raise _Reject(f"unknown ALU op {op:#x}")
        if not is64:
            v = sc.wrap32(v)
        st.cur.regs[dst] = scalar(v)

    def _do_mov(self, st: State, insn: isa.Insn, src: Reg, is64: bool) -> None:
        dst = insn.dst
        if insn.source == isa.K:
            st.cur.regs[dst] = src
            return
        if insn.off:  # movsx
            if src.t != SCALAR:
                raise _Reject(f"R{insn.src} sign-extension of a pointer prohibited")
            v = sc.sext(src.var, insn.off)
            st.cur.regs[dst] = scalar(v if is64 else sc.wrap32(sc.trunc32(v)))
            return
        if is64:
            if src.t == SCALAR and src.id == 0 and not sc.is_const(src.var):
                src = src.replace(id=self.new_id())
                st.cur.regs[insn.src] = src
            st.cur.regs[dst] = src
            return
        if src.t != SCALAR:
            raise _Reject(f"R{insn.src} partial copy of pointer")
        if sc.fits_u32(src.var):
            if src.id == 0 and not sc.is_const(src.var):
                src = src.replace(id=self.new_id())
                st.cur.regs[insn.src] = src
            st.cur.regs[dst] = src
        else:
            st.cur.regs[dst] = scalar(sc.trunc32(src.var))

    def _ptr_alu(self, insn: isa.Insn, d: Reg, s: Reg, is64: bool) -> Reg:
        op = insn.op
        regno = insn.dst
        opname = isa.ALU_OP_NAMES.get(op, "?")
        if not is64:
            raise _Reject(f"R{regno} 32-bit pointer arithmetic prohibited")
        if d.is_ptr and s.is_ptr:
            if op == isa.SUB and d.t == s.t and d.t in (PTR_STACK, PTR_MAP_VALUE, PTR_MEM, PTR_BUF) \
                    and d.obj is s.obj and d.frame == s.frame and not d.null and not s.null:
                return UNKNOWN_SCALAR
            if op in (isa.ADD, isa.SUB):
                raise _Reject(f"R{regno} pointer {opname} pointer prohibited")
            raise _Reject(f"R{regno} pointer arithmetic with {opname} operator prohibited")
        if op == isa.ADD and s.is_ptr:
            d, s = s, d
        elif op == isa.SUB and s.is_ptr:
            raise _Reject(f"R{regno} tried to subtract pointer from scalar")
        elif op not in (isa.ADD, isa.SUB) or s.is_ptr:
            raise _Reject(f"R{regno} pointer arithmetic with {opname} operator prohibited")
        if op == isa.SUB and d.t == PTR_STACK:
            # the kernel's rule ("invalid fp arithmetic"): add a negative offset instead
            raise _Reject(f"R{regno} subtraction from stack pointer prohibited")
        if d.null:
            raise _Reject(f"R{regno} pointer arithmetic on {d.type_name()} prohibited, null-check it first")
        if d.t in (CONST_MAP, PTR_FUNC, PTR_TRUSTED):
            raise _Reject(f"R{regno} pointer arithmetic on {d.type_name()} prohibited")
        if d.t == PTR_CTX and not s.is_const:
            raise _Reject(f"R{regno} variable offset on ctx pointer prohibited")
        if s.is_const:
            k = sc.s64(s.value)
            off = d.off + k if op == isa.ADD else d.off - k
            if not -MAX_VAR_OFF < off < MAX_VAR_OFF:
                raise _Reject(f"R{regno} pointer offset {off} is not allowed")
            return d.replace(off=off, id=0)
        var = sc.alu_add(d.var, s.var) if op == isa.ADD else sc.alu_sub(d.var, s.var)
        return d.replace(var=var, id=0)

    # ------------------------------------------------------------ lddw

    def _do_lddw(self, st: State, insn: isa.Insn, pc: int) -> None:
        dst = insn.dst
        if dst == 10:
            raise _Reject("frame pointer is read only")
        src = insn.src
        if src == 0:
            st.cur.regs[dst] = const_reg(insn.imm64)
        elif src == isa.PSEUDO_MAP_IDX:
            st.cur.regs[dst] = Reg(CONST_MAP, obj=self.program.maps[insn.imm])
        elif src == isa.PSEUDO_MAP_IDX_VALUE:
            m = self.program.maps[insn.imm]
            off = isa.to_s32(self.insns[pc + 1].imm)
            vs = getattr(m, "value_size", 0)
            if not 0 <= off < max(vs, 1):
                raise _Reject(f"invalid access to map value pointer, value_size={vs} off={off}")
            st.cur.regs[dst] = Reg(PTR_MAP_VALUE, off=off, obj=m, ro=self._map_ro(m))
        elif src == isa.PSEUDO_FUNC:
            st.cur.regs[dst] = Reg(PTR_FUNC, size=pc + insn.imm + 1)

    @staticmethod
    def _map_ro(m) -> bool:
        flags = getattr(m, "map_flags", None)
        if flags is None:
            flags = getattr(m, "flags", 0) or 0
        return bool(int(flags) & BPF_F_RDONLY_PROG)

    # ------------------------------------------------------------ memory

    def _do_ldx(self, st: State, insn: isa.Insn) -> None:
        size = isa.SIZE_BYTES[insn.size]
        ptr = self.read_reg(st, insn.src)
        signed = insn.mode == isa.MEMSX
        val = self._mem_access(st, ptr, insn.src, insn.off, size, write=False, signed=signed)
        self.write_reg(st, insn.dst, val)

    def _do_store(self, st: State, insn: isa.Insn) -> None:
        size = isa.SIZE_BYTES[insn.size]
        ptr = self.read_reg(st, insn.dst)
        if insn.cls == isa.ST:
            value = const_reg(insn.imm)
        else:
            value = self.read_reg(st, insn.src)
        if insn.cls == isa.STX and insn.mode == isa.ATOMIC:
            self._do_atomic(st, insn, ptr, value, size)
            return
        self._mem_access(st, ptr, insn.dst, insn.off, size, write=True, value=value, value_regno=insn.src)

    def _do_atomic(self, st: State, insn: isa.Insn, ptr: Reg, value: Reg, size: int) -> None:
        if value.t != SCALAR:
            raise _Reject(f"R{insn.src} leaks addr into mem")
        if ptr.t not in (PTR_STACK, PTR_MAP_VALUE, PTR_MEM, PTR_BUF):
            raise _Reject(f"BPF_ATOMIC stores into R{insn.dst} {ptr.type_name()} is not allowed")
        # atomics are aligned on every kind of memory (the kernel's strict_alignment_once)
        _check_aligned(ptr, insn.off, size, {PTR_STACK: "stack ", PTR_MAP_VALUE: "",
                                             PTR_MEM: "", PTR_BUF: "packet "}[ptr.t])
        if insn.imm == isa.CMPXCHG:
            r0 = self.read_reg(st, 0)
            if r0.t != SCALAR:
                raise _Reject("R0 leaks addr into mem")
        if ptr.t == PTR_STACK:
            # The kernel lets a privileged loader do this; here a fetch or an xchg on a
            # spilled pointer would hand the program its address as a scalar, and any
            # atomic op would turn the slot into a forged pointer-sized scalar (#13 item 4).
            frame = self._frame_of(st, ptr)
            lo, hi = self._bounds(ptr, insn.dst, insn.off, size)
            for o in range(max(lo, -isa.STACK_SIZE), min(hi, 0)):
                if self._byte_kind(frame, o) in "po":
                    raise _Reject(f"BPF_ATOMIC on the spilled pointer at fp{o} is not allowed "
                                  "(it would leak the pointer)")
        # an atomic op reads the old value, then writes an unknown one
        self._mem_access(st, ptr, insn.dst, insn.off, size, write=False)
        self._mem_access(st, ptr, insn.dst, insn.off, size, write=True, value=UNKNOWN_SCALAR,
                         value_regno=insn.src)
        result = scalar(_sized_unknown(size))
        if insn.imm == isa.CMPXCHG:
            st.cur.regs[0] = result
        elif insn.imm & isa.FETCH:
            self.write_reg(st, insn.src, result)

    def _bounds(self, ptr: Reg, regno: int, off: int, size: int) -> tuple[int, int]:
        """Lowest and highest byte offsets (relative to the object) an access may touch."""
        v = ptr.var
        if v[2] <= -MAX_VAR_OFF or v[3] >= MAX_VAR_OFF:
            if v[2] < 0:
                raise _Reject(f"R{regno} min value is negative, either use unsigned index or do a if (index >=0) check.")
            raise _Reject(f"R{regno} unbounded memory access, make sure to bounds check any such access")
        lo = ptr.off + off + v[2]
        hi = ptr.off + off + v[3] + size
        return lo, hi

    def _mem_access(self, st: State, ptr: Reg, regno: int, off: int, size: int, write: bool,
                    value: Reg | None = None, value_regno: int = -1, signed: bool = False) -> Reg | None:
        t = ptr.t
        if ptr.null:
            raise _Reject(f"R{regno} invalid mem access '{ptr.type_name()}'")
        if t == PTR_STACK:
            # the kernel requires aligned stack accesses for every loader (its spill
            # tracking relies on it); other memory only for atomics (_do_atomic)
            _check_aligned(ptr, off, size, "stack ")
            return self._stack_access(st, ptr, regno, off, size, write, value, value_regno, signed)
        if write and value is not None and value.is_ptr:
            if t == PTR_CTX or not _is_arena_ptr(value):
                raise _Reject(f"R{value_regno} leaks addr into {'ctx' if t == PTR_CTX else 'mem'}")
            value = UNKNOWN_SCALAR   # an arena address is stored as plain data (see _is_arena_ptr)
        if t == PTR_CTX:
            return self._ctx_access(ptr, regno, off, size, write, signed)
        if t == PTR_MAP_VALUE:
            vs = getattr(ptr.obj, "value_size", 0)
            lo, hi = self._bounds(ptr, regno, off, size)
            if lo < 0 or hi > vs:
                if sc.is_const(ptr.var):
                    raise _Reject(f"invalid access to map value, value_size={vs} off={lo} size={size}")
                if lo < 0:
                    raise _Reject(f"R{regno} min value is outside of the allowed memory range")
                raise _Reject(f"R{regno} max value is outside of the allowed memory range")
            if write and ptr.ro:
                raise _Reject(f"write into map forbidden, value_size={vs} off={lo} size={size}")
            if not write:
                known = _frozen_map_read(ptr, lo, size, signed)
                if known is not None:
                    return known
        elif t == PTR_MEM:
            lo, hi = self._bounds(ptr, regno, off, size)
            if lo < 0 or hi > ptr.size:
                raise _Reject(f"invalid access to memory, mem_size={ptr.size} off={lo} size={size}")
            if write and ptr.ro:
                raise _Reject(f"R{regno} cannot write into rdonly_mem")
        elif t == PTR_BUF:
            lo, hi = self._bounds(ptr, regno, off, size)
            if lo < 0 or hi > st.buf_min:
                raise _Reject(f"invalid access to packet, off={lo} size={size}, R{regno}(r={st.buf_min}): "
                              f"compare the length (r2) against {hi} before the access")
            if write and ptr.ro:
                raise _Reject(f"R{regno} cannot write into packet")
        else:
            raise _Reject(f"R{regno} invalid mem access '{ptr.type_name()}'")
        if write:
            return None
        return scalar(_sized_unknown(size, signed))

    def _ctx_access(self, ptr: Reg, regno: int, off: int, size: int, write: bool, signed: bool) -> Reg | None:
        layout = ptr.obj
        if not sc.is_const(ptr.var):
            raise _Reject(f"variable ctx access var_off={sc.fmt(ptr.var)} disallowed")
        o = ptr.off + sc.s64(ptr.var[4]) + off
        fld = layout.field_at(o, size) if layout is not None else None
        if fld is None or o < 0:
            raise _Reject(f"invalid bpf_context access off={o} size={size}")
        if write:
            if not fld.write or fld.value.kind != progtypes.SCALAR:
                raise _Reject(f"invalid bpf_context access off={o} size={size} "
                              f"(field {fld.name} of {layout.name} is not writable)")
            return None
        if not fld.read:
            raise _Reject(f"invalid bpf_context access off={o} size={size} (field {fld.name} is not readable)")
        kind = fld.value
        if kind.kind == progtypes.SCALAR:
            return scalar(_sized_unknown(size, signed))
        if o != fld.offset or size != 8 or signed:
            raise _Reject(f"invalid bpf_context access off={o} size={size} (pointer field {fld.name} must be read whole)")
        nid = self.new_id() if kind.nullable else 0
        if kind.kind == progtypes.TRUSTED:
            return Reg(PTR_TRUSTED, obj=kind.name, null=kind.nullable, id=nid)
        if kind.kind == progtypes.STRUCT:
            return Reg(PTR_CTX, obj=kind.layout, null=kind.nullable, id=nid)
        if kind.kind == progtypes.MEM:
            return Reg(PTR_MEM, size=kind.size, null=kind.nullable, id=nid, ro=not kind.writable)
        if kind.kind == progtypes.BUFFER:
            return Reg(PTR_BUF, null=kind.nullable, id=nid)
        raise _Reject(f"unsupported context field kind {kind.kind!r}")

    # ------------------------------------------------------------ stack

    def _frame_of(self, st: State, ptr: Reg) -> Frame:
        if ptr.frame >= len(st.frames):  # pragma: no cover - prevented at exit
            raise _Reject("stack pointer to a returned frame")
        return st.frames[ptr.frame]

    def _note_depth(self, frame: Frame, lo: int) -> None:
        d = -lo
        if d > self.stack_depth.get(frame.subprog, 0):
            self.stack_depth[frame.subprog] = d

    def _stack_access(self, st: State, ptr: Reg, regno: int, off: int, size: int, write: bool,
                      value: Reg | None, value_regno: int, signed: bool) -> Reg | None:
        frame = self._frame_of(st, ptr)
        if sc.is_const(ptr.var):
            o = ptr.off + sc.s64(ptr.var[4]) + off
            if o < -isa.STACK_SIZE or o + size > 0:
                raise _Reject(f"invalid {'write' if write else 'read'} to stack R{regno} off={o} size={size}")
            self._note_depth(frame, o)
            if write:
                self._stack_write(st, frame, o, size, value, value_regno)
                return None
            return self._stack_read(frame, o, size, signed)
        lo, hi = self._bounds(ptr, regno, off, size)
        if lo < -isa.STACK_SIZE or hi > 0:
            raise _Reject(f"invalid variable-offset {'write' if write else 'read'} to stack "
                          f"R{regno} var_off={sc.fmt(ptr.var)} off={ptr.off + off} size={size}")
        self._note_depth(frame, lo)
        if write:
            if value is not None and value.is_ptr:
                raise _Reject(f"R{value_regno} spill of a pointer through a variable-offset stack pointer")
            self._stack_mark_written(frame, lo, hi, known=False)
            return None
        self._stack_check_init(frame, lo, hi, f"invalid variable-offset read from stack R{regno}")
        return scalar(_sized_unknown(size, signed))

    @staticmethod
    def _byte_kind(frame: Frame, o: int) -> str:
        k = (-o - 1) // 8
        slot = frame.stack.get(k)
        if slot is None:
            return "u"
        if slot[0] == "B" or slot[0] == "H":
            return slot[1][o - (-8 * (k + 1))]
        if slot[0] == "S":
            r = slot[1]
            if r.t == SCALAR:
                return "0" if r.is_const and r.value == 0 else "m"
            if r.t == NOT_INIT:
                return "u"
            return "p"
        return "o"

    def _stack_check_init(self, frame: Frame, lo: int, hi: int, what: str) -> None:
        for o in range(lo, hi):
            k = self._byte_kind(frame, o)
            if k == "u":
                raise _Reject(f"{what}: invalid read from stack off {o} (uninitialized)")
            if k == "p":
                raise _Reject(f"{what}: reading a spilled pointer at off {o} as bytes")
            if k == "o":
                raise _Reject(f"{what}: reading an iterator/dynptr slot at off {o}")

    def _stack_mark_written(self, frame: Frame, lo: int, hi: int, known: bool, zero: bool = False) -> None:
        """Bytes [lo, hi) may have been written with unknown data (``known``: certainly written)."""
        for k in range((-hi) // 8, (-lo - 1) // 8 + 1):
            base = -8 * (k + 1)
            slot = frame.stack.get(k)
            if slot is not None and slot[0] == "O":
                raise _Reject(f"cannot overwrite {slot[1].kind} slot at fp{base}")
            if slot is None:
                cur = list("uuuuuuuu")
            elif slot[0] == "B" or slot[0] == "H":
                cur = list(slot[1])
            else:
                r = slot[1]
                if r.t == SCALAR:
                    cur = list("00000000" if r.is_const and r.value == 0 else "mmmmmmmm")
                else:
                    cur = list("uuuuuuuu")  # leftover bytes of a pointer are not readable
            for j in range(8):
                o = base + j
                if lo <= o < hi:
                    if known:
                        cur[j] = "0" if zero else "m"
                    elif cur[j] == "0":
                        cur[j] = "m"
            frame.stack[k] = ("B", "".join(cur))

    def _stack_write(self, st: State, frame: Frame, o: int, size: int, value: Reg, value_regno: int) -> None:
        if value.is_ptr and value.t == PTR_STACK and value.frame > frame.frameno:
            raise _Reject("cannot spill pointers to stack into stack frame of the caller")
        if size == 8 and o % 8 == 0:
            k = (-o - 1) // 8
            slot = frame.stack.get(k)
            if slot is not None and slot[0] == "O":
                raise _Reject(f"cannot overwrite {slot[1].kind} slot at fp{o}")
            frame.stack[k] = ("S", value)
            return
        if value.is_ptr:
            raise _Reject(f"invalid size of register spill (R{value_regno} is a pointer, size={size} off={o})")
        zero = value.is_const and (value.value & ((1 << (8 * size)) - 1)) == 0
        k = (-o - 1) // 8
        old = frame.stack.get(k)
        self._stack_mark_written(frame, o, o + size, known=True, zero=zero)
        if size == 4 and o % 8 == 0 and value.t == SCALAR:
            # a 32-bit spill keeps its bounds (clang spills alu32 registers this way); like
            # the kernel, only at the start of a slot: a spill at fp-4 is plain data
            half = 0
            halves = list(old[2]) if old is not None and old[0] == "H" else [None, None]
            halves[half] = scalar(sc.trunc32(value.var))
            frame.stack[k] = ("H", frame.stack[k][1], tuple(halves))

    def _stack_read(self, frame: Frame, o: int, size: int, signed: bool) -> Reg:
        k = (-o - 1) // 8
        slot = frame.stack.get(k)
        if slot is not None and slot[0] == "S" and o % 8 == 0:
            r = slot[1]
            if size == 8:
                if r.t == NOT_INIT:
                    raise _Reject(f"invalid read from stack off {o}+0 size 8 (released reference)")
                return r
            if r.t != SCALAR:
                raise _Reject(f"invalid size of register fill (pointer spilled at fp{o}, size={size})")
            v = sc.truncate(r.var, size * 8)
            return scalar(sc.sext(v, size * 8) if signed else v)
        if slot is not None and slot[0] == "H" and size == 4 and o % 4 == 0:
            r = slot[2][0 if o % 8 == 0 else 1]
            if r is not None:
                return scalar(sc.sext(r.var, 32)) if signed else r
        kinds = [self._byte_kind(frame, x) for x in range(o, o + size)]
        for j, kd in enumerate(kinds):
            if kd == "u":
                raise _Reject(f"invalid read from stack off {o}+{j} size {size}")
            if kd == "p":
                raise _Reject(f"invalid size of register fill (pointer bytes at fp{o + j})")
            if kd == "o":
                raise _Reject(f"cannot read iterator/dynptr slot at fp{o + j}")
        if all(kd == "0" for kd in kinds):
            return const_reg(0)
        return scalar(_sized_unknown(size, signed))

    # ------------------------------------------------------------ helper memory arguments

    def _check_mem_region(self, st: State, reg: Reg, regno: int, size_lo: int, size_hi: int,
                          write: bool, init: bool, what: str = "") -> None:
        """A helper will read (``init``) or write ``size`` bytes, size in [size_lo, size_hi]."""
        if size_hi == 0:
            return
        if reg.null:
            raise _Reject(f"R{regno} type={reg.type_name()} expected=fp, pkt, map_value, mem (null-check it first)")
        t = reg.t
        if t == PTR_STACK:
            frame = self._frame_of(st, reg)
            lo, _ = self._bounds(reg, regno, 0, 0)
            _, hi = self._bounds(reg, regno, 0, size_hi)
            if lo < -isa.STACK_SIZE or hi > 0:
                raise _Reject(f"invalid indirect access to stack R{regno} off={lo} size={size_hi}")
            self._note_depth(frame, lo)
            if init:
                self._stack_check_init(frame, lo, hi, f"invalid indirect read from stack R{regno}")
            if write:
                # Like the kernel, a helper given "up to N bytes" of uninitialised stack is
                # taken to initialise all N (helpers clear what they do not fill).
                self._stack_mark_written(frame, lo, hi, known=sc.is_const(reg.var))
            return
        if t in (PTR_MAP_VALUE, PTR_MEM, PTR_BUF):
            lo, hi = self._bounds(reg, regno, 0, size_hi)
            limit = {PTR_MAP_VALUE: getattr(reg.obj, "value_size", 0), PTR_MEM: reg.size,
                     PTR_BUF: st.buf_min}[t]
            if lo < 0 or hi > limit:
                raise _Reject(f"invalid access to {reg.type_name()} R{regno} off={lo} size={size_hi} "
                              f"(limit {limit}){what}")
            if write and reg.ro:
                raise _Reject(f"R{regno} points to read-only memory")
            return
        raise _Reject(f"R{regno} type={reg.type_name()} expected=fp, pkt, map_value, mem")

    # ------------------------------------------------------------ calls

    def _do_call(self, st: State, insn: isa.Insn, pc: int) -> int:
        if st.lock is not None:
            # (the kernel allows a few kfuncs and, lately, static subprograms here; we
            # allow only the unlock: nothing can then block or loop with the lock held)
            h = self._callee(insn) if insn.src == isa.CALL_HELPER else None
            if h is None or h.proto.name not in ("bpf_spin_unlock", "bpf_spin_lock"):
                raise _Reject("function calls are not allowed while holding a lock")
        if insn.src == isa.PSEUDO_CALL:
            return self._call_subprog(st, pc, pc + insn.imm + 1)
        h = self._callee(insn)
        if insn.src == isa.CALL_HELPER:
            if h is None:
                raise _Reject(f"invalid func unknown#{insn.imm}")
        else:
            name = self.program.kfuncs[insn.imm]
            if h is None:
                raise _Reject(f"calling kernel function {name} is not allowed")
        self._call_helper(st, h.proto, pc, h.is_kfunc)
        return pc + 1

    def _call_subprog(self, st: State, pc: int, target: int) -> int:
        gf = self.global_funcs.get(target)
        if gf is not None:
            return self._call_global(st, pc, gf)
        if len(st.frames) >= isa.MAX_CALL_DEPTH:
            raise _Reject(f"the call stack of {len(st.frames) + 1} frames is too deep")
        caller = st.cur
        f = Frame(len(st.frames), target, pc)
        for i in range(1, 6):
            f.regs[i] = caller.regs[i]
        f.regs[10] = Reg(PTR_STACK, frame=f.frameno)
        st.frames.append(f)
        if self.log_level:
            self.log(f"caller:\n {st.frames[-2].frameno}: {self.state.fmt_regs(caller)}\ncallee:\n {st.fmt_regs()}")
        return target

    # ------------------------------------------------------------ global functions

    def _find_global_funcs(self) -> dict[int, "_GlobalFunc"]:
        """Subprograms with global (non-static) linkage in BTF: the kernel verifies each
        once, on its own, against its BTF signature, and a caller sees only that
        signature (arguments checked, r0 an unknown scalar)."""
        names = getattr(self.program, "func_names", None) or {}
        btf = getattr(self.program, "btf", None)
        out: dict[int, _GlobalFunc] = {}
        if btf is None:
            return out
        for idx, entry in enumerate(sorted(self.cfg.entries)):
            name = names.get(entry)
            if entry == 0 or name is None:
                continue
            t = btf.find(name, _BTF_KIND_FUNC)
            if t is None or t.linkage != _BTF_FUNC_GLOBAL:
                continue
            out[entry] = _GlobalFunc(idx, name, entry, self._global_args(btf, t, idx, name))
        return out

    def _global_args(self, btf, func, idx: int, name: str) -> list[tuple]:
        proto = btf.resolve(func.ref)
        if len(proto.params) > 5:
            raise _Reject(f"Global function {name}() has more than 5 arguments")
        args: list[tuple] = []
        ctx_names = {"__sk_buff"}
        layout = self.ptype.layout
        if layout is not None and getattr(layout, "name", ""):
            ctx_names.add(layout.name)
        for i, p in enumerate(proto.params):
            t = btf.resolve(p.type)
            if t.kind in (_BTF_KIND_INT, _BTF_KIND_ENUM, _BTF_KIND_ENUM64):
                args.append(("scalar",))
                continue
            if t.kind == _BTF_KIND_PTR:
                pointee = btf.resolve(t.ref)
                if pointee.kind == _BTF_KIND_STRUCT and pointee.name in ctx_names:
                    args.append(("ctx",))
                    continue
                try:
                    size = btf.size_of(pointee.id) if pointee.id else 0
                except BpfLoadError:    # void, a function, a forward declaration: no size
                    size = 0
                if size > 0:
                    args.append(("mem", size))
                    continue
                raise _Reject(f"func#{idx} '{name}' arg#{i} reference type('{btf.type_name(p.type)}') "
                              "size cannot be determined")
            raise _Reject(f"func#{idx} '{name}' arg#{i} type {btf.type_name(p.type)} is not supported")
        return args

    def _call_global(self, st: State, pc: int, gf: "_GlobalFunc") -> int:
        regs = st.cur.regs
        for i, kind in enumerate(gf.args):
            regno = i + 1
            reg = self.read_reg(st, regno)
            bad = None
            if kind[0] == "scalar":
                if reg.t != SCALAR:
                    bad = f"R{regno} is not a scalar"
            elif kind[0] == "ctx":
                if reg.t not in (PTR_CTX, PTR_BUF) or reg.off or not sc.is_const(reg.var) \
                        or reg.var[4] or reg.null:
                    bad = f"arg#{i} expected pointer to ctx, but got {reg.type_name()}"
            else:
                size = kind[1]
                if reg.t == SCALAR and reg.is_const and reg.value == 0:
                    pass        # NULL is a valid argument: the callee must check
                elif not reg.is_ptr or reg.null:
                    bad = f"R{regno} type={reg.type_name()} expected pointer to {size} bytes"
                else:
                    # the callee may read and write all of it
                    self._check_mem_region(st, reg, regno, size, size, write=True, init=True)
            if bad is not None:
                raise _Reject(f"Caller passes invalid args into func#{gf.idx} ('{gf.name}'): {bad}")
        for i in range(1, 6):
            regs[i] = UNINIT
        regs[0] = UNKNOWN_SCALAR
        return pc + 1

    def _verify_global_func(self, entry: int) -> None:
        """Explore a global function from its entry with only its signature known."""
        gf = self.global_funcs[entry]
        st = State()
        f = Frame(0, entry, -1)
        f.regs[10] = Reg(PTR_STACK, frame=0)
        base = self._entry_state().frames[0]
        for i, kind in enumerate(gf.args):
            if kind[0] == "scalar":
                f.regs[i + 1] = UNKNOWN_SCALAR
            elif kind[0] == "ctx":
                f.regs[i + 1] = base.regs[1]
            else:   # possibly NULL memory of the declared size
                f.regs[i + 1] = Reg(PTR_MEM, size=kind[1], null=True, id=self.new_id())
        st.frames.append(f)
        if self.ptype.ctx == "buffer":
            st.buf_min = self.ptype.buffer_min_size
        self._in_global = entry
        if self.log_level:
            self.log(f"Validating {gf.name}() func#{gf.idx}...")
        self._explore(st, entry)
        self._in_global = None

    def _enter_callback(self, st: State, callsite: int, entry: int, ctx_reg: Reg, instance: int) -> None:
        """Push the frame of a helper-called callback: r1 = iteration index, r2 = its ctx.

        The caller's r0 slot keeps the ctx argument (as ``obj``) while the callback runs,
        so that the next call can pass it again."""
        if len(st.frames) >= isa.MAX_CALL_DEPTH:
            raise _Reject(f"the call stack of {len(st.frames) + 1} frames is too deep")
        st.cb_steps += 1
        caller = st.cur
        for i in range(1, 6):
            caller.regs[i] = UNINIT
        caller.regs[0] = Reg(NOT_INIT, obj=ctx_reg)
        f = Frame(len(st.frames), entry, callsite, callback=instance)
        f.regs[1] = Reg(SCALAR, sc.urange(0, sc.U32))
        f.regs[2] = ctx_reg
        f.regs[10] = Reg(PTR_STACK, frame=f.frameno)
        st.frames.append(f)

    def _do_exit(self, st: State) -> int | None:
        if st.lock is not None:
            raise _Reject("bpf_spin_unlock is missing")
        f = st.cur
        r0 = f.regs[0]
        if len(st.frames) == 1 and self.ptype.ret_void:
            # check_return_code: a void struct_ops member's R0 is never read
            if st.refs:
                rid, (kind, at) = next(iter(st.refs.items()))
                raise _Reject(f"Unreleased reference id={rid} alloc_insn={at} ({kind})")
            return None
        if r0.t == NOT_INIT:
            raise _Reject("R0 !read_ok")
        if len(st.frames) > 1 and f.callback:
            if r0.t != SCALAR or r0.var[2] < 0 or r0.var[3] > 1:
                raise _Reject(f"At callback return the register R0 has {r0.fmt()} "
                              "should have been in [0, 1]")
            st.frames.pop()
            caller = st.cur
            # the helper may call the callback again ...
            again = st.copy()
            if again.checkpoint is not None:
                again.checkpoint.live += 1
            self._enter_callback(again, f.callsite, f.subprog, caller.regs[0].obj, f.callback)
            self._dfs.append((f.subprog, again))
            # ... or return
            caller.regs[0] = UNKNOWN_SCALAR
            for i in range(1, 6):
                caller.regs[i] = UNINIT
            return f.callsite + 1
        if len(st.frames) > 1:
            if r0.t == PTR_STACK and r0.frame >= f.frameno:
                raise _Reject("cannot return stack pointer to the caller")
            st.frames.pop()
            caller = st.cur
            caller.regs[0] = r0
            for i in range(1, 6):
                caller.regs[i] = UNINIT
            return f.callsite + 1
        if self._in_global is not None:
            if r0.t != SCALAR:
                raise _Reject("At subprogram exit the register R0 is not a scalar value")
            if st.refs:
                rid, (kind, at) = next(iter(st.refs.items()))
                raise _Reject(f"Unreleased reference id={rid} alloc_insn={at} ({kind})")
            return None
        if r0.t != SCALAR:
            raise _Reject("R0 leaks addr as return value")
        rr = self.ptype.ret_range
        if rr is not None:
            lo, hi = rr
            if r0.var[2] < lo or r0.var[3] > hi:
                raise _Reject(f"At program exit the register R0 has {sc.fmt(r0.var)} "
                              f"should have been in [{lo}, {hi}]")
        if st.refs:
            rid, (kind, at) = next(iter(st.refs.items()))
            raise _Reject(f"Unreleased reference id={rid} alloc_insn={at} ({kind})")
        return None

    def _release(self, st: State, ref: int) -> None:
        st.refs.pop(ref, None)
        for f, where, r in list(st.all_regs()):
            if r.ref == ref:
                st.set_reg_anywhere(f, where, UNINIT)

    def _call_helper(self, st: State, proto, pc: int, is_kfunc: bool) -> None:
        name = proto.name
        self._ret_size_value = None
        if proto.ret_size_arg is not None:
            sreg = st.cur.regs[proto.ret_size_arg + 1]
            if sreg.t == SCALAR and sreg.is_const:
                self._ret_size_value = sreg.value
            elif proto.ret in (Ret.MEM_OR_NULL, Ret.MEM, Ret.RINGBUF_MEM_OR_NULL):
                raise _Reject(f"R{proto.ret_size_arg + 1} size of the memory {name} returns "
                              "must be a known constant")
        if proto.prog_types is not None:
            names = {self.ptype.name} | set(self.ptype.groups)
            if not names & set(proto.prog_types):
                raise _Reject(f"{'kfunc' if is_kfunc else 'helper'} {name} is not allowed in "
                              f"{self.ptype.name} programs")
        if (proto.sleepable_only or _flag(proto, "KF_SLEEPABLE") is not None) and not self.sleepable:
            raise _Reject(f"{name} is sleepable: the program must be sleepable (section .s)")
        regs = st.cur.regs
        iter_new = _flag(proto, "ITER_NEW")
        iter_next = _flag(proto, "ITER_NEXT")
        iter_destroy = _flag(proto, "ITER_DESTROY")
        dyn_new = _flag(proto, "DYNPTR_NEW")
        dyn_use = _flag(proto, "DYNPTR")
        special_args: dict[int, str] = {}
        if iter_new is not None:
            special_args[int(iter_new or 0)] = "iter_new"
        if iter_next is not None:
            special_args[int(iter_next or 0)] = "iter"
        if iter_destroy is not None:
            special_args[int(iter_destroy or 0)] = "iter"
        iter_arg = _flag(proto, "ITER_ARG")
        if iter_arg is not None:
            # ITER_ARG:n[:T] — arg n must be an initialised iterator (of type T), used
            # only as an argument: no next() loop point, no destroy (the kernel's __iter)
            special_args[int(iter_arg.split(":")[0] or 0)] = "iter_arg"
        if dyn_new is not None:
            special_args[int(dyn_new or 0)] = "dynptr_new"
        if dyn_use is not None:
            special_args[int(dyn_use or 0)] = "dynptr"
        trusted_args = _flag(proto, "KF_TRUSTED_ARGS") is not None
        meta_map = None
        alloc_size = None
        callback = None
        pending_mem: tuple[int, Arg] | None = None
        release_idx = proto.releases
        if release_idx is None and _flag(proto, "KF_RELEASE") is not None:
            release_idx = 0
        if len(proto.args) > 5:
            raise _Reject(f"{name} has more than 5 arguments")
        for i, kind in enumerate(proto.args):
            regno = i + 1
            if i in special_args:
                self.read_reg(st, regno)
                continue
            reg = self.read_reg(st, regno)
            if kind in _SIZE_ARGS:
                if reg.t != SCALAR:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=scalar")
                v = reg.var
                if v[2] < 0:
                    raise _Reject(f"R{regno} min value is negative, either use unsigned or 'var &= const'")
                if v[1] >= MAX_VAR_OFF:
                    raise _Reject(f"R{regno} unbounded memory access, use 'var &= const' or 'if (var < const)'")
                if kind == Arg.CONST_SIZE and v[0] == 0:
                    raise _Reject(f"R{regno} invalid zero-sized read")
                if pending_mem is not None:
                    pregno, pkind = pending_mem
                    preg = regs[pregno]
                    if pkind == Arg.MEM_OR_NULL and preg.t == SCALAR:
                        if not (preg.is_const and preg.value == 0) or v[1] != 0:
                            raise _Reject(f"R{pregno} NULL memory needs a zero size")
                    else:
                        self._check_mem_region(st, preg, pregno, v[0], v[1],
                                               write=pkind == Arg.UNINIT_MEM, init=pkind != Arg.UNINIT_MEM)
                    pending_mem = None
                continue
            if pending_mem is not None:
                self._check_fixed_mem(st, *pending_mem, regs)
                pending_mem = None
            if kind == Arg.ANYTHING:
                continue
            if kind == Arg.SCALAR:
                if reg.t != SCALAR:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=scalar")
            elif kind == Arg.CTX:
                if reg.t != PTR_CTX or reg.off or not sc.is_const(reg.var) or reg.var[4] or reg.null:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=ctx (unmodified)")
            elif kind == Arg.CONST_MAP_PTR:
                if reg.t != CONST_MAP:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=map_ptr")
                meta_map = reg.obj
            elif kind in (Arg.MAP_KEY, Arg.MAP_VALUE):
                if meta_map is None:
                    raise _Reject(f"R{regno} map key/value argument without a map argument before it")
                size = getattr(meta_map, "key_size" if kind == Arg.MAP_KEY else "value_size", 0)
                self._check_mem_region(st, reg, regno, size, size, write=False, init=True)
            elif kind in _MEM_ARGS:
                if kind != Arg.MEM_OR_NULL or reg.t != SCALAR:
                    if reg.t == SCALAR:
                        raise _Reject(f"R{regno} type=scalar expected=fp, pkt, map_value, mem")
                pending_mem = (regno, kind)
            elif kind == Arg.CONST_ALLOC_SIZE:
                if not reg.is_const or reg.value == 0 or reg.value >= MAX_VAR_OFF:
                    raise _Reject(f"R{regno} must be a known constant size > 0")
                alloc_size = reg.value
            elif kind == Arg.RINGBUF_MEM:
                if reg.t != PTR_MEM or not reg.ref or reg.null:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=ringbuf_mem")
                if reg.off or not sc.is_const(reg.var) or reg.var[4]:
                    raise _Reject(f"R{regno} must have zero offset when passed to release func")
                if release_idx is None:
                    release_idx = i
            elif kind == Arg.TRUSTED_PTR:
                if reg.t != PTR_TRUSTED or reg.null:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=trusted_ptr")
                if trusted_args and (reg.off or reg.var[4]):
                    raise _Reject(f"R{regno} must be an unmodified trusted pointer")
            elif kind == Arg.FUNC:
                if reg.t != PTR_FUNC:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=func")
                if callback is not None:
                    raise _Reject(f"{name}: more than one callback argument")
                nxt = regs[regno + 1] if regno < 5 and i + 1 < len(proto.args) else UNINIT
                callback = (reg.size, nxt)
            elif kind == Arg.STACK_PTR:
                if reg.t != PTR_STACK:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=fp")
            elif kind == Arg.SPIN_LOCK:
                if reg.t != PTR_MAP_VALUE:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=map_value (spin lock)")
                self._check_mem_region(st, reg, regno, 4, 4, write=True, init=False)
                self._spin_lock_arg(st, name, reg, regno)
            else:
                raise _Reject(f"R{regno} argument kind {kind} is not supported by the verifier")
        if pending_mem is not None:
            self._check_fixed_mem(st, *pending_mem, regs)
        if name in _RAW_READ_HELPERS:
            self._check_raw_read_src(st, regs)
        # releases
        if release_idx is not None:
            reg = regs[release_idx + 1]
            if reg.t == NOT_INIT or not reg.ref or reg.ref not in st.refs or reg.null:
                raise _Reject(f"R{release_idx + 1} must be referenced (and non-null) when passed to "
                              f"release function {name}")
            self._release(st, reg.ref)
        # stack objects (iterators, dynptrs)
        iter_reg = regs[int(iter_next or 0) + 1] if iter_next is not None else None
        slice_of = None
        if dyn_use is not None and proto.ret in (Ret.MEM_OR_NULL, Ret.MEM):
            slice_of = self._stack_obj_at(st, regs[int(dyn_use or 0) + 1])
        iter_of_new = None
        if dyn_new is not None and iter_arg is not None:
            iter_of_new = self._stack_obj_at(st, regs[int(iter_arg.split(":")[0] or 0) + 1])
        self._new_dynptr_parent = iter_of_new.ref if iter_of_new is not None else 0
        for i, what in special_args.items():
            self._stack_object_arg(st, proto, pc, i + 1, what)
        if callback is not None:
            # one path runs the callback (again and again, see _do_exit); this one
            # returns from the helper without calling it
            cb_state = st.copy()
            if cb_state.checkpoint is not None:
                cb_state.checkpoint.live += 1
            self._enter_callback(cb_state, pc, callback[0], callback[1], self.new_id())
            self._dfs.append((callback[0], cb_state))
        # clobber caller-saved registers, set r0
        for i in range(1, 6):
            regs[i] = UNINIT
        regs[0] = self._ret_reg(st, proto, pc, meta_map, alloc_size, is_kfunc)
        if slice_of is not None and regs[0].is_ptr:
            # tied to its dynptr, like the kernel's dynptr_id (#13 item 7)
            regs[0] = regs[0].replace(dyn=slice_of.id)
        if iter_reg is not None:
            it = self._iter_obj(st, iter_reg)
            if it is not None:
                # the element's page changes: dynptrs made from it, and their slices, go
                self._invalidate_iter_children(st, it.ref)
            self._iter_next_fork(st, iter_reg, pc)

    @staticmethod
    def _spin_lock_arg(st: State, name: str, reg: Reg, regno: int) -> None:
        """Lock/unlock pairing on every path, like the kernel: one lock at a time, the
        unlock names the same lock (same map value, same offset), none held at exit."""
        if not sc.is_const(reg.var):
            raise _Reject(f"R{regno} bpf_spin_lock at a variable offset is not allowed")
        lock = (reg.obj, reg.id, reg.off + sc.s64(reg.var[4]))
        if name == "bpf_spin_lock":
            if st.lock is not None:
                raise _Reject("Locking two bpf_spin_locks are not allowed")
            st.lock = lock
        elif name == "bpf_spin_unlock":
            if st.lock is None:
                raise _Reject("bpf_spin_unlock without taking a lock")
            if st.lock[0] is not lock[0] or st.lock[1] != lock[1] or st.lock[2] != lock[2]:
                raise _Reject("bpf_spin_unlock of different lock")
            st.lock = None

    def _check_raw_read_src(self, st: State, regs) -> None:
        """``bpf_probe_read*(dst, size, src)`` copies from any address.  Given an address
        the verifier knows (the stack, the context), it must not copy pointer bytes or
        stale bytes that may hold an old pointer: that would turn a pointer into data
        (#13 item 4).  Plain addresses are checked at run time (docs/verifier.md)."""
        src, size = regs[3], regs[2]
        if src.t == PTR_CTX:
            raise _Reject("R3 bpf_probe_read of the context would leak its pointers")
        if src.t != PTR_STACK or size.t != SCALAR:
            return
        hi_size = size.var[1]
        if hi_size == 0:
            return
        if hi_size >= MAX_VAR_OFF:
            raise _Reject("R2 unbounded memory access, use 'var &= const' or 'if (var < const)'")
        frame = self._frame_of(st, src)
        lo, hi = self._bounds(src, 3, 0, hi_size)
        if lo < -isa.STACK_SIZE or hi > 0:
            raise _Reject(f"invalid indirect access to stack R3 off={lo} size={hi_size}")
        self._stack_check_init(frame, lo, hi, "invalid indirect read from stack R3")

    def _check_fixed_mem(self, st: State, regno: int, kind: Arg, regs) -> None:
        """A memory argument with no size argument after it: at least one byte."""
        reg = regs[regno]
        if kind == Arg.MEM_OR_NULL and reg.t == SCALAR and reg.is_const and reg.value == 0:
            return
        self._check_mem_region(st, reg, regno, 1, 1, write=kind == Arg.UNINIT_MEM,
                               init=kind != Arg.UNINIT_MEM)

    def _stack_object_arg(self, st: State, proto, pc: int, regno: int, what: str):
        reg = self.read_reg(st, regno)
        if reg.t != PTR_STACK or not sc.is_const(reg.var):
            raise _Reject(f"R{regno} expected a pointer to a stack slot for {proto.name}")
        o = reg.off + sc.s64(reg.var[4])
        objkind = "iter" if what.startswith("iter") else "dynptr"
        size_flag = _flag(proto, "ITER_SIZE" if objkind == "iter" else "DYNPTR_SIZE")
        size = int(size_flag) if size_flag else (8 if objkind == "iter" else 16)
        nslots = max(1, (size + 7) // 8)
        if o % 8 or o < -isa.STACK_SIZE or o + 8 * nslots > 0:
            raise _Reject(f"R{regno} misaligned or out of range {objkind} slot fp{o}")
        frame = self._frame_of(st, reg)
        self._note_depth(frame, o)
        first = (-o - 1) // 8
        if what == "iter_arg":
            want = (_flag(proto, "ITER_ARG") or "").partition(":")[2]
            slot = frame.stack.get(first)
            if slot is None or slot[0] != "O" or slot[1].first != first or slot[1].kind != "iter":
                raise _Reject(f"expected an initialized iter{' ' + want if want else ''} as "
                              f"arg #{regno - 1} of {proto.name}")
            if want and slot[1].type != want:
                raise _Reject(f"expected an initialized iter {want} as arg #{regno - 1} of "
                              f"{proto.name}, got {slot[1].type}")
            return None
        keys = [first - j for j in range(nslots)]
        tname = _obj_type_name(proto.name)
        if what.endswith("_new"):
            stale: list[ObjSlot] = []
            for k in keys:
                slot = frame.stack.get(k)
                if slot is not None and slot[0] == "O":
                    old = slot[1]
                    # like the kernel, a new dynptr may overwrite a dynptr that holds no
                    # reference (nothing to release, so nothing leaks); an iterator or
                    # an acquired dynptr must be destroyed/released first
                    if objkind == "dynptr" and old.kind == "dynptr" and not old.ref:
                        stale.append(old)
                        continue
                    raise _Reject(f"{objkind} at fp{o} is already initialized (destroy it first)")
                if slot is not None and slot[0] == "S" and slot[1].is_ptr:
                    raise _Reject(f"{objkind} at fp{o} would overwrite a spilled pointer")
            for old in stale:
                # the whole old dynptr goes, also the slots the new one does not cover,
                # and every slice taken from it
                for k in range(old.first, old.first - old.nslots, -1):
                    frame.stack[k] = SLOT_UNINIT
                self._invalidate_slices(st, old.id)
            ref = self.new_id() if objkind == "iter" or _flag(proto, "KF_ACQUIRE") is not None else 0
            if objkind == "dynptr":
                obj = ObjSlot(objkind, tname, ref, first, nslots, id=self.new_id(),
                              parent=self._new_dynptr_parent)
            else:
                obj = ObjSlot(objkind, tname, ref, first, nslots)
            for k in keys:
                frame.stack[k] = ("O", obj)
            if ref:
                st.refs[ref] = (f"{objkind} {tname}", pc)
            return None
        slot = frame.stack.get(first)
        if slot is None or slot[0] != "O" or slot[1].first != first or slot[1].kind != objkind:
            raise _Reject(f"expected an initialized {objkind} as arg #{regno - 1} of {proto.name}")
        obj = slot[1]
        if objkind == "iter" and obj.type != tname:
            raise _Reject(f"expected an initialized iter {tname} as arg #{regno - 1}, got {obj.type}")
        if _flag(proto, "ITER_DESTROY") is not None and objkind == "iter":
            self._invalidate_iter_children(st, obj.ref)
            for k in keys:
                frame.stack[k] = SLOT_UNINIT
            if obj.ref:
                st.refs.pop(obj.ref, None)
        return None

    def _ret_reg(self, st: State, proto, pc: int, meta_map, alloc_size, is_kfunc: bool) -> Reg:
        ret = proto.ret
        nullable = _flag(proto, "RET_NULL") is not None or _flag(proto, "KF_RET_NULL") is not None
        if _flag(proto, "ITER_NEXT") is not None:
            nullable = True
        acquires = proto.acquires or _flag(proto, "KF_ACQUIRE") is not None
        if ret == Ret.INTEGER:
            if _flag(proto, "ITER_NEXT") is not None and proto.ret_size:
                # read-only, as in the kernel: the element belongs to the iterator
                return Reg(PTR_MEM, size=proto.ret_size, null=True, id=self.new_id(), ro=True)
            return UNKNOWN_SCALAR
        if ret == Ret.VOID:
            return UNINIT
        if ret == Ret.MAP_VALUE_OR_NULL:
            if meta_map is None:
                raise _Reject(f"{proto.name} returns a map value but has no map argument")
            r = Reg(PTR_MAP_VALUE, obj=meta_map, null=True, id=self.new_id(), ro=self._map_ro(meta_map))
        elif ret in (Ret.MEM_OR_NULL, Ret.MEM, Ret.RINGBUF_MEM_OR_NULL):
            size = proto.ret_size
            if proto.ret_size_arg is not None:
                # the size argument was checked above; its register is clobbered now, so
                # it was recorded before clobbering (see _call_helper)
                size = self._ret_size_value
            if size is None and alloc_size is not None:
                size = alloc_size
            ro = _flag(proto, "ITER_NEXT") is not None
            elem = _flag(proto, "RET_ELEM_SIZE")
            if size == 0 and elem:
                # the kernel's rule for `T *f(..., rdwr_buf_size)` returning a pointer to a
                # scalar T: size 0 means sizeof(T) read-only bytes
                size, ro = int(elem), True
            if size is None or size <= 0:
                raise _Reject(f"{proto.name}: size of the returned memory must be a known constant")
            null = ret != Ret.MEM or nullable
            r = Reg(PTR_MEM, size=size, null=null, id=self.new_id() if null else 0,
                    obj=ARENA_MEM if _flag(proto, "ARENA_RET") is not None else None, ro=ro)
            if ret == Ret.RINGBUF_MEM_OR_NULL:
                acquires = True
        else:
            return UNKNOWN_SCALAR
        if acquires:
            ref = self.new_id()
            st.refs[ref] = (proto.name, pc)
            r = r.replace(ref=ref)
        return r

    # ------------------------------------------------------------ conditional jumps

    def _do_cond_jump(self, st: State, insn: isa.Insn, pc: int):
        op = _JMP_TO_CMP[insn.op]
        is32 = insn.cls == isa.JMP32
        dst = self.read_reg(st, insn.dst)
        if insn.source == isa.X:
            src = self.read_reg(st, insn.src)
        else:
            src = const_reg(insn.imm & sc.U32 if is32 else insn.imm)
        target = pc + insn.off + 1
        fall = pc + 1
        if dst.is_ptr or src.is_ptr:
            return self._ptr_cond(st, insn, dst, src, op, target, fall, is32)
        a, b = dst.var, src.var
        if is32:
            a, b = sc.trunc32(a), sc.trunc32(b)
            if op in _SIGNED_CMP:
                a, b = sc.sext32(a), sc.sext32(b)
        taken = sc.branch_taken(a, b, op)
        if taken is not None:
            self._mark_decided(st)
            return [(target if taken else fall, st)]
        out = []
        other = st.copy()
        r_fall = sc.refine_not(a, b, op)
        r_take = sc.refine(a, b, op)
        if r_fall is not None:
            self._apply_refine(st, insn, dst, src, a, b, r_fall)
            out.append((fall, st))
        if r_take is not None:
            self._apply_refine(other, insn, dst, src, a, b, r_take)
            out.append((target, other))
        if len(out) < 2:
            self._mark_decided(st)
        if self.log_level and len(out) == 2:
            self.log(f"{pc}: branch both ways")
        return out

    def _apply_refine(self, st: State, insn: isa.Insn, dst: Reg, src: Reg, a, b, refined) -> None:
        na, nb = refined
        is32 = insn.cls == isa.JMP32
        if na != a:
            if a == dst.var:
                self._set_scalar(st, insn.dst, dst, na)
            elif is32:
                # the compare saw only the low 32 bits (#20: `if w1 s< 0` narrows r1 too)
                v = sc.refine_low32(dst.var, na)
                if v != dst.var:
                    self._set_scalar(st, insn.dst, dst, v)
        if insn.source == isa.X and nb != b:
            if b == src.var:
                self._set_scalar(st, insn.src, src, nb)
            elif is32:
                v = sc.refine_low32(src.var, nb)
                if v != src.var:
                    self._set_scalar(st, insn.src, src, v)

    def _set_scalar(self, st: State, regno: int, old: Reg, var) -> None:
        st.cur.regs[regno] = old.replace(var=var)
        if old.id:
            for f, where, r in list(st.all_regs()):
                if r.t == SCALAR and r.id == old.id:
                    st.set_reg_anywhere(f, where, r.replace(var=var))
            if old.id == LEN_ID and var[0] > st.buf_min:
                st.buf_min = min(var[0], 1 << 32)

    def _ptr_cond(self, st: State, insn: isa.Insn, dst: Reg, src: Reg, op: int, target: int,
                  fall: int, is32: bool):
        ptr, other = (dst, src) if dst.is_ptr else (src, dst)
        if other.is_ptr or is32 or op not in (sc.EQ, sc.NE) or not (other.is_const and other.value == 0):
            raise _Reject(f"R{insn.dst} pointer comparison prohibited")
        if not ptr.null:
            if ptr.t in _NOT_NULL_TYPES:
                # a valid map value / memory / trusted pointer is never NULL (the kernel's
                # reg_not_null): the branch is decided
                return [(fall if op == sc.EQ else target, st)]
            # the kernel explores both ways for other pointers (stack, ctx, ...): so do we,
            # without changing the pointer
            return [(fall, st), (target, st.copy())]
        other_st = st.copy()
        null_st, nonnull_st = (other_st, st) if op == sc.EQ else (st, other_st)
        self._mark_null(null_st, ptr, is_null=True)
        self._mark_null(nonnull_st, ptr, is_null=False)
        return [(fall, st), (target, other_st)]

    def _mark_null(self, st: State, ptr: Reg, is_null: bool) -> None:
        pid = ptr.id
        for f, where, r in list(st.all_regs()):
            if r.is_ptr and r.null and r.id == pid:
                st.set_reg_anywhere(f, where, const_reg(0) if is_null else r.replace(null=False))
        if is_null and ptr.ref:
            st.refs.pop(ptr.ref, None)

    # ------------------------------------------------------------ after exploration

    @property
    def max_stack(self) -> int:
        return self._chain_depth(0) if self.cfg else 0

    def _frame_size(self, subprog: int) -> int:
        d = self.stack_depth.get(subprog, 0)
        return (max(d, 1) + 31) // 32 * 32 if subprog != 0 or d else 0

    def _chain_depth(self, f: int) -> int:
        callees = self.cfg.callees.get(f, ())
        return self._frame_size(f) + max((self._chain_depth(g) for g in callees), default=0)

    def _check_stack_chain(self) -> None:
        total = self._chain_depth(0)
        if total > isa.STACK_SIZE:
            raise _Reject(f"combined stack size of calls is {total}. Too large")


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


def verify(program: isa.Program, prog_type: progtypes.ProgType | None = None, log_level: int = 0,
           max_insns: int = MAX_INSNS_PROCESSED, platform: Platform | None = None) -> VerifierResult:
    """Verify ``program``; return statistics or raise :class:`BpfVerifierError` with the log.

    ``platform`` answers every helper, kfunc and program-type question (default: the
    active platform, else :func:`~uringbpf.bpf.platform.default_platform`).
    ``prog_type`` defaults to ``platform.prog_type_for(program)`` (section/attach).
    ``max_insns`` is the exploration budget (processed instructions, the kernel's 1M).
    """
    if platform is None:
        platform = _platform_in_effect()
    if prog_type is None:
        try:
            prog_type = platform.prog_type_for(program)
        except ProgTypeError as exc:
            raise BpfVerifierError(str(exc), str(exc) + "\n") from None
    return Verifier(program, prog_type, log_level, max_insns, platform).run()


# ---------------------------------------------------------------- whole objects


@dataclass
class ProgramVerdict:
    """The verdict on one program of an object (:func:`verify_object`)."""

    name: str
    section: str
    result: VerifierResult | None = None        # set when accepted
    error: BpfVerifierError | None = None       # set when refused

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def log(self) -> str:
        return self.result.log if self.result is not None else self.error.log


def verify_object(obj, *, programs: list[str] | None = None, log_level: int = 0,
                  max_insns: int = MAX_INSNS_PROCESSED) -> list[ProgramVerdict]:
    """Verify every program of an opened :class:`~uringbpf.bpf.object.BpfObject` the way
    ``obj.load()`` (and libbpf) would: kfuncs resolved against the object's platform,
    read-only array maps (``.rodata``) frozen first, so ``const volatile`` values are
    constants.  Freezing is what loading does too: afterwards ``.rodata`` cannot change.

    ``programs`` selects programs by name (unknown names raise ``KeyError``).  Returns one
    :class:`ProgramVerdict` per program, in object order; never raises for a refusal.
    """
    progs = obj.prepare()
    if programs is not None:
        known = {p.name for p in progs}
        missing = [n for n in programs if n not in known]
        if missing:
            raise KeyError(f"no program named {', '.join(missing)}")
        progs = [p for p in progs if p.name in set(programs)]
    for m in obj.map_list:
        if (m.map_flags & BPF_F_RDONLY_PROG and m.type == _MAP_TYPE_ARRAY
                and not getattr(m, "frozen", False)):
            m.freeze()
    out = []
    for prog in progs:
        verdict = ProgramVerdict(prog.name, prog.section)
        try:
            verdict.result = verify(prog, log_level=log_level, max_insns=max_insns,
                                    platform=obj.platform)
        except BpfVerifierError as exc:
            verdict.error = exc.with_context(getattr(obj, "path", None), prog.name)
        out.append(verdict)
    return out
