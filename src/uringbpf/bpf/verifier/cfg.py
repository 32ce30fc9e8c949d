"""Static checks that need no value tracking: instruction fields, control flow, liveness.

Run before the path exploration so that it can assume: every jump lands on an
instruction head inside its own function, every function ends in ``exit`` or ``ja``,
no instruction is unreachable, there is no recursion, and ``live_in[pc]`` tells which
registers may still be read (used to ignore dead registers when comparing states).
"""

from __future__ import annotations

from .. import isa
from .common import _MAP_TYPE_ARENA, _MAP_TYPE_ARRAY

ALL_REGS = (1 << 10) - 1       # r0..r9 (r10 is fixed per frame)
ARG_REGS = 0b111110            # r1..r5
CALLER_SAVED = 0b111111        # r0..r5
R6 = 1 << 6                   # the context of LD_ABS/LD_IND


class CfgError(Exception):
    """A control-flow fault found before exploration (jump out of range, unreachable code...), at
    ``pc``."""
    def __init__(self, pc: int, message: str):
        self.pc = pc
        super().__init__(message)


def _check_lddw(insns: list[isa.Insn], pc: int, nmaps: int, maps, bad) -> None:
    """The 64-bit immediate load as the kernel's resolve_pseudo_ldimm64 (every lddw, reached
    or not) and check_ld_imm take it: the second slot is all zero but its imm, MAP_IDX wants
    a zero second imm, only arrays of one value and arenas have a direct value, and the
    value's offset (the second imm, as u32) lies inside it.

    Our :class:`~uringbpf.bpf.isa.Insn` carries the immediate twice (``imm`` plus the second
    slot's ``imm``, and ``imm64``); :func:`sync_lddw_imm64` makes the copy agree first.
    """
    insn = insns[pc]
    nxt = insns[pc + 1] if pc + 1 < len(insns) else None
    if nxt is None or nxt.opcode or nxt.dst or nxt.src or nxt.off:
        bad("invalid bpf_ld_imm64 insn")
    src = insn.src
    if src > isa.PSEUDO_MAP_IDX_VALUE or (src in (isa.PSEUDO_MAP_FD, isa.PSEUDO_MAP_IDX) and nxt.imm):
        bad("unrecognized bpf_ld_imm64 insn")
    if src in (isa.PSEUDO_MAP_FD, isa.PSEUDO_MAP_VALUE, isa.PSEUDO_BTF_ID):
        bad(f"unsupported lddw form src={src} (programs must be relocated)")
    if src in (isa.PSEUDO_MAP_IDX, isa.PSEUDO_MAP_IDX_VALUE):
        if not 0 <= insn.imm < nmaps:
            bad(f"invalid map index {insn.imm} (have {nmaps} maps)")
        if src == isa.PSEUDO_MAP_IDX_VALUE and maps is not None:
            _check_direct_value(maps[insn.imm], nxt.imm & isa.U32, bad)
    if insn.off:
        bad("BPF_LD_IMM64 uses reserved fields")


def sync_lddw_imm64(program: isa.Program) -> None:
    """Set every ``lddw``'s ``imm64`` from the fields the kernel reads (``imm`` and the
    second slot's ``imm``, :func:`~uringbpf.bpf.isa.lddw_imm64`). A hand-built instruction
    may set only those (as BPF_RAW_INSN does) or a stale ``imm64``; everything after the
    verifier (transfer functions, bytecode, JIT cache keys) then reads one value."""
    insns = program.insns
    pc = 0
    while pc < len(insns) - 1:
        if insns[pc].is_lddw:
            insns[pc].imm64 = isa.lddw_imm64(insns, pc)
            pc += 2
        else:
            pc += 1


def _check_direct_value(m, off: int, bad) -> None:
    """``map_direct_value_addr`` of the map types we have: an array of exactly one value
    (array_map_direct_value_addr) and an arena (arena_map_direct_value_addr); any other
    type has none. Maps that do not say their type (test doubles) are left to the
    exploration's offset check."""
    mtype = getattr(m, "type", None)
    if mtype is None:
        return
    if mtype == _MAP_TYPE_ARENA:
        size = getattr(m, "max_entries", 0) * 4096
        if off > size:
            bad(f"invalid access to map value pointer, value_size=0 off={off}")
        return
    if mtype != _MAP_TYPE_ARRAY:
        bad("no direct value access support for this map type")
    vs = getattr(m, "value_size", 0)
    if getattr(m, "max_entries", 0) != 1 or off >= vs:
        bad(f"invalid access to map value pointer, value_size={vs} off={off}")


