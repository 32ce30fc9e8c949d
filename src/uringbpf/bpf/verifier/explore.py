"""Path exploration: the work list, checkpoints, state pruning, loop detection and widening."""

from __future__ import annotations

from .. import isa, progtypes
from ...errors import BpfVerifierError
from ..helpers import Ret
from ..platform import Platform
from . import scalar as sc
from .scalar import (  # names: cheaper than module attributes, per instruction
    U32, U64,
)
from ..isa import (  # names: cheaper than module attributes, per instruction
    ADD, ALU, ALU64, AND, ARSH, CALL, CALL_HELPER, EXIT, IMM, JA, JCOND, JEQ, JMP32, JNE,
    LD, LDX, NEG, OP_JA32, OP_MAY_GOTO, OR, PSEUDO_CALL, PSEUDO_FUNC,
    ST, STACK_SIZE, STX, SUB, X,
)
from .cfg import CALLER_SAVED, Cfg, CfgError
from .disasm import insn_text
from .state import (
    NOT_INIT, PTR_BUF, PTR_CTX, PTR_STACK, SCALAR, UNKNOWN_SCALAR, Frame, ObjSlot, Reg, State,
    iter_depths_differ, scalar, state_subsumes, states_equal,
)
from .common import (
    _platform_in_effect, LEN_ID, Num, LOG_LIMIT, MAX_INSNS_PROCESSED, VerifierResult,
    _Checkpoint, _DInsn, _GlobalFunc, _Reject, _flag, _widened, gc_paused,
)
from .transfer import TransferMixin


# BPF_COMPLEXITY_LIMIT_JMP_SEQ: the most states the kernel keeps queued for later
JMP_SEQ_LIMIT = 8192


class _SignMask32:
    """Marker (as a scalar register's ``obj``): the value is 0 or 0xffffffff."""

    def __repr__(self) -> str:
        return "sign_mask32"


SIGN_MASK32 = _SignMask32()


class _NotEqual:
    """Marker (as a scalar register's ``obj``): the value differs from each of ``values``."""

    __slots__ = ("values",)

    def __init__(self, values: frozenset):
        self.values = values

    def __eq__(self, other) -> bool:
        return type(other) is _NotEqual and other.values == self.values

    def __hash__(self) -> int:
        return hash(self.values)

    def __repr__(self) -> str:
        return f"not_equal({sorted(self.values)})"


def _evictable(cp: _Checkpoint, forced: bool) -> bool:
    """Has ``cp`` missed too often to be worth comparing against?  (The kernel's
    ``miss_cnt > hit_cnt * n + n``: n = 3, or 64 for an unfinished state at a forced
    checkpoint, which is how iterator loops converge.)"""
    n = 64 if forced and not cp.done else 3
    return cp.miss > cp.hit * n + n


def _maybe_looping(old: State, cur: State, idx: tuple) -> bool:
    """The part of :func:`states_equal` compared exactly, register by register, as the
    kernel's states_maybe_looping: the frame count and the innermost frame's live
    registers ``idx`` (a scalar's value; a pointer's type, fixed and variable offset).
    Equal states give True (ids, stack slots and outer frames are left to states_equal);
    False, at the first difference (a loop counter), spares the full comparison."""
    if len(old.frames) != len(cur.frames):
        return False
    fo: Frame = old.frames[-1]
    fc: Frame = cur.frames[-1]
    ro = fo.regs
    rc = fc.regs
    a: Reg
    b: Reg
    for i in idx:
        a = ro[i]
        b = rc[i]
        if a is b:
            continue
        if a.t != b.t:
            return False
        if a.t != NOT_INIT and (a.var != b.var or (a.t != SCALAR and a.off != b.off)):
            return False
    return True