def _in_insn_table(insn: isa.Insn) -> bool:
    """Whether an ALU or jump opcode is in the kernel's instruction table (core.c's
    BPF_INSN_MAP, which resolve_pseudo_ldimm64 checks every instruction against, reached
    or not): neg, exit, call and ja only with the K bit, bswap only as ALU64 | END | TO_LE,
    no call or exit in JMP32. Other classes are checked by their own rules."""
    cls, op = insn.cls, insn.op
    if cls in (isa.ALU, isa.ALU64):
        if op not in isa.ALU_OP_NAMES:
            return False
        if op == isa.NEG or (op == isa.END and cls == isa.ALU64):
            return insn.source == isa.K
        return True
    if cls in (isa.JMP, isa.JMP32):
        if op == isa.JCOND:     # only JMP | JCOND | K (may_goto) is in the table
            return insn.opcode == isa.OP_MAY_GOTO
        if op not in isa.JMP_OP_NAMES or (cls == isa.JMP32 and op in (isa.CALL, isa.EXIT)):
            return False
        return op not in (isa.JA, isa.CALL, isa.EXIT) or insn.source == isa.K
    return True


def _check_fields(insns: list[isa.Insn], pc: int, nmaps: int, nkfuncs: int,
                  maps: list | None = None) -> None:
    insn = insns[pc]
    cls, op, code = insn.cls, insn.op, insn.opcode

    def bad(msg="invalid instruction"):
        raise CfgError(pc, msg)

    # an lddw's src is a pseudo form, not a register (checked by _check_lddw); LD_ABS/IND
    # look at their fields before their registers (check_ld_abs: "uses reserved fields")
    legacy = cls == isa.LD and insn.mode in (isa.ABS, isa.IND) and insn.size != isa.DW
    if (insn.dst > 10 and not legacy) or (insn.src > 10 and code != isa.OP_LDDW and not legacy):
        bad(f"R{max(insn.dst, insn.src)} is invalid")
    if not _in_insn_table(insn):
        bad(f"unknown opcode {code:02x}")
    if cls in (isa.ALU, isa.ALU64):
        if op == isa.END:
            if insn.imm not in (16, 32, 64) or insn.src or insn.off:
                bad("BPF_END uses reserved fields")
            if cls == isa.ALU64 and insn.source != isa.K:
                bad("BPF_END uses reserved fields")
            return
        if op == isa.NEG:
            if insn.source != isa.K or insn.src or insn.off or insn.imm:
                bad("BPF_NEG uses reserved fields")
            return
        if isa.is_addr_space_cast(insn):
            return  # BPF_ADDR_SPACE_CAST: its imm is checked when reached (transfer.py)
        if op == isa.MOV:
            # check_alu_op's BPF_MOV branch names itself for every reserved field
            allowed = (0, 8, 16, 32) if insn.source == isa.X else (0,)
            if cls == isa.ALU and insn.off == 32:
                allowed = (0,)
            if insn.off not in allowed or (insn.imm if insn.source == isa.X else insn.src):
                bad("BPF_MOV uses reserved fields")
            return
        if insn.source == isa.X:
            if insn.imm:
                bad("BPF_ALU uses reserved fields")
        elif insn.src:
            bad("BPF_ALU uses reserved fields")
        if op in (isa.DIV, isa.MOD):
            if insn.off not in (0, 1):
                bad("BPF_ALU uses reserved fields")
        elif insn.off:
            bad("BPF_ALU uses reserved fields")
        return      # a zero divisor or a shift too wide: reached_fault()
    if cls == isa.LD:
        if insn.mode in (isa.ABS, isa.IND) and insn.size != isa.DW:
            # legacy packet loads (socket filters): r0 = data[r6-relative offset]
            if insn.dst or insn.off or (insn.mode == isa.ABS and insn.src):
                bad("BPF_LD_[ABS|IND] uses reserved fields")
            if insn.src > 10:
                bad(f"R{insn.src} is invalid")
            return
        if code != isa.OP_LDDW:
            bad(f"unknown opcode {code:02x}")
        _check_lddw(insns, pc, nmaps, maps, bad)
        return
    # the kernel's instruction table (no LDX|MEMSX|DW, no LDX modes but MEM/MEMSX; for
    # ST/STX only the MEM modes and STX|ATOMIC) comes before the fields: 7.2 refuses
    # LDX|IND|W as "unknown opcode 41" (measured in the guest, tests/.../test_dead_code.py)
    if cls == isa.LDX:
        if insn.mode not in (isa.MEM, isa.MEMSX) or (insn.mode == isa.MEMSX and insn.size == isa.DW):
            bad(f"unknown opcode {code:02x}")
        if insn.imm:
            bad("BPF_LDX uses reserved fields")
        return
    if cls == isa.ST:
        if insn.mode != isa.MEM:
            bad(f"unknown opcode {code:02x}")
        if insn.src:
            bad("BPF_ST uses reserved fields")
        return
    if cls == isa.STX:
        if insn.mode == isa.MEM:
            if insn.imm:
                bad("BPF_STX uses reserved fields")
            return
        if insn.mode != isa.ATOMIC:
            bad(f"unknown opcode {code:02x}")
        return      # the atomic operation and its size: reached_fault()
    if cls in (isa.JMP, isa.JMP32):
        if op == isa.CALL:
            if cls == isa.JMP32 or insn.source != isa.K or insn.off or insn.dst:
                bad("BPF_CALL uses reserved fields")
            if insn.src not in (isa.CALL_HELPER, isa.PSEUDO_CALL, isa.PSEUDO_KFUNC_CALL):
                bad("BPF_CALL uses reserved fields")
            if insn.src == isa.PSEUDO_KFUNC_CALL and not 0 <= insn.imm < nkfuncs:
                bad(f"kfunc index {insn.imm} out of range (have {nkfuncs} kfuncs)")
            return
        if op == isa.EXIT:
            # off is not among the fields do_check looks at for exit
            if cls == isa.JMP32 or insn.source != isa.K or insn.imm or insn.dst or insn.src:
                bad("BPF_EXIT uses reserved fields")
            return
        if insn.is_may_goto:
            # the kernel names only imm, whichever of src_reg (BPF_MAY_GOTO = 0), dst_reg
            # and imm is set (check_cond_jmp_op); off 0 is allowed (clang 20 emits it)
            if insn.src != isa.MAY_GOTO or insn.dst or insn.imm:
                bad(f"invalid may_goto imm {insn.imm}")
            return
        if op == isa.JA:
            if insn.source != isa.K or insn.src or insn.dst:
                bad("BPF_JA uses reserved fields")
            if cls == isa.JMP and insn.imm:
                bad("BPF_JA uses reserved fields")
            if cls == isa.JMP32 and insn.off:
                bad("BPF_JA uses reserved fields")
            return
        if insn.source == isa.K and insn.src:
            bad("BPF_JMP/JMP32 uses reserved fields")
        if insn.source == isa.X and insn.imm:
            bad("BPF_JMP/JMP32 uses reserved fields")
        return
    bad(f"unknown opcode {code:02x}")


def reached_fault(insn: isa.Insn) -> str | None:
    """The instruction faults that Linux 7.2 reports only for an instruction its
    exploration reaches (do_check's check_alu_op and check_atomic), not in its pass over
    every instruction: a constant divisor of zero, a constant shift of at least the
    width, an atomic operation that does not exist or a read-modify-write atomic on 8 or
    16 bits.  Measured in the 7.2 guest: the same instructions behind a branch that is
    never taken load (tests/bpf/verifier/test_dead_code.py).  Returns the kernel's
    message, or None.  A helper id that does not exist is the same kind (``_do_call``)."""
    cls = insn.cls
    if cls == isa.ALU or cls == isa.ALU64:
        if insn.source != isa.K:
            return None
        op = insn.op
        if (op == isa.DIV or op == isa.MOD) and insn.imm == 0:
            return "div by zero"
        if op == isa.LSH or op == isa.RSH or op == isa.ARSH:
            if not 0 <= insn.imm < (64 if cls == isa.ALU64 else 32):
                return f"invalid shift {insn.imm}"
        return None
    if cls == isa.STX and insn.mode == isa.ATOMIC and insn.imm not in isa.ATOMIC_LOAD_STORE:
        if insn.imm not in isa.ATOMIC_OPS:
            return f"BPF_ATOMIC uses invalid atomic opcode {insn.imm:02x}"
        if insn.size not in (isa.W, isa.DW):
            return "invalid atomic operand size"
    return None