class Verifier(TransferMixin):
    """One verification: the exploration loop and state pruning (this module), the
    per-instruction effects (transfer.py), memory checks (memory.py) and calls
    (calls.py) as mixins sharing this object's state."""

    def __init__(self, program: isa.Program, ptype: progtypes.ProgType, log_level: int = 0,
                 max_insns: int = MAX_INSNS_PROCESSED, platform: Platform | None = None):
        self.program = program
        self.platform = platform if platform is not None else _platform_in_effect()
        self.insns = program.insns
        self._dec = [_DInsn(i) for i in program.insns]   # what _explore reads (common.py)
        self.ptype = ptype
        self.log_level = log_level
        self.max_insns = max_insns
        self.sleepable = progtypes.is_sleepable(program, ptype)
        self.log_lines: list[str] = []
        self.log_size = 0
        self.next_id = LEN_ID + 1
        self.processed = 0
        # the kernel's jmps_processed, and both counters when the last checkpoint was
        # added (prev_jmps_processed / prev_insn_processed): they space checkpoints out
        self.jmps_processed = 0
        self._prev_jmps = 0
        self._prev_processed = 0
        self.total_states = 0
        self.cur_states = 0
        self.peak_states = 0
        self.stack_depth: dict[int, int] = {}
        self.explored: dict[int, list[_Checkpoint]] = {}
        self._live_idx: dict[int, tuple[int, ...]] = {}   # pc -> live registers (_loop_sig)
        self._lddw_regs: dict[int, Reg] = {}   # pc -> the register an lddw makes (transfer.py)
        self._callees: dict[tuple[int, int], object] = {}   # (src, imm) -> helper (_callee)
        self.iter_next_pcs: set[int] = set()
        # the branches decided by register values so far, and the precision comparisons
        # against decided checkpoints use (calls.CallsMixin._branch_precision)
        self.decided_pcs: set[int] = set()
        self._branch_prec: tuple | None = None
        self._branch_recomputes = 0
        # per instruction: 0, or what its loads/stores go through: 1 other, 2 an arena
        # pointer (memory.py: _note_arena_access, arena_rewrite)
        self._access_kind = bytearray(len(program.insns))
        self.arena_zext: set[int] = set()   # 64-bit ALU on an arena pointer (transfer.py)
        self._iter_next_arg: dict[int, int] = {}
        self._new_dynptr_parent = 0
        self.global_funcs: dict[int, _GlobalFunc] = {}
        self._in_global: int | None = None   # entry of the global function being verified
        # False: explore every path (no state pruning); the pruning fuzzer compares
        # verdicts with and without it (bench/fuzz_verifier.py --pruning)
        self.prune = True
        self.callback_entries: set[int] = set()
        # 1 at each instruction an explored path reached (the kernel's insn_aux_data.seen):
        # the others are dead code, rewritten to `ja -1` after success (sanitize_dead_code)
        self.seen = bytearray(len(program.insns))
        self.cfg: Cfg | None = None
        self.pc = 0
        self.state: State | None = None
        self.prune_points: set[int] = set()
        self._prune_at = bytearray()         # 1 at each prune point (_explore's test)
        self._dfs: list = []                 # the work list of _explore
        self._arena_assoc: bool | None = None  # transfer.py: _arena_associated, once known
        self._ret_size_value = None          # calls.py: a helper's constant size argument

    # ------------------------------------------------------------ logging

    def log(self, line: str) -> None:
        """Append a line to the log (dropped past the log limit, like the kernel's buffer)."""
        if self.log_size < LOG_LIMIT:
            self.log_lines.append(line)
            self.log_size += len(line) + 1

    def insn_line(self, pc: int) -> str:
        """The log line of instruction ``pc``: ``pc: (opcode) text``."""
        insn = self.insns[pc]
        return f"{pc}: ({insn.opcode:02x}) {insn_text(insn, pc, self._kfunc_name, self._helper_name)}"

    def _kfunc_name(self, imm: int) -> str | None:
        kfuncs = self.program.kfuncs
        return kfuncs[imm] if 0 <= imm < len(kfuncs) else None

    def _helper_name(self, helper_id: int) -> str | None:
        h = self.platform.get_helper(helper_id)
        return None if h is None else h.proto.name

    def new_id(self) -> int:
        """A fresh id for linking registers (pointer and scalar ids)."""
        self.next_id += 1
        return self.next_id

    # ------------------------------------------------------------ helpers lookups

    def _proto_for_call(self, insn: isa.Insn):
        h = self._callee(insn)
        return None if h is None else h.proto

    def _arg_count(self, insn: isa.Insn) -> int:
        proto = self._proto_for_call(insn)
        return 5 if proto is None else min(5, len(proto.args))

    def _returns_pointer(self, insn: isa.Insn) -> bool:
        """May the helper or kfunc ``insn`` calls leave a pointer in r0 (what
        CallsMixin._ret_reg makes of its prototype; unknown callees: yes)?"""
        proto = self._proto_for_call(insn)
        if proto is None or _flag(proto, "ITER_NEXT") is not None:
            return True
        return proto.ret not in (Ret.INTEGER, Ret.VOID)

    # ------------------------------------------------------------ entry

    def run(self) -> VerifierResult:
        """Verify the program: its statistics, or BpfVerifierError with the log."""
        try:
            self.cfg = Cfg(self.program, self._arg_count, self.ptype.ret_range is not None,
                           self._returns_pointer)
        except CfgError as exc:
            self.pc = exc.pc
            self.log(str(exc))
            raise BpfVerifierError(str(exc), self._final_log(), exc.pc) from None
        # what _is_state_visited reads of the CFG's analyses at every prune point, made
        # once: the live masks and the imprecise-register masks of a one-frame state
        self._masks1 = [[live] for live in self.cfg.live_in]
        self._impr1 = [[live & ~prec] for live, prec in zip(self.cfg.live_in,
                                                              self.cfg.precise_in)]
        self._precise_slots = self.cfg.precise_slots
        for pc, insn in enumerate(self.insns):
            if insn.is_call and insn.src != PSEUDO_CALL and not self.cfg.second_slot[pc]:
                proto = self._proto_for_call(insn)
                if proto is None and insn.src == CALL_HELPER:
                    continue    # 7.2 refuses an unknown helper id only where reached (_do_call)
                if proto is None:
                    # an unknown kfunc is refused everywhere (the kernel's add_kfunc_call)
                    self.pc = pc
                    msg = (f"invalid func unknown#{insn.imm}" if insn.src == CALL_HELPER else
                           f"calling kernel function {self.program.kfuncs[insn.imm]} is not allowed")
                    self.log(self.insn_line(pc))
                    self.log(msg)
                    raise BpfVerifierError(msg, self._final_log(), pc)
                it = _flag(proto, "ITER_NEXT")
                if it is not None:
                    self.iter_next_pcs.add(pc)
                    self._iter_next_arg[pc] = int(it or 0)
        for pc, insn in enumerate(self.insns):
            if insn.is_lddw and insn.src == PSEUDO_FUNC and not self.cfg.second_slot[pc]:
                self.iter_next_pcs.add(pc + insn.imm + 1)   # callback entries loop like next()
                self.callback_entries.add(pc + insn.imm + 1)
        self.prune_points = self._kernel_prune_points()
        self._prune_at = bytearray(len(self.insns))
        for pc in self.prune_points:
            self._prune_at[pc] = 1
        st = self._entry_state()
        try:
            self.global_funcs = self._find_global_funcs()
            self._explore(st)
            for entry in sorted(self.global_funcs):
                self._verify_global_func(entry)
            self._check_stack_chain()
        except _Reject as exc:
            # with a trace (log level 1/2) the instruction was just printed: once only
            if not self.log_level and 0 <= self.pc < len(self.insns):
                self.log(self.insn_line(self.pc))
            for line in exc.pre:
                self.log(line)
            self.log(exc.message)
            if self.state is not None:
                self.log(f"{self.pc}: {self.state.fmt_regs()}")
            raise BpfVerifierError(exc.message, self._final_log(), self.pc) from None
        result = VerifierResult(self.processed, self.total_states, self.peak_states,
                                max((len(v) for v in self.explored.values()), default=0),
                                self.max_stack, dict(self.stack_depth), self.ptype.name)
        self.log(result.stats_line())
        result.log = "\n".join(self.log_lines) + "\n"
        return result

    def _kernel_prune_points(self) -> set[int]:
        """Where the kernel looks for an equal state (its check_cfg marks): each
        conditional jump itself, every jump target, the instruction after a call, a
        subprogram call itself, an iterator's next() and a callback entry.  The
        fall-through of a conditional jump is not one: its state was looked up at the
        jump just before."""
        points = set(self.cfg.jump_targets) | self.iter_next_pcs
        for pc, insn in enumerate(self.insns):
            if self.cfg.second_slot[pc]:
                continue
            if insn.is_jump and insn.op != JA:
                points.add(pc)
            elif insn.is_call:
                points.add(pc + 1)
                if insn.src == PSEUDO_CALL:
                    points.add(pc)
        return {pc for pc in points if pc < len(self.insns)}

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
            f.regs[2] = Reg(SCALAR, sc.urange(0, U32), id=LEN_ID)
            st.buf_min = pt.buffer_min_size
        st.frames.append(f)
        return st

    # ------------------------------------------------------------ exploration

    @gc_paused
    def _explore(self, st: State, start: int = 0) -> None:
        """Explore every path from ``start`` in state ``st`` (the collector paused)."""
        self._explore_paths(st, start)

    def _explore_paths(self, st: State, start: Num) -> None:
        # (a method of its own, not the decorated _explore: the compiled core types its
        # locals, explore.pxd, so the per-instruction loop reads C integers)
        # (pc, state, pc of the branch it came from; None for the entry)
        stack: list[tuple[int, State, int | None]] = [(start, st, None)]
        self._dfs = stack
        insns = self._dec
        prune_at = self._prune_at
        log_level = self.log_level
        seen = self.seen
        while stack:
            pc, st, origin = stack.pop()
            self.state = st
            # (the kernel prints a popped state that is pruned at once as one line,
            # "from X to Y: safe", without its registers)
            pending_from = log_level and origin is not None
            while True:
                self.pc = pc
                self.processed += 1
                if self.processed > self.max_insns:
                    raise _Reject(f"BPF program is too large. Processed {self.processed} insn")
                if prune_at[pc] and self.prune:
                    if self._is_state_visited(pc, st):
                        if log_level:
                            self.log(f"from {origin} to {pc}: safe" if pending_from
                                     else f"{pc}: safe")
                        self._path_end(st)
                        break
                if pending_from:
                    self.log(f"from {origin} to {pc}: {st.fmt_regs()}")
                    pending_from = False
                insn: _DInsn = insns[pc]   # (typed: struct reads in the compiled core)
                if log_level:
                    self.log(self.insn_line(pc))
                if not seen[pc]:
                    self._first_visit(st, insn, pc)     # memory.py: the reached-only checks
                cls = insn.opcode & 0x07    # insn.cls without the property call
                if cls == ALU64 or cls == ALU:
                    op = insn.op
                    if op == AND or op == OR:
                        self._maybe_fork_scalars(st, insn, pc)
                        self._do_alu(st, insn)
                    elif cls == ALU and (op == NEG or op == ARSH):
                        self._do_alu_sign_mask32(st, insn)
                    elif (op == ADD or op == SUB) and cls == ALU64:
                        cur = st.frames[-1]
                        dreg = cur.regs[insn.dst]
                        if type(dreg.obj) is _NotEqual:
                            self._do_alu_not_equal(st, insn)
                        else:
                            self._do_alu(st, insn)
                    else:
                        self._do_alu(st, insn)
                    pc += 1
                elif cls == LDX:
                    self._do_ldx(st, insn)
                    pc += 1
                elif cls == STX or cls == ST:
                    self._do_store(st, insn)
                    pc += 1
                elif cls == LD:
                    if insn.mode == IMM:
                        self._do_lddw(st, insn, pc)
                        pc += 2
                    else:
                        self._do_ld_abs(st, insn)
                        pc += 1
                else:
                    self.jmps_processed += 1
                    op = insn.op
                    if op == JA:
                        # (insn.jump_offset(), inline: gotol keeps its offset in imm)
                        pc += (insn.imm if insn.opcode == OP_JA32 else insn.off) + 1
                    elif op == JCOND:     # may_goto (the only JCOND cfg.py lets in)
                        pc = self._do_may_goto(st, insn, pc)
                    elif op == EXIT:
                        nxt = self._do_exit(st)
                        if nxt is None:
                            self._path_end(st)
                            break
                        pc = nxt
                    elif op == CALL:
                        pc = self._do_call(st, insn, pc)
                    else:
                        if op == JEQ or op == JNE:
                            branches = self._cond_jump_eq(st, insn, pc)
                        else:
                            branches = self._do_cond_jump(st, insn, pc)
                        if not branches:  # pragma: no cover - both edges impossible
                            self._path_end(st)
                            break
                        if len(branches) == 2:
                            (pc, st), other = branches[0], branches[1]
                            cp = st.checkpoint
                            if cp is not None:
                                cp.live += 1
                            self._push(other[0], other[1], self.pc)
                        else:
                            pc, st = branches[0]
                        self.state = st
                if log_level >= 2:
                    self.log(f"{pc}: {st.fmt_regs()}")

    def _push(self, pc: Num, st: State, origin: Num) -> None:
        """Queue a state to explore later (the kernel's push_stack).  The kernel refuses a
        program once more than BPF_COMPLEXITY_LIMIT_JMP_SEQ states are pending at once;
        our queue is explored in the kernel's order (the fall-through or the current
        path first, the jump target, the other scalar fork, the next iteration queued), so
        the count is the kernel's."""
        stack = self._dfs
        stack.append((pc, st, origin))
        if len(stack) > JMP_SEQ_LIMIT:
            raise _Reject(f"The sequence of {len(stack)} jumps is too complex.")

    def _do_may_goto(self, st: State, insn: isa.Insn, pc: int) -> int:
        """``may_goto``, as the kernel's check_cond_jmp_op (BPF_JCOND) explores it: this
        state goes on at the jump target (the way out of the loop, taken at run time once
        the frame's hidden counter is spent), and the fall-through (the loop body) is queued
        with ``may_goto_depth + 1``, its scalars widened against the previous visit of this
        instruction on the path (widen_imprecise_scalars).  Nothing is compared: both ways
        are always possible.  Returns the next pc."""
        body = st.copy()
        body.may_goto_depth += 1
        if body.checkpoint is not None:
            body.checkpoint.live += 1
        prev = self._may_goto_prev(st, pc)
        if prev is not None:
            self._widen_may_goto(prev, body, pc + 1)
        self._push(pc + 1, body, pc)
        return pc + insn.off + 1

    @staticmethod
    def _may_goto_prev(st: State, pc: int) -> _Checkpoint | None:
        """The kernel's find_prev_entry: the latest unfinished state stored at ``pc`` on this
        path with the same call sites, not counting the one just stored (a may_goto is a
        forced checkpoint, so each visit that is not pruned stores one)."""
        cp = st.checkpoint
        if cp is not None and cp.pc == pc:
            cp = cp.parent
        sites = [f.callsite for f in st.frames]
        while cp is not None:
            if (cp.pc == pc and not cp.done
                    and [f.callsite for f in cp.state.frames] == sites):
                return cp
            cp = cp.parent
        return None

    def _widen_may_goto(self, prev: _Checkpoint, st: State, pc: int) -> None:
        """Forget (make unknown) the scalars of ``st`` that changed since ``prev``, the loop's
        previous visit, unless the kernel would have marked them precise by then: values
        that reach a memory access or pointer arithmetic (static, ``may_goto_keep_in``) and
        constants later compared with an immediate, or with registers that all hold
        constants (``may_goto_cmp_in``, ``may_goto_cmpx_in``: the kernel's branch is
        decided, so a loop with a constant bound unrolls as there).  Spilled
        scalars are always widened.  Widening only makes the state more general: whatever
        is kept, the result stays sound."""
        old = prev.state
        if len(old.frames) != len(st.frames):
            return
        cfg = self.cfg
        last = len(st.frames) - 1
        for depth, (fo, fc) in enumerate(zip(old.frames, st.frames)):
            at = pc if depth == last else st.frames[depth + 1].callsite + 1
            keep = cfg.may_goto_keep_in[at]
            compared = cfg.may_goto_cmp_in[at]
            # reg-reg compares count as decided only when both sides come into the loop
            # (two scalar registers at least) and each holds a constant now; a bound read
            # from memory in the loop keeps the counter widened
            cmpx = cfg.may_goto_cmpx_in[at]
            sides = [fc.regs[j] for j in range(10) if cmpx >> j & 1 and fc.regs[j].t == SCALAR]
            if len(sides) >= 2 and all(r.var[5] == 0 for r in sides):
                compared |= cmpx
            for i in range(10):
                ro, rc = fo.regs[i], fc.regs[i]
                if (ro.t != SCALAR or rc.t != SCALAR or ro.var == rc.var or keep >> i & 1
                        or rc.id == LEN_ID):
                    continue
                if compared >> i & 1 and ro.var[5] == 0 and rc.var[5] == 0:
                    continue
                fc.regs[i] = UNKNOWN_SCALAR
            for k, slot in list(fc.stack.items()):
                so = fo.stack.get(k)
                if (so is None or so[0] != "S" or slot[0] != "S" or so[1].t != SCALAR
                        or slot[1].t != SCALAR or so[1].var == slot[1].var):
                    continue
                fc.stack[k] = ("S", UNKNOWN_SCALAR)

    def _maybe_fork_scalars(self, st: State, insn: isa.Insn, pc: Num) -> None:
        """``dst &= K`` / ``dst |= K`` on a scalar that is 0 or -1 (signed range [-1, 0],
        64-bit, or 32-bit for a register marked by :meth:`_do_alu_sign_mask32`): like the
        kernel's maybe_fork_scalars, go on with dst = -1 and queue a state with dst = 0
        that runs this instruction again.  Each path then knows its exact result (clang's
        branch-free ``x & -(y & 1)``), and each fork counts as a pending jump."""
        f: Frame = st.frames[-1]     # (typed: struct reads in the compiled core, per AND/OR)
        regs = f.regs
        d: Reg = regs[insn.dst]
        if d.t != SCALAR:
            return
        v = d.var
        if v[5] == 0:
            return
        if insn.source == X:
            s: Reg = regs[insn.src]
            if s.t != SCALAR or (s.var[5] if insn.cls == ALU64 else s.var[5] & U32):
                return
        if v[2] == -1 and v[3] == 0:
            ones = U64
        elif d.obj is SIGN_MASK32 and v[1] <= U32:
            # the low half is 0 or 0xffffffff, the high half zero (32-bit results)
            ones = U32
        else:
            return
        other = st.copy()
        if other.checkpoint is not None:
            other.checkpoint.live += 1
        other.cur.regs[insn.dst] = scalar(sc.const(0))
        regs[insn.dst] = scalar(sc.const(ones))
        self._push(pc, other, pc)

    def _cond_jump_eq(self, st: State, insn: isa.Insn, pc: Num):
        """``if rX == K`` / ``if rX != K`` (64- or 32-bit; K an immediate or a constant
        register) on a scalar linked to copies (an id): where a path took the "not equal"
        side of the same test, the test is decided, as Linux 7.2 does.  Measured in the
        guest: ``if r6 == 7`` twice queues one branch, and so does a loop testing a value
        that does not change; the fact holds for the copies of r6 (before or after the
        test, spilled or not) but not for a value without copies (``r6 &= 15``; a new
        value) — the kernel keeps it with the linked registers.  The excluded constants
        ride on the scalar registers as ``obj`` like :data:`SIGN_MASK32`, and die with the
        value (a fact we drop where the kernel keeps it, ``r6 += 5``, only costs a branch)."""
        d = st.frames[-1].regs[insn.dst]
        if d.t != SCALAR or not insn.off or not (d.id or type(d.obj) is _NotEqual):
            # (the fact is made only for a value with copies, as in 7.2; once made it
            # also stays with a value moved by a constant, _do_alu_not_equal)
            return self._do_cond_jump(st, insn, pc)
        is32 = insn.cls == JMP32
        if insn.source == X:
            s = st.frames[-1].regs[insn.src]
            if s.t != SCALAR or s.var[5] & (U32 if is32 else U64):
                return self._do_cond_jump(st, insn, pc)
            k = s.var[4] & (U32 if is32 else U64)
        else:
            k = insn.imm & (U32 if is32 else U64)
        key = (k, is32)
        ne_pc = pc + 1 if insn.op == JEQ else pc + 1 + insn.off
        known = d.obj.values if type(d.obj) is _NotEqual else frozenset()
        if key in known:
            self._branch_decided(st)
            return [(ne_pc, st)]
        branches = self._do_cond_jump(st, insn, pc)
        if len(branches) == 2 and d.id:
            for bpc, bst in branches:
                if bpc != ne_pc:
                    continue
                for f, where, r in list(bst.all_regs()):
                    # (the same id and delta: the same value; partners with another
                    # delta are not told, which only costs a branch)
                    if r.t == SCALAR and r.id == d.id and r.off == d.off and r.var[5]:
                        had = r.obj.values if type(r.obj) is _NotEqual else frozenset()
                        bst.set_reg_anywhere(f, where, r.replace(obj=_NotEqual(had | {key})))
        return branches

    def _do_alu_not_equal(self, st: State, insn: isa.Insn) -> None:
        """``rX += C`` / ``rX -= C`` (64-bit, C an immediate or a constant register) on a
        value known to differ from some constants: it then differs from each of them moved
        by C, as 7.2 keeps it through its linked registers with a delta (``r6 != 7``, then
        ``r6 += 5``, decides ``r6 == 12``).  Adding a constant is a bijection modulo 2**64
        (and 2**32 for the low half), so the moved fact is exact."""
        d = st.frames[-1].regs[insn.dst]
        if insn.source == X:
            s = st.frames[-1].regs[insn.src]
            c = s.var[4] if s.t == SCALAR and s.var[5] == 0 else None
        else:
            c = insn.imm & U64
        self._do_alu(st, insn)
        r = st.frames[-1].regs[insn.dst]
        if c is None or r.t != SCALAR or not r.var[5]:
            return
        if insn.op == SUB:
            c = -c
        moved = frozenset(((k + c) & (U32 if is32 else U64), is32) for k, is32 in d.obj.values)
        st.frames[-1].regs[insn.dst] = r.replace(obj=_NotEqual(moved))

    def _do_alu_sign_mask32(self, st: State, insn: isa.Insn) -> None:
        """A 32-bit ``neg`` or ``s>>=``, remembering when the result is 0 or 0xffffffff.

        The kernel keeps a signed 32-bit range, [-1, 0] after ``-w`` of a value in [0, 1]
        and after ``w s>>= 31`` (or any ``s>>=`` of such a value); our 32-bit values are
        zero-extended 64-bit ranges, which cannot say "0 or 0xffffffff".  The fact rides on
        the scalar register as ``obj`` (unused by scalars, ignored by pruning); every later
        write makes a new register without it, so it never outlives the value."""
        d = st.frames[-1].regs[insn.dst]
        mark = False
        if d.t == SCALAR:
            a = sc.trunc32(d.var)
            if insn.op == NEG:
                mark = a[0] == 0 and a[1] == 1
            else:
                if insn.source == X:
                    # only a known amount below 32: what larger ones do is the engine's
                    s = st.frames[-1].regs[insn.src]
                    k = s.var[4] if s.t == SCALAR and s.var[5] == 0 and s.var[4] < 32 else -1
                else:
                    k = insn.imm   # 0..31 (cfg.py refuses other 32-bit shift immediates)
                mark = k == 31 or (0 <= k < 32 and d.obj is SIGN_MASK32)
        self._do_alu(st, insn)
        r = st.frames[-1].regs[insn.dst]
        if mark and r.t == SCALAR and r.var[5] and r.var[1] <= U32:
            st.frames[-1].regs[insn.dst] = r.replace(obj=SIGN_MASK32)

    def _path_end(self, st: State) -> None:
        c: _Checkpoint = st.checkpoint
        while c is not None:
            c.live -= 1
            if c.live > 0:
                break
            c.done = True
            self.cur_states -= 1
            c = c.parent

    def _live_masks(self, st: State, pc: Num) -> list[int]:
        live = self.cfg.live_in
        masks = []
        for f in st.frames[:-1]:
            masks.append(live[f.callsite + 1] & ~CALLER_SAVED)
        masks.append(live[pc])
        return masks

    def _live_index(self, pc: Num) -> tuple:
        """The live registers at ``pc`` (below r10), as a tuple of register numbers."""
        idx = self._live_idx.get(pc)
        if idx is None:
            live = self.cfg.live_in[pc]
            idx = self._live_idx[pc] = tuple([i for i in range(10) if live >> i & 1])
        return idx

    def _is_state_visited(self, pc: Num, st: State) -> bool:
        """Look for a stored state at ``pc`` that covers ``st`` (prune: True), else maybe
        store ``st`` as a new checkpoint.  The bookkeeping is the kernel's, so the
        processed-instruction counts (and verdicts near the 1M budget) follow it: a new
        checkpoint only after 2 jumps and 8 instructions since the last one (anywhere),
        inside a loop (an unfinished state at ``pc``) only after 20 jumps or 100
        instructions, the newest states compared first, a miss counted only when a state
        will be added, and a state evicted once it missed more than 3 + 3 x hits times.
        Storing fewer states than possible is always sound: it only prunes less."""
        if len(st.frames) > 1:
            masks = self._live_masks(st, pc)
            impr0 = None
        else:
            masks = self._masks1[pc]
            impr0 = self._impr1[pc]
        impr1 = None        # the imprecise masks for decided checkpoints, made once per visit
        lst = self.explored.get(pc)
        iter_point = pc in self.iter_next_pcs
        d: _DInsn = self._dec[pc]
        may_goto = d.opcode == OP_MAY_GOTO     # (is_may_goto, inline; the copy's C field)
        # an iterator's next(), a callback entry and a may_goto are the kernel's forced
        # checkpoints
        force_new = iter_point or may_goto
        jmps = self.jmps_processed - self._prev_jmps
        insns = self.processed - self._prev_processed
        add_new = force_new or (jmps >= 2 and insns >= 8)
        if lst:
            live_idx = None
            # newest first (the kernel adds at the list head); a state is evicted as soon
            # as it misses once too often, before a later one may hit
            for i in range(len(lst) - 1, -1, -1):
                cp: _Checkpoint = lst[i]
                if cp.done and cp.loop_head is not None and not cp.loop_head.done:
                    # below cp a may_goto loop was pruned against a state still being
                    # explored: like the kernel inside an SCC whose back edges are pending
                    # (incomplete_read_marks, RANGE_WITHIN), compare every live range
                    if state_subsumes(cp.state, st, masks):
                        cp.hit += 1
                        self._mark_decided(st)
                        return True
                elif cp.done:
                    if cp.decided:
                        branch_prec, branch_slots = self._branch_precision()
                        slots = branch_slots[pc]
                        if impr1 is None:
                            impr1 = [0] * (len(masks) - 1) + [masks[-1] & ~branch_prec[pc]]
                        impr = impr1
                    else:
                        slots = self._precise_slots[pc]
                        if impr0 is None:
                            impr0 = ([0] * (len(masks) - 1)
                                     + [masks[-1] & ~self.cfg.precise_in[pc]])
                        impr = impr0
                    ok = state_subsumes(cp.state, st, masks, impr, slots)
                    if ok:
                        cp.hit += 1
                        if cp.decided:  # what was proven below cp relied on decided branches
                            self._mark_decided(st)
                        return True
                else:
                    # at an iterator's next() (or a callback entry), a state covered by an
                    # unfinished one converges, but only while the iterator is still
                    # active: a drained one returns NULL forever (the kernel's rule).  And
                    # only against an earlier iteration of the same iterator: one made
                    # anew each time round an outer loop restarts (`for (;;) { new; next;
                    # destroy; }` never ends), which the checkpoints before next() used
                    # to catch; the kernel's sparser ones need not be there.
                    if (iter_point and state_subsumes(cp.state, st, masks)
                            and self._loop_point_converges(st, pc)
                            and self._same_loop(cp.state, st, pc in self.callback_entries)):
                        self._mark_decided(st)
                        return True
                    # at a may_goto, a state covered by an unfinished one that was there
                    # with another may_goto depth converges (the kernel compares with
                    # RANGE_WITHIN: every live range, precise or not); the run-time counter,
                    # not the verifier, bounds the loop
                    if (may_goto and cp.state.may_goto_depth != st.may_goto_depth
                            and state_subsumes(cp.state, st, masks)):
                        cp.hit += 1
                        self._mark_decided(st)
                        c = st.checkpoint
                        while c is not None and c is not cp:
                            if c.loop_head is None or c.loop_head.done:
                                c.loop_head = cp
                            c = c.parent
                        return True
                    if (cp.state.cb_steps == st.cb_steps
                            and cp.state.may_goto_depth == st.may_goto_depth):
                        # what equal states have equal, compared first: it skips the full
                        # comparison for nearly every earlier loop iteration
                        if live_idx is None:
                            live_idx = self._live_index(pc)
                        if (_maybe_looping(cp.state, st, live_idx)
                                and states_equal(cp.state, st, masks)
                                and not iter_depths_differ(cp.state, st)
                                and self._is_ancestor(cp, st.checkpoint)):
                            raise _Reject(f"infinite loop detected at insn {pc}")
                    # inside a loop: different iterations rarely prune each other, so
                    # store one only now and then (the kernel's 20 jumps / 100 insns)
                    if not force_new and jmps < 20 and insns < 100:
                        add_new = False
                if add_new:
                    # (without a state to add, a miss is not counted: iterations of a
                    # loop would otherwise evict the states stored before it)
                    cp.miss += 1
                if _evictable(cp, force_new):
                    del lst[i]
            if iter_point and pc in self.callback_entries:
                self._widen(st, pc, st.checkpoint)
        else:
            lst = self.explored[pc] = []
        if not add_new:
            return False
        self._prev_jmps = self.jmps_processed
        self._prev_processed = self.processed
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
                            else scalar(sc.urange(0, U32)) for o, h in zip(so[2], slot[2]))
                        fc.stack[k] = ("H", slot[1], halves)
            return

    # ------------------------------------------------------------ after exploration

    @property
    def max_stack(self) -> int:
        """Deepest stack use along any call chain, in bytes."""
        return self._chain_depth(0) if self.cfg else 0

    def _frame_size(self, subprog: int) -> int:
        # the kernel's round_up_stack_depth for a JIT-ed program (x86 and every distro
        # kernel JIT): 16-byte multiples.  Our engines give every frame its own 512 bytes,
        # so this limit is the kernel's rule, not a need of ours.
        return (self.stack_depth.get(subprog, 0) + 15) // 16 * 16

    def _chain(self, f: int) -> tuple[int, int]:
        """(bytes, frames) of the deepest call chain from ``f``."""
        callees = self.cfg.callees.get(f, ())
        size, frames = max((self._chain(g) for g in callees), default=(0, 0))
        return self._frame_size(f) + size, frames + 1

    def _chain_depth(self, f: int) -> int:
        return self._chain(f)[0]

    def _check_stack_chain(self) -> None:
        total, frames = self._chain(0)
        if total > STACK_SIZE:
            raise _Reject(f"combined stack size of {frames} calls is {total}. Too large")