class Cfg:
    """Subprograms, successors, reachability, call graph and register liveness."""

    def __init__(self, program: isa.Program, arg_count, ret_precise: bool = True,
                 returns_pointer=None):
        self.insns = insns = program.insns
        n = len(insns)
        if n == 0:
            raise CfgError(0, "empty program")
        if n > isa.MAX_INSNS:
            raise CfgError(0, f"program has {n} insns, more than {isa.MAX_INSNS}")
        # The kernel's order (measured in the 7.2 guest, test_dead_code.py): call targets
        # (add_subprog_and_kfunc), then each function's jumps and last instruction
        # (check_subprogs), then one pass over every instruction for its opcode, fields
        # and lddw form (resolve_pseudo_ldimm64 and 7.2's field checks), then the graph.
        self.second_slot = [False] * n
        pc = 0
        while pc < n - 1:
            if insns[pc].is_lddw:
                self.second_slot[pc + 1] = True
                pc += 2
            else:
                pc += 1
        if pc == n - 1 and insns[pc].is_lddw:
            # an lddw cut off by the end: the kernel's check_subprogs sees a last
            # instruction that is not an exit before resolve_pseudo_ldimm64 sees the lddw
            raise CfgError(pc, "last insn is not an exit or jmp")
        # subprogram entries
        entries = {0}
        for pc, insn in enumerate(insns):
            if self.second_slot[pc]:
                continue
            if (insn.is_call and insn.src == isa.PSEUDO_CALL) or (insn.is_lddw and insn.src == isa.PSEUDO_FUNC):
                target = pc + insn.imm + 1
                if not 0 <= target < n or self.second_slot[target]:
                    raise CfgError(pc, "call to invalid destination")
                entries.add(target)
        self.entries = sorted(entries)
        self.func_of = [0] * n
        ends = self.entries[1:] + [n]
        self.func_end = {}
        for start, end in zip(self.entries, ends):
            self.func_end[start] = end
            for pc in range(start, end):
                self.func_of[pc] = start
            for pc in range(start, end):
                insn = insns[pc]
                if (not self.second_slot[pc] and insn.cls in (isa.JMP, isa.JMP32)
                        and insn.op not in (isa.CALL, isa.EXIT)):
                    target = pc + insn.jump_offset() + 1
                    if not start <= target < end:
                        raise CfgError(pc, f"jump out of range from insn {pc} to {target}")
            last = insns[end - 1]
            if self.second_slot[end - 1] or not (last.is_exit or (last.is_jump and last.op == isa.JA)):
                raise CfgError(end - 1, "last insn is not an exit or jmp")
        for pc, insn in enumerate(insns):
            if (not self.second_slot[pc] and insn.cls == isa.LD and not insn.is_lddw
                    and self.func_of[pc] != 0):
                # the kernel's rule for programs without BTF func_info (ours): LD_ABS
                # ends the whole program, which only the main function can do
                raise CfgError(pc, "LD_ABS is not allowed in subprogs without BTF")
        arena = None
        for pc in range(n):
            if not self.second_slot[pc]:
                _check_fields(insns, pc, len(program.maps), len(program.kfuncs), program.maps)
                insn = insns[pc]
                if insn.is_lddw and insn.src in (isa.PSEUDO_MAP_IDX, isa.PSEUDO_MAP_IDX_VALUE):
                    m = program.maps[insn.imm]
                    if getattr(m, "type", None) == _MAP_TYPE_ARENA:
                        # the kernel's map pass (EBUSY): the engines have one arena window
                        # per program, a second arena's pointers would land in the first
                        if arena is not None and m is not arena:
                            raise CfgError(pc, "Only one arena per program")
                        arena = m
        # successors and jump targets
        self.succ: list[tuple[int, ...]] = [()] * n
        self.jump_targets: set[int] = set()
        self.cond_fallthrough: set[int] = set()
        self.callees: dict[int, set[int]] = {e: set() for e in self.entries}
        for pc, insn in enumerate(insns):
            if self.second_slot[pc]:
                continue
            if insn.is_exit:
                continue
            if insn.is_jump:
                target = pc + insn.jump_offset() + 1
                if not 0 <= target < n:
                    raise CfgError(pc, f"jump out of range from insn {pc} to {target}")
                if self.second_slot[target]:
                    raise CfgError(pc, f"jump into the middle of ldimm64 insn {target - 1}")
                if self.func_of[target] != self.func_of[pc]:
                    raise CfgError(pc, f"jump out of range from insn {pc} to {target}")
                self.jump_targets.add(target)
                if insn.op == isa.JA:
                    self.succ[pc] = (target,)
                else:
                    self.succ[pc] = (pc + 1, target)
                    self.cond_fallthrough.add(pc + 1)
                continue
            if insn.is_call and insn.src == isa.PSEUDO_CALL:
                self.callees[self.func_of[pc]].add(pc + insn.imm + 1)
            if insn.is_lddw and insn.src == isa.PSEUDO_FUNC:
                # a callback (bpf_loop): runs on top of the frame that passes it
                self.callees[self.func_of[pc]].add(pc + insn.imm + 1)
            step = 2 if insn.is_lddw else 1
            self.succ[pc] = (pc + step,)
        # reachability (from each function entry; functions are reached through calls)
        seen = [False] * n
        todo = [0]
        seen[0] = True
        while todo:
            pc = todo.pop()
            insn = insns[pc]
            nxt = list(self.succ[pc])
            if insn.is_call and insn.src == isa.PSEUDO_CALL:
                nxt.append(pc + insn.imm + 1)
            if insn.is_lddw and insn.src == isa.PSEUDO_FUNC:
                nxt.append(pc + insn.imm + 1)
            for s in nxt:
                if not seen[s]:
                    seen[s] = True
                    todo.append(s)
        for pc in range(n):
            if not seen[pc] and not self.second_slot[pc]:
                raise CfgError(pc, f"unreachable insn {pc}")
        self._check_recursion()
        self.live_in = self._liveness(arg_count)
        self.stack_ptrs_in, self.ptrs_in = self._pointers(returns_pointer)
        self._arg_count, self._ret_precise = arg_count, ret_precise
        self.precise_in = self._precision(False)
        self.precise_branch_in = self._precision(True)
        # the stack slots whose spilled scalar may reach a check, per function (None: any)
        self.precise_slots = self._slot_precision(self.precise_in)
        self.precise_slots_branch = self._slot_precision(self.precise_branch_in)
        # may_goto loops: what the kernel's precision marks would keep from widening (a
        # value reaching a memory access or pointer arithmetic), without the compares
        # and what it keeps when a compare is decided (a constant against an immediate, or
        # against a register holding a constant)
        self.may_goto_keep_in = self.may_goto_cmp_in = self.may_goto_cmpx_in = None
        if any(i.is_may_goto for i in insns):
            self.may_goto_keep_in = self._precision(False, compares=False)
            self.may_goto_cmp_in = self._precision(True, compares=False)
            self.may_goto_cmpx_in = self._precision(True, compares=False, regreg=True)

    def _slot_precision(self, prec: list[int]) -> list[int]:
        """Per instruction: the 8-byte stack slots of its function's frame (bit k is the
        slot at fp-8(k+1)) whose spilled scalar may still reach a check; every bit in a
        function whose frame may be read in a way not seen here.

        The kernel marks a spilled register precise only when its backtracking reaches
        the fill of a value that a check needs; an imprecise spilled scalar is compared
        by type and links only (regsafe through stacksafe).  Here, a backward analysis
        like liveness: a slot is precise before a fill from it (``rX = *(u64 *)(r10 +
        off)``) that loads a register precise after the load (``prec``), before any
        partial read of it, and until an 8-byte store overwrites it.  Any other use of
        r10 in the function -- copied or added (a pointer into the frame can reach
        helpers, callees and variable-offset accesses), stored, compared, an atomic on
        the frame -- makes every slot precise there.  Over-approximate: an extra precise
        slot only costs pruning."""
        insns = self.insns
        escaped = set()
        for start in self.entries:
            for pc in range(start, self.func_end[start]):
                if self.second_slot[pc]:
                    continue
                insn = insns[pc]
                cls = insn.cls
                if cls == isa.STX:
                    use = insn.src == 10 or (insn.mode == isa.ATOMIC and insn.dst == 10)
                elif cls in (isa.ALU, isa.ALU64, isa.JMP, isa.JMP32):
                    use = not (insn.is_call or insn.is_exit) and (
                        insn.dst == 10 or (insn.source == isa.X and insn.src == 10))
                elif cls == isa.LD:
                    use = not insn.is_lddw and insn.mode == isa.IND and insn.src == 10
                else:
                    use = False
                if use:
                    escaped.add(start)
                    break

        def bit(off: int) -> int:
            return 1 << ((-off - 1) // 8) if -isa.STACK_SIZE <= off < 0 else 0

        def transfer(pc: int, out: int) -> int:
            insn = insns[pc]
            cls = insn.cls
            if cls == isa.LDX and insn.src == 10:
                size = isa.SIZE_BYTES[insn.size]
                if size == 8 and insn.off % 8 == 0:
                    return out | bit(insn.off) if prec[pc + 1] >> insn.dst & 1 else out
                return out | bit(insn.off) | bit(insn.off + size - 1)
            if (cls == isa.ST or (cls == isa.STX and insn.mode == isa.MEM)) and insn.dst == 10:
                if insn.size == isa.DW and insn.off % 8 == 0:
                    return out & ~bit(insn.off)         # overwritten whole
            return out

        sets = self._backward(transfer)
        if escaped:
            every = (1 << (isa.STACK_SIZE // 8)) - 1
            for start in escaped:
                for pc in range(start, self.func_end[start]):
                    sets[pc] = every
        return sets

    def _check_recursion(self) -> None:
        color: dict[int, int] = {}

        def visit(f: int) -> None:
            color[f] = 1
            for g in self.callees[f]:
                c = color.get(g)
                if c == 1:
                    # the kernel names the two functions from BTF func_info, which a
                    # raw program has not: its text then (the error's pc says where)
                    raise CfgError(g, "recursive call from () to ()")
                if c is None:
                    visit(g)
            color[f] = 2

        for e in self.entries:
            if e not in color:
                visit(e)
        memo: dict[int, int] = {}

        def depth(f: int) -> int:
            if f not in memo:
                memo[f] = 1 + max((depth(g) for g in self.callees[f]), default=0)
            return memo[f]

        if depth(0) > isa.MAX_CALL_DEPTH:
            # the kernel stops at the first frame over the limit and names that count
            raise CfgError(0, f"the call stack of {isa.MAX_CALL_DEPTH + 1} frames is too deep")

    def _use_def(self, pc: int, arg_count) -> tuple[int, int]:
        insn = self.insns[pc]
        cls, op = insn.cls, insn.op
        d, s = 1 << insn.dst, 1 << insn.src
        if cls in (isa.ALU, isa.ALU64):
            if op == isa.MOV:
                return (s if insn.source == isa.X else 0), d
            if op in (isa.NEG, isa.END):
                return d, d
            return d | (s if insn.source == isa.X else 0), d
        if cls == isa.LD:
            if not insn.is_lddw:  # LD_ABS/LD_IND: reads r6 (and src), clobbers r0-r5
                return R6 | (s if insn.mode == isa.IND else 0), CALLER_SAVED
            return 0, d
        if cls == isa.LDX:
            return s, d
        if cls == isa.ST:
            return d, 0
        if cls == isa.STX:
            if insn.mode == isa.ATOMIC:
                if insn.imm == isa.LOAD_ACQ:
                    return s, d
                if insn.imm == isa.CMPXCHG:
                    return d | s | 1, 1
                if insn.imm & isa.FETCH:
                    return d | s, s
            return d | s, 0
        if insn.is_exit:
            return 1, 0
        if insn.is_call:
            if insn.src == isa.PSEUDO_CALL:
                return ARG_REGS, CALLER_SAVED
            n = arg_count(insn)
            return (((1 << n) - 1) << 1), CALLER_SAVED
        if insn.is_jump:
            if op == isa.JA or insn.is_may_goto:   # may_goto reads no register
                return 0, 0
            return d | (s if insn.source == isa.X else 0), 0
        return 0, 0

    def _backward(self, transfer) -> list[int]:
        """Fixpoint of a backward bit-set analysis over the CFG: ``transfer(pc, out)`` maps
        the union of the successors' sets to this instruction's set (liveness, precision)."""
        n = len(self.insns)
        preds: list[list[int]] = [[] for _ in range(n)]
        for pc in range(n):
            if self.second_slot[pc]:
                continue
            for s in self.succ[pc]:
                if s < n:
                    preds[s].append(pc)
        sets = [0] * n
        work = [pc for pc in range(n) if not self.second_slot[pc]]
        inwork = [True] * n
        while work:
            pc = work.pop()
            inwork[pc] = False
            out = 0
            for s in self.succ[pc]:
                if s < n:
                    out |= sets[s]
            new = transfer(pc, out)
            if new != sets[pc]:
                sets[pc] = new
                for p in preds[pc]:
                    if not inwork[p]:
                        inwork[p] = True
                        work.append(p)
        return sets

    def _pointers(self, returns_pointer=None) -> tuple[list[int], list[int]]:
        """Per instruction, the registers (bit 10: r10) that may hold a pointer when it
        runs: ``(into a stack frame, any pointer)``.  A forward analysis over each
        function, over-approximating what the verifier can type a register.

        Three sets are followed: *stack* pointers, pointers to memory that may *hold*
        pointers (the stack: spills; the context and the kernel structs reached from it:
        pointer fields), and *any* pointer.  r10 is a stack pointer; r1 at the program's
        entry holds pointers (the context); at a subprogram's or callback's entry every
        argument may be anything (a caller's frame passed down).  A copy keeps the
        source's sets, arithmetic keeps the destination's and adds the source's (``scalar
        += pointer``); a load through a register that may point to pointer-holding memory
        may be anything, a load through any other pointer (a map value, helper memory,
        the data buffer, an arena: the verifier loads numbers from those) is a number;
        a helper's or kfunc's result may be a pointer, never into the stack nor to
        pointer-holding memory (they return map values or memory), and not even that when
        ``returns_pointer(insn)`` says it returns a number; a static subprogram's may be
        anything (a pointer into its caller's frame).  An extra register in a set only
        makes :meth:`_precision` keep more registers precise."""
        insns = self.insns
        n = len(insns)
        fp = 1 << 10
        everything = (fp, fp | ARG_REGS, fp | ARG_REGS)
        ctx_entry = (fp, fp | 2, fp | 2)
        sets: list[tuple[int, int, int] | None] = [None] * n
        work = []
        for start in self.entries:
            sets[start] = ctx_entry if start == 0 else everything
            work.append(start)
        plain_ld = {0: 0, isa.PSEUDO_MAP_FD: 2, isa.PSEUDO_MAP_VALUE: 2, isa.PSEUDO_FUNC: 2,
                    isa.PSEUDO_MAP_IDX: 2, isa.PSEUDO_MAP_IDX_VALUE: 2}

        def transfer(pc: int, inn: tuple[int, int, int]) -> tuple[int, int, int]:
            insn = insns[pc]
            cls = insn.cls
            d, s = 1 << insn.dst, 1 << insn.src
            if cls in (isa.ALU, isa.ALU64):
                if insn.op == isa.MOV:
                    if insn.source != isa.X:
                        return tuple(x & ~d for x in inn)
                    out = tuple((x & ~d) | (d if x & s else 0) for x in inn)
                    # (an address-space cast or sign-extending move: a number may become
                    # an arena pointer)
                    return out if not insn.off else (out[0], out[1], out[2] | d)
                if insn.source == isa.X:
                    return tuple(x | (d if x & s else 0) for x in inn)
                return inn
            if cls == isa.LDX or (cls == isa.STX and insn.mode == isa.ATOMIC
                                  and insn.imm == isa.LOAD_ACQ):
                return tuple((x & ~d) | (d if inn[1] & s else 0) for x in inn)
            if cls == isa.STX and insn.mode == isa.ATOMIC:
                # the old value comes back in src (fetch) or r0 (cmpxchg)
                back = (s | 1) if inn[1] & d else 0
                return tuple(x | back for x in inn)
            if cls == isa.LD:
                if not insn.is_lddw:
                    return tuple(x & ~CALLER_SAVED for x in inn)
                kind = plain_ld.get(insn.src, 3)     # (3: a kernel object, ksym)
                return (inn[0] & ~d, (inn[1] & ~d) | (d if kind == 3 else 0),
                        (inn[2] & ~d) | (d if kind else 0))
            if insn.is_call:
                r0 = 1 if insn.src == isa.PSEUDO_CALL else 0
                ptr = r0 or returns_pointer is None or returns_pointer(insn)
                return ((inn[0] & ~CALLER_SAVED) | r0, (inn[1] & ~CALLER_SAVED) | r0,
                        (inn[2] & ~CALLER_SAVED) | (1 if ptr else 0))
            return inn

        while work:
            pc = work.pop()
            out = transfer(pc, sets[pc])
            for nxt in self.succ[pc]:
                if nxt >= n:
                    continue
                old = sets[nxt]
                new = out if old is None else (old[0] | out[0], old[1] | out[1], old[2] | out[2])
                if new != old:
                    sets[nxt] = new
                    work.append(nxt)
        return ([fp if x is None else x[0] for x in sets],
                [fp if x is None else x[2] for x in sets])

    def _liveness(self, arg_count) -> list[int]:
        n = len(self.insns)
        use = [0] * n
        defs = [0] * n
        for pc in range(n):
            if not self.second_slot[pc]:
                use[pc], defs[pc] = self._use_def(pc, arg_count)
        return self._backward(lambda pc, out: use[pc] | (out & ~defs[pc]))

    def branch_precision(self, decided: frozenset[int]) -> tuple[list[int], list[int]]:
        """:attr:`precise_branch_in` and :attr:`precise_slots_branch` counting only the
        comparisons at ``decided`` (the branches some path took one side of because of
        register values): the kernel marks the operands of a decided branch precise, not
        every compare below it (check_cond_jmp_op).  The explorer passes every branch
        decided so far, a superset of those below any finished checkpoint."""
        prec = self._precision(True, decided=decided)
        return prec, self._slot_precision(prec)

    def _precision(self, branches: bool, compares: bool = True, regreg: bool = False,
                   decided: frozenset[int] | None = None) -> list[int]:
        """Registers whose exact value may matter to a safety check later on.

        A backward analysis like liveness, but a register only counts where its value can
        reach a *check*: a memory access or pointer arithmetic, a helper argument, any
        register-register comparison (both sides), a store through a register that may
        point into a stack frame (a spilled value can come back, :meth:`_pointers`),
        the return value.  A scalar used only in comparisons with constants is not
        precise: comparing explored states may then ignore its range (see
        docs/verifier.md, "precision").  With ``branches`` every comparison operand
        counts too (used against states below which a branch was decided by a value).
        Over-approximate: extra precise registers only cost pruning.  ``compares=False``
        leaves out register-register comparisons, the scalar added to a possible pointer,
        a stored value, a subprogram's arguments and result, and with ``branches`` counts
        only comparisons with an immediate (``regreg``: only register-register ones) -- what
        a may_goto loop keeps from widening: the kernel marks a compared value precise only
        when the branch is decided, an added or stored one only when it is used.  With
        ``decided`` only the comparisons at those instructions count as ``branches``.
        """
        insns = self.insns
        arg_count, ret_precise = self._arg_count, self._ret_precise
        stack_ptrs, ptrs_in = self.stack_ptrs_in, self.ptrs_in

        def transfer(pc: int, out: int) -> int:
            insn = insns[pc]
            cls, op = insn.cls, insn.op
            d, s = 1 << insn.dst, 1 << insn.src
            if cls in (isa.ALU, isa.ALU64):
                if op == isa.MOV:
                    res = out & ~d
                    if insn.source == isa.X and out & d:
                        res |= s
                    return res
                if op in (isa.NEG, isa.END) or insn.source == isa.K:
                    return out
                res = out
                if out & d:
                    res |= s
                if cls == isa.ALU64 and op in (isa.ADD, isa.SUB) and compares:
                    # pointer arithmetic: the kernel marks the scalar operand precise
                    # there and then (adjust_reg_min_max_vals), whichever side it is on;
                    # between two numbers nothing (:meth:`_pointers` tells them apart).
                    # (For may_goto widening only a pointer's later use counts, which
                    # reaches the source through ``out & d``.)
                    ptrs = ptrs_in[pc]
                    if ptrs & d:
                        res |= s
                    if ptrs & s:
                        res |= d
                return res
            if cls == isa.LD:
                if not insn.is_lddw:
                    return (out & ~CALLER_SAVED) | R6 | (s if insn.mode == isa.IND else 0)
                return out & ~d
            if cls == isa.LDX:
                return (out & ~d) | s
            if cls == isa.ST:
                return out | d
            if cls == isa.STX and insn.mode == isa.ATOMIC and insn.imm == isa.LOAD_ACQ:
                return (out & ~d) | s       # a load, as LDX
            if cls == isa.STX:
                # A stored value comes back only from the stack (a spill filled later):
                # memory elsewhere (map values, the context, buffers, arenas) loads as
                # an unknown value and checks only the stored value's type, so the
                # kernel never marks such a value precise (a counter's sum written to a
                # map keeps the loop's states prunable).  (For may_goto widening a stored
                # value is not kept either: the kernel marks it only when it is loaded
                # back and used.)
                spill = compares and stack_ptrs[pc] & d
                res = out | d | (s if spill or insn.mode == isa.ATOMIC else 0)
                if insn.mode == isa.ATOMIC and insn.imm == isa.CMPXCHG:
                    res |= 1
                return res
            if insn.is_exit:
                if (self.func_of[pc] != 0 and compares) or ret_precise:
                    return 1
                return 0
            if insn.is_call:
                if insn.src == isa.PSEUDO_CALL:
                    # (for may_goto widening a subprogram's arguments and result are not
                    # kept: the kernel marks them only when the other side needs them)
                    return (out & ~CALLER_SAVED) | (ARG_REGS if compares else 0)
                k = arg_count(insn)
                return (out & ~CALLER_SAVED) | (((1 << k) - 1) << 1)
            if insn.is_jump and op != isa.JA and not insn.is_may_goto:
                if branches and not compares:   # with an immediate, or reg-reg only
                    if insn.source == isa.K:
                        return out if regreg else out | d
                    return out | d | s if regreg else out
                if branches and (decided is None or pc in decided):
                    # with_branches: every (decided) comparison's operands count
                    return out | d | (s if insn.source == isa.X else 0)
                if insn.source == isa.X and compares:
                    # Both sides of a register-register compare are precise, always: the
                    # refinement may reach a check through a register statically not
                    # visible here (the data length, an id-linked copy in a register or
                    # a stack slot), and each side bounds the other (issue #13, item 1).
                    return out | d | s
            return out

        return self._backward(lambda pc, out: transfer(pc, out) & ALL_REGS)
