"""Per-instruction transfer functions: registers, ALU, lddw, conditional jumps."""

from __future__ import annotations

from .. import isa
from . import scalar as sc
from . import sanity
from .scalar import (  # names: cheaper than module attributes, per instruction
    EQ, GE, GT, LT, NE, S32_MAX, S32_MIN, SET, SGT, U32, U64, UNKNOWN,
)
from ..isa import (  # names: cheaper than module attributes, per instruction
    ADD, ADDR_SPACE_CAST, ALU64, ALU_OP_NAMES, AND, ARSH, DIV, END, JMP32, K, LSH, MOD,
    MOV, MUL, NEG, OR, PSEUDO_FUNC, PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE, RSH, SUB, TO_BE,
    X, XOR,
)
from .state import (
    ADD_CONST, ADD_CONST32, ADD_CONST64, CONST_MAP, PTR_ARENA, PTR_BUF, PTR_CTX,
    PTR_FUNC, PTR_MAP_VALUE, PTR_MEM, PTR_STACK, PTR_TRUSTED, SCALAR, UNKNOWN_SCALAR, Frame, Reg,
    State, const_reg, copy_reg, scalar, with_var,
)
from .memory import MemoryMixin
from .common import (
    map_ro, LEN_ID, MAX_VAR_OFF, Num, _DInsn, _JMP_TO_CMP, _NOT_NULL_TYPES, _Reject,
    _MAP_TYPE_ARENA, _SIGNED_CMP, ARENA_MEM, _arena_castable, _is_arena_ptr, _sdivmod,
    shared_memo_pays,
)


#: scalar ALU results by (opcode, off, dst value, src value); see TransferMixin._do_alu
_ALU_MEMO: dict = {}
#: conditional jumps on scalars by (opcode, dst value, src value); see _do_cond_jump
_COND_MEMO: dict = {}
#: ALU operations _do_alu's fast path leaves to the general code (one operand, or a move)
_ALU_GENERAL_OPS = frozenset({END, NEG, MOV})
#: the ALU operations that may keep a scalar linked, with a delta (see _linked_add)
_ADD_SUB = frozenset({ADD, SUB})
#: ``mov dst, imm`` (64 or 32 bits): the opcode without its class bits
_MOV_K = MOV | K
#: 64-bit operations whose result is any value when either operand is (ALU64 | op,
#: either source): the domain's result for them (test_const_alu.py checks)
_WRAPPING_ALU64 = frozenset({ALU64 | ADD, ALU64 | SUB, ALU64 | XOR})
#: the shift operations (a constant or bounded result only by an amount below the width)
_SHIFTS = frozenset((LSH, RSH, ARSH))
#: constant registers by value (immediates)
_CONST_REGS: dict = {}
_MEMO_MAX = 1 << 16


def clear_memos() -> None:
    """Forget the results cached across verifications (the ALU, compare and constant
    caches above): the next verification computes everything, as the first one in a
    process does.  For benchmarks (bench/load.py times first verifications)."""
    _ALU_MEMO.clear()
    _COND_MEMO.clear()
    _CONST_REGS.clear()


def _remember(memo: dict, key, value):
    """Store ``value`` under ``key`` in one of the shared caches above (emptied when it
    holds _MEMO_MAX entries) and return it."""
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[key] = value
    return value


def _recall(memo: dict, key, insn: _DInsn):
    """``memo[key]`` or None, the lookup counted for the instruction ``insn`` (None: not
    counted) as common.shared_memo_pays judges it."""
    r = memo.get(key)
    if insn is not None:
        insn.memo_looks += 1
        if r is not None:
            insn.memo_hits += 1
    return r


def const_imm(v: Num) -> Reg:
    """The constant register ``v`` (shared: registers are immutable)."""
    regs = _CONST_REGS      # (a typed local in the compiled core: .get is a direct call)
    r = regs.get(v)
    if r is None:
        r = _remember(regs, v, const_reg(v))
    return r


def _synced(known: Reg, r: Reg) -> Reg | None:
    """Register ``r`` after :meth:`TransferMixin._sync_linked` from ``known``."""
    if (not ((r.id | known.id) & ADD_CONST)) or r.off == known.off:
        if (r.id ^ known.id) & ADD_CONST == ADD_CONST:
            return None
        # the kernel's copy_register_state: the value, id and delta of known
        return r.replace(var=known.var, id=known.id, off=known.off)
    v = sync_linked_var(known, r)
    return None if v is None else with_var(r, v)


def _null_checked(r: Reg, pid, is_null: bool) -> Reg | None:
    """``r`` after a NULL check of the pointer with id ``pid``: None when ``r`` is not
    that possibly-NULL pointer, else the constant 0 on the NULL side and ``r`` without
    its NULL on the other (the kernel's mark_ptr_or_null_reg)."""
    if not r.null or r.id != pid or r.t < PTR_CTX:      # (r.t < PTR_CTX: not Reg.is_ptr)
        return None
    if is_null:
        return const_imm(0)
    n = copy_reg(r)
    n.null = False
    return n


def _mark_null_in(st: State, pid, is_null: bool) -> None:
    """Every register and spilled register of ``st`` that is the possibly-NULL pointer
    with id ``pid``, after its NULL check (what State.all_regs + set_reg_anywhere do,
    without building the list of every register first: this runs at each NULL check)."""
    f: Frame
    for f in st.frames:
        regs = f.regs
        for i in range(11):
            n = _null_checked(regs[i], pid, is_null)
            if n is not None:
                regs[i] = n
        stack = f.stack
        hits = [(k, slot[1]) for k, slot in stack.items() if slot[0] == "S"]
        for k, r in hits:
            n = _null_checked(r, pid, is_null)
            if n is not None:
                stack[k] = ("S", n)


def _linked_add(insn: isa.Insn, d: Reg, s: Reg, res: Reg, is64: bool) -> Reg:
    """``dst += K`` / ``dst -= K`` (K a constant, immediate or register) on a linked
    scalar ``d``: the result ``res`` stays linked to ``d``'s partners with the delta K, as
    in the kernel's adjust_reg_min_max_vals (7.2): 64-bit K must fit in s32; a 32-bit
    operation links only a value known below 2**32 (its partners and it then agree
    modulo 2**32, all zero-extended); ``-= S32_MIN`` has no s32 delta; a value that
    already has a delta, or ``rX += rX``, loses its link.  Whatever is refused returns
    ``res`` unlinked (id 0, off 0: the kernel's clear_id)."""
    if d.id & ADD_CONST or (insn.source == X and insn.src == insn.dst):
        return res
    if is64:
        if s.var[5]:
            return res
        k = sc.s64(s.var[4])
        if not S32_MIN <= k <= S32_MAX:
            return res
        flag = ADD_CONST64
    else:
        if s.var[5] & U32 or d.var[1] > U32:
            return res
        k = s.var[4] & U32
        k = k - (1 << 32) if k >> 31 else k
        flag = ADD_CONST32
    if insn.op == SUB:
        if k == S32_MIN:
            return res
        k = -k
    r: Reg = copy_reg(res)
    r.id = d.id | flag
    r.off = k
    return r


def sync_linked_var(known: Reg, reg: Reg):
    """The value of ``reg``, linked to ``known`` (same base id), once a branch refined
    ``known`` (the kernel's sync_linked_regs, 7.2): ``known``'s value moved by the
    difference of their deltas, truncated to 32 bits when either link is a 32-bit one.
    None: a 32-bit and a 64-bit delta link, whose values are not tied (skipped)."""
    flags = (reg.id ^ known.id) & ADD_CONST
    if flags == ADD_CONST:
        return None
    delta = reg.off - known.off
    if (reg.id | known.id) & ADD_CONST32:
        return sc.add_const32(known.var, delta)
    if delta == 0:
        return known.var
    return sc.alu_add(known.var, sc.const(delta & U64))


def _const_alu(opcode: Num, a: Num, b: Num) -> Reg | None:
    """``a op b`` for two constants (``a``, ``b``: their u64 values), as the constant
    register :func:`scalar_alu` makes of them, or None for an operation left to it
    (division, modulo, and a shift by the width or more, which make no constant).

    Every other operation of two constants has an exact constant result in the kernel's
    domain (each range is one point, every tnum bit known), so it is computed directly:
    a loop counter (``r1 += 1``) is a new constant on every iteration, and each one would
    otherwise go through the whole range and tnum computation and fill the cache
    (tests/bpf/verifier/test_const_alu.py checks equality with scalar_alu)."""
    op = opcode & 0xF0
    if opcode & 0x07 == ALU64:
        width, mask, x = 64, U64, a
    else:
        # ALU32: the low halves, the result zero-extended; a shift is by the whole source
        # (is_safe_to_compute_dst_reg_range), so ``w1 <<= r2`` with r2 = 2**32 + 1 makes none
        width, mask, x = 32, U32, a & U32
    if op == ADD:
        v = x + b
    elif op == SUB:
        v = x - b
    elif op == AND:
        v = x & b
    elif op == OR:
        v = x | b
    elif op == XOR:
        v = x ^ b
    elif op == MUL:
        v = x * (b & mask)
    elif op not in _SHIFTS or b >= width:
        return None
    elif op == LSH:
        v = x << b
    elif op == RSH:
        v = x >> b
    else:   # ARSH: the signed view of the width
        v = (x - mask - 1 if x >> (width - 1) else x) >> b
    return const_imm(v & mask)


def _scalar_alu_reg(opcode: Num, off: Num, a: tuple, b: tuple, insn: _DInsn = None) -> Reg:
    """The register :func:`scalar_alu` makes, from the cache when it was computed before
    (two constants: :func:`_const_alu`, never cached); for an instruction ``insn``, only
    while the cache pays for it (common.shared_memo_pays)."""
    if a[5] == 0 and b[5] == 0:
        r = _const_alu(opcode, a[4], b[4])
        if r is not None:
            return r
    elif ((a[5] == U64 and a == UNKNOWN) or (b[5] == U64 and b == UNKNOWN)) \
            and opcode & 0xF7 in _WRAPPING_ALU64:
        # any 64-bit value plus, minus or xor anything is any value: a loaded unknown
        # added to a new loop counter each iteration (never cached: the key is new)
        return UNKNOWN_SCALAR
    if insn is not None and not shared_memo_pays(insn):
        return scalar(scalar_alu(opcode, off, a, b))
    key = (opcode, off, a, b)
    r = _recall(_ALU_MEMO, key, insn)
    if r is None:
        r = _remember(_ALU_MEMO, key, scalar(scalar_alu(opcode, off, a, b)))
    return r


def _insn_alu(insn: _DInsn, dv: tuple, sv: tuple) -> Reg:
    """:func:`_scalar_alu_reg` of the instruction ``insn`` on the values ``dv``, ``sv``,
    answered by identity when they are the very value objects of its last result
    (``_DInsn.memo_*``): a loop computes the same thing from the same objects on every
    iteration, and the identity test is cheaper than hashing them for the shared cache."""
    if insn.memo_a is dv and insn.memo_b is sv:
        return insn.memo_r
    r = _scalar_alu_reg(insn.opcode, insn.off, dv, sv, insn)
    insn.memo_a = dv
    insn.memo_b = sv
    insn.memo_r = r
    return r


def scalar_cond(opcode: Num, av: tuple, bv: tuple) -> tuple:
    """A conditional jump on two scalars: ``(a, b, taken, fall, take)`` where ``a``, ``b``
    are the values compared (32-bit views for JMP32), ``taken`` True/False when decided,
    else None and ``fall``/``take`` the refined ``(a, b)`` on each side (None: impossible)."""
    op = _JMP_TO_CMP[opcode & 0xF0]
    a, b = av, bv
    is32 = opcode & 0x07 == JMP32
    if is32:
        a, b = sc.trunc32(a), sc.trunc32(b)
        if op in _SIGNED_CMP:
            a, b = sc.sext32(a), sc.sext32(b)
    taken = sc.branch_taken(a, b, op)
    if taken is not None:
        return (a, b, taken, None, None)
    fall, take = sc.refine_not(a, b, op, is32), sc.refine(a, b, op, is32)
    if is32 and op in (EQ, NE):
        # equal low halves: each takes the other's 32-bit bounds too (regs_refine_cond_op)
        if op == EQ:
            take = _equal32(take, a, b)
        else:
            fall = _equal32(fall, a, b)
    return (a, b, None, fall, take)


def _const_taken(op: Num, a: Num, b: Num, is32: bool) -> bool:
    """Whether the compare ``op`` (scalar.EQ ... SET) of two constants (``a``, ``b``:
    their u64 values; JMP32 compares the low halves) jumps: what :func:`scalar_cond`
    decides for them (every compare of two constants is decided), without the domain
    (tests/bpf/verifier/test_const_alu.py checks equality with it)."""
    if is32:
        a &= U32
        b &= U32
        sign = 1 << 31
        wrap = 1 << 32
    else:
        sign = 1 << 63
        wrap = 1 << 64
    if op == SET:
        return (a & b) != 0
    if op >= SGT:       # (SGT, SGE, SLT, SLE: the unsigned order of the signed views)
        a = a - wrap if a & sign else a
        b = b - wrap if b & sign else b
        op -= SGT - GT
    if op == EQ:
        return a == b
    if op == NE:
        return a != b
    if op == GT:
        return a > b
    if op == GE:
        return a >= b
    if op == LT:
        return a < b
    return a <= b       # LE


def _equal32(pair, a, b):
    """The refined views ``pair`` of ``a`` and ``b``, known equal: both in the meet of
    the 32-bit bounds of all four."""
    if pair is None:
        return None
    x = _meet32(_meet32(pair[0], b), pair[1])
    return x, _meet32(_meet32(pair[1], a), x)


def _meet32(s: tuple, t: tuple) -> tuple:
    """``s`` with the 32-bit bounds of ``t`` as well (sc.with_bounds32)."""
    return sc.with_bounds32(s, t[6], t[7], t[8], t[9])


#: the operations the kernel bounds only by a constant operand (else: unknown)
_CONST_ONLY = _SHIFTS | {isa.DIV, isa.MOD}


def scalar_alu(opcode: Num, off: Num, a: tuple, b: tuple) -> tuple:
    """The abstract value of ``a op b`` for a scalar ALU instruction (both operands
    scalars; ``a`` the destination's value, ``b`` the source's or the immediate's)."""
    op = opcode & 0xF0
    is64 = opcode & 0x07 == ALU64
    # a shift is bounded only if the WHOLE source is below the width, even for ALU32
    shift_max = b[1]
    if not is64:
        a, b = sc.trunc32(a), sc.trunc32(b)
    signed = off == 1 and op in (DIV, MOD)
    width = 64 if is64 else 32
    if not sc.is_const(b) and op in _CONST_ONLY or op in _SHIFTS and shift_max >= width:
        # the kernel computes no range then (is_safe_to_compute_dst_reg_range): the
        # whole register is unknown, not zero-extended even for an ALU32 operation
        return sc.UNKNOWN
    if signed:
        v = UNKNOWN
        if sc.is_const(a) and sc.is_const(b):
            v = sc.const(_sdivmod(op, a[4], b[4], width))
        elif is64:
            # by a constant: bounded like the 7.2 kernel (tests: scalar_sdiv_*)
            c = sc.s64(b[4])
            v = sc.alu_sdiv_const(a, c) if op == isa.DIV else sc.alu_smod_const(a, c)
        else:
            # scalar32_min_max_sdiv/smod: the same on the signed 32-bit view
            c = b[4] - (1 << 32) if b[4] >> 31 else b[4]
            s = sc.sext32(a)
            if op == isa.DIV and c == -1 and s[2] == sc.S32_MIN:
                v = sc.const(s[2]) if s[3] == sc.S32_MIN else sc.srange(sc.S32_MIN, sc.S32_MAX)
            else:
                v = sc.alu_sdiv_const(s, c) if op == isa.DIV else sc.alu_smod_const(s, c)
    # (one call per operation, not a table of functions: the compiled core calls the
    # domain's functions directly, C calls, which it cannot do through a table)
    elif op == ADD:
        v = sc.alu_add(a, b)
    elif op == SUB:
        v = sc.alu_sub(a, b)
    elif op == AND:
        v = sc.alu_and(a, b)
    elif op == OR:
        v = sc.alu_or(a, b)
    elif op == XOR:
        v = sc.alu_xor(a, b)
    elif op == MUL:
        v = sc.alu_mul(a, b)
    elif op == DIV:
        v = sc.alu_div(a, b)
    elif op == MOD:
        v = sc.alu_mod(a, b)
    elif op in _SHIFTS:
        k = b[4]
        if op == isa.LSH:
            v = sc.alu_lsh(a, k, width)
        elif op == isa.RSH:
            v = sc.alu_rsh(a, k)
        elif is64:
            v = sc.alu_arsh(a, k)
        else:
            v = sc.alu_arsh(sc.sext32(a), k)
    else:  # pragma: no cover - rejected by the field checks
        raise _Reject(f"unknown ALU op {op:#x}")
    if not is64:
        # zero-extended from the 32-bit range each operation computed (#20:
        # `w0 s>>= 29; w0 += 4` is [0, 7])
        v = sc.wrap32(v)
    return v


def _arena_mem_as_number(d: Reg, s: Reg, op: Num, is64: bool) -> bool:
    """ALU on memory from bpf_arena_alloc_pages that the kernel, which types it a number,
    accepts and our sized-memory view would not: before its NULL check, 32-bit, with an
    operator other than +/-, or with another arena value.  The result is then what the
    kernel makes it: a number (an arena pointer only where a PTR_ARENA operand makes it one,
    see _arena_alu); the program casts it before a dereference, as LLVM does."""
    for a, b in ((d, s), (s, d)):
        if a.t == PTR_MEM and a.obj is ARENA_MEM:
            return a.null or not is64 or op not in (ADD, SUB) or _is_arena_ptr(b)
    return False


def _arena_compare(dst: Reg, src: Reg, op: Num, is32: bool) -> bool:
    """A comparison the kernel sees between numbers (arena pointers and scalars), except
    the NULL check of arena memory, which keeps its meaning (_ptr_cond)."""
    if not (dst.t == PTR_ARENA or src.t == PTR_ARENA or _is_arena_ptr(dst) or _is_arena_ptr(src)):
        return False
    if not ((dst.t == SCALAR or _is_arena_ptr(dst)) and (src.t == SCALAR or _is_arena_ptr(src))):
        return False
    for a, b in ((dst, src), (src, dst)):
        if a.t == PTR_MEM and b.is_const and b.value == 0 and op in (EQ, NE) and not is32:
            return False
    return True


class TransferMixin(MemoryMixin):
    """Registers, ALU, lddw and conditional jumps: the per-instruction transfer functions."""

    # ------------------------------------------------------------ ALU

    def _do_alu(self, st: State, insn: isa.Insn) -> None:
        opcode = insn.opcode
        dst = insn.dst
        if dst != 10 and opcode & 0xF0 not in _ALU_GENERAL_OPS:
            # fast path: both operands scalars, the cached result (what the general path
            # below computes for this case, without its checks and property calls)
            f: Frame = st.frames[-1]   # (typed locals: struct reads in the compiled core)
            regs = f.regs
            d: Reg = regs[dst]
            # (a linked scalar moved by +/-: the general path decides whether the link
            # stays, with a delta; any other operation leaves a new value, unlinked)
            if d.t == SCALAR and not (d.id and opcode & 0xF0 in _ADD_SUB):
                s: Reg = regs[insn.src] if opcode & 0x08 else insn.kreg
                if s.t == SCALAR:
                    regs[dst] = _insn_alu(insn, d.var, s.var)
                    return
        elif dst != 10 and opcode & 0xF8 == _MOV_K:
            regs = st.frames[-1].regs
            regs[dst] = insn.kreg
            return
        is64 = insn.cls == ALU64
        op = insn.op
        dst = insn.dst
        if dst == 10:
            raise _Reject("frame pointer is read only")
        if op in (END, NEG) and _is_arena_ptr(self.read_reg(st, dst)):
            # any arithmetic on an arena pointer keeps it one; arena memory is a number
            if st.frames[-1].regs[dst].t == PTR_ARENA:
                if is64:
                    self.arena_zext.add(self.pc)
                st.frames[-1].regs[dst] = Reg(PTR_ARENA)
            else:
                st.frames[-1].regs[dst] = UNKNOWN_SCALAR
            return
        if op == END:
            r = self.read_reg(st, dst)
            if r.t != SCALAR:
                raise _Reject(f"R{dst} pointer arithmetic with byte swap prohibited")
            bits = insn.imm
            if is64 or insn.source == TO_BE:
                v = sc.bswap(r.var, bits)
            else:
                v = sc.truncate(r.var, bits)
            st.frames[-1].regs[dst] = scalar(v)
            return
        if op == NEG:
            r = self.read_reg(st, dst)
            if r.t != SCALAR:
                raise _Reject(f"R{dst} pointer arithmetic with neg operator prohibited")
            v = sc.alu_neg(r.var) if is64 else sc.wrap32(sc.alu_neg(sc.trunc32(r.var)))
            st.frames[-1].regs[dst] = scalar(v)
            return
        if insn.source == X:
            src = self.read_reg(st, insn.src)
        else:
            src = insn.kreg
        if op == MOV:
            self._do_mov(st, insn, src, is64)
            return
        d = self.read_reg(st, dst)
        if d.t == PTR_ARENA or src.t == PTR_ARENA or _arena_mem_as_number(d, src, op, is64):
            if d.t == PTR_ARENA and is64:
                # the kernel's needs_zext: an arena pointer stays 32 bits after 64-bit ALU
                # (an instruction some path runs on one is marked for every path, as there)
                self.arena_zext.add(self.pc)
            st.frames[-1].regs[dst] = self._arena_alu(insn, d, src)
            return
        if d.t != SCALAR or src.t != SCALAR:
            st.frames[-1].regs[dst] = self._ptr_alu(insn, d, src, is64)
            return
        # the scalar result is a pure function of (opcode, off, dst value, src value):
        # loops repeat the same abstract computation on every iteration, so it is cached
        r = _insn_alu(insn, d.var, src.var)
        if d.id and op in _ADD_SUB:
            r = _linked_add(insn, d, src, r, is64)
        st.frames[-1].regs[dst] = r

    def _arena_alu(self, insn: isa.Insn, d: Reg, s: Reg) -> Reg:
        """ALU with an arena pointer operand.  The kernel allows any arithmetic on one
        (adjust_reg_min_max_vals): its value is only ever used as window + low 32 bits,
        and it is no secret (user space sees the same numbers), so the result is an arena
        pointer again (dst arena, or ``scalar + arena``) or a plain number.  Memory from
        bpf_arena_alloc_pages counts as the number the kernel types it."""
        other = s if _is_arena_ptr(d) else d
        if other.t != SCALAR and not _is_arena_ptr(other):
            raise _Reject(f"R{insn.dst} pointer arithmetic between arena and "
                          f"{other.type_name()} prohibited")
        if d.t == PTR_ARENA or (insn.op == ADD and s.t == PTR_ARENA):
            return Reg(PTR_ARENA)
        return UNKNOWN_SCALAR

    @property
    def _arena_associated(self) -> bool:
        """The program names an arena map (an ``lddw`` of it or of an arena global): what
        makes the kernel associate the arena with it (env->prog->aux->arena).  Programs
        that only cast call ``bpf_arena_alloc_pages(&arena, NULL, 0, 0, 0)`` for this.
        Computed once (``_arena_assoc``: a declared slot of the compiled class, which has
        no instance ``__dict__`` for functools.cached_property)."""
        if self._arena_assoc is None:
            self._arena_assoc = self._find_arena_association()
        return self._arena_assoc

    def _find_arena_association(self) -> bool:
        maps = self.program.maps
        return any(i.is_lddw and i.src in (PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE)
                   and 0 <= i.imm < len(maps)
                   and getattr(maps[i.imm], "type", None) == _MAP_TYPE_ARENA
                   for i in self.insns)

    def _addr_space_cast(self, st: State, insn: isa.Insn, src: Reg) -> None:
        """BPF_ADDR_SPACE_CAST, checked as the kernel's check_alu_op does (when reached).
        imm 1 (as(1) -> as(0), LLVM's cast before a dereference) gives an arena pointer:
        the engines make it the low 32 bits, and the accesses through it PROBE_MEM32.
        imm 1 << 16 (back to a user address) gives a number."""
        if insn.imm not in (1, 1 << 16):
            raise _Reject("addr_space_cast insn can only convert between address space 1 and 0")
        if not self._arena_associated:
            raise _Reject("addr_space_cast insn can only be used in a program that has an "
                          "associated arena")
        if not _arena_castable(src):
            raise _Reject(f"R{insn.src} addr_space_cast of {src.type_name()} prohibited "
                          "(only numbers and arena pointers convert)")
        st.frames[-1].regs[insn.dst] = Reg(PTR_ARENA) if insn.imm == 1 else UNKNOWN_SCALAR

    def _do_mov(self, st: State, insn: isa.Insn, src: Reg, is64: bool) -> None:
        dst = insn.dst
        if insn.source == K:
            st.frames[-1].regs[dst] = src
            return
        if is64 and insn.off == ADDR_SPACE_CAST:
            self._addr_space_cast(st, insn, src)
            return
        if not is64 and _is_arena_ptr(src):
            st.frames[-1].regs[dst] = scalar(sc.urange(0, U32))  # its low half: an arena offset
            return
        if insn.off:  # movsx
            if src.t != SCALAR:
                raise _Reject(f"R{insn.src} sign-extension of a pointer prohibited")
            if src.var[1] < 1 << (insn.off - 1):
                # no bit to extend: a plain copy, linked like one (the kernel's no_sext)
                st.frames[-1].regs[dst] = self._id_before_mov(st, insn.src, src)
                return
            v = sc.sext(src.var, insn.off)
            st.frames[-1].regs[dst] = scalar(v if is64 else sc.wrap32(sc.trunc32(v)))
            return
        if is64:
            if src.t == SCALAR and (src.id & ADD_CONST or (not src.id and src.var[5])):
                src = self._id_before_mov(st, insn.src, src)
            st.frames[-1].regs[dst] = src
            return
        if src.t != SCALAR:
            raise _Reject(f"R{insn.src} partial copy of pointer")
        if sc.fits_u32(src.var):
            st.frames[-1].regs[dst] = self._id_before_mov(st, insn.src, src)
        else:
            st.frames[-1].regs[dst] = scalar(sc.trunc32(src.var))

    def _ptr_alu(self, insn: isa.Insn, d: Reg, s: Reg, is64: bool) -> Reg:
        op = insn.op
        regno = insn.dst
        opname = ALU_OP_NAMES.get(op, "?")
        if not is64:
            raise _Reject(f"R{regno} 32-bit pointer arithmetic prohibited")
        if d.t >= PTR_CTX and s.t >= PTR_CTX:     # (is_ptr, without the property call)
            if op == SUB and d.t == s.t and d.t in (PTR_STACK, PTR_MAP_VALUE, PTR_MEM, PTR_BUF) \
                    and d.obj is s.obj and d.frame == s.frame and not d.null and not s.null:
                return UNKNOWN_SCALAR
            if op in (ADD, SUB):
                raise _Reject(f"R{regno} pointer {opname} pointer prohibited")
            raise _Reject(f"R{regno} pointer arithmetic with {opname} operator prohibited")
        # (s.t >= PTR_CTX: Reg.is_ptr; below, s.var[5] == 0: Reg.is_const of the scalar
        # operand, without the property calls on this per-instruction path)
        if op == ADD and s.t >= PTR_CTX:
            d, s = s, d
        elif op == SUB and s.t >= PTR_CTX:
            raise _Reject(f"R{regno} tried to subtract pointer from scalar")
        elif (op != ADD and op != SUB) or s.t >= PTR_CTX:
            raise _Reject(f"R{regno} pointer arithmetic with {opname} operator prohibited")
        sanity.check_ptr_operands(d, s)
        if op == SUB and d.t == PTR_STACK:
            # the kernel's rule ("invalid fp arithmetic"): add a negative offset instead
            raise _Reject(f"R{regno} subtraction from stack pointer prohibited")
        if d.null:
            raise _Reject(f"R{regno} pointer arithmetic on {d.type_name()} prohibited, null-check it first")
        if d.t in (CONST_MAP, PTR_FUNC, PTR_TRUSTED):
            raise _Reject(f"R{regno} pointer arithmetic on {d.type_name()} prohibited")
        sv: tuple = s.var
        if d.t == PTR_CTX and sv[5] != 0:
            raise _Reject(f"R{regno} variable offset on ctx pointer prohibited")
        if sv[5] == 0:
            k = sc.s64(sv[4])
            off = d.off + k if op == ADD else d.off - k
            sanity.check_ptr_result(d, off, d.var)
            if not -MAX_VAR_OFF < off < MAX_VAR_OFF:
                raise _Reject(f"R{regno} pointer offset {off} is not allowed")
            # a map value keeps its id through constant offsets (the kernel does): the id
            # tells which element a bpf_spin_lock/unlock pointer belongs to
            r = copy_reg(d)
            r.off = off
            if d.t != PTR_MAP_VALUE:
                r.id = 0
            return r
        # alu_add / alu_sub of the variable parts: the 64-bit scalar ALU result, cached
        # (the instruction is ALU64 | op | X with offset 0 here: d and s swapped for
        # ``scalar += pointer``, the sum is the same)
        var = _insn_alu(insn, d.var, sv).var
        sanity.check_ptr_result(d, d.off, var)
        r = copy_reg(d)
        r.var = var
        r.id = 0
        return r

    # ------------------------------------------------------------ lddw

    def _do_lddw(self, st: State, insn: isa.Insn, pc: Num) -> None:
        dst = insn.dst
        if dst == 10:
            raise _Reject("frame pointer is read only")
        # the value depends on the instruction alone: made once per instruction
        r = self._lddw_regs.get(pc)
        if r is None:
            r = self._lddw_reg(insn, pc)
            if r is None:
                return
            self._lddw_regs[pc] = r
        st.frames[-1].regs[dst] = r

    def _lddw_reg(self, insn: isa.Insn, pc: int) -> Reg | None:
        src = insn.src
        if src == 0:
            return const_imm(insn.imm64)
        if src == PSEUDO_MAP_IDX:
            return Reg(CONST_MAP, obj=self.program.maps[insn.imm])
        if src == PSEUDO_MAP_IDX_VALUE:
            m = self.program.maps[insn.imm]
            off = isa.to_s32(self.insns[pc + 1].imm)
            if getattr(m, "type", None) == _MAP_TYPE_ARENA:
                # an arena global's address: a number, as in the kernel's check_ld_imm
                # (the program casts it to an arena pointer before dereferencing it)
                arena_len = getattr(m, "max_entries", 0) * 4096
                if not 0 <= off <= arena_len:
                    raise _Reject(f"invalid access to arena, off={off} (arena {arena_len} bytes)")
                return UNKNOWN_SCALAR
            vs = getattr(m, "value_size", 0)
            if not 0 <= off < max(vs, 1):
                raise _Reject(f"invalid access to map value pointer, value_size={vs} off={off}")
            return Reg(PTR_MAP_VALUE, off=off, obj=m, ro=map_ro(m))
        if src == PSEUDO_FUNC:
            return Reg(PTR_FUNC, size=pc + insn.imm + 1)
        return None

    # ------------------------------------------------------------ conditional jumps

    def _do_cond_jump(self, st: State, insn: isa.Insn, pc: Num):
        op = _JMP_TO_CMP[insn.op]
        is32 = insn.cls == JMP32
        dst = self.read_reg(st, insn.dst)
        if insn.source == X:
            src = self.read_reg(st, insn.src)
        else:
            src = insn.kreg
        target = pc + insn.off + 1
        fall = pc + 1
        if _arena_compare(dst, src, op, is32):
            return [(fall, st), (target, st.copy())]     # a number to the kernel too: both ways
        if dst.t >= PTR_CTX or src.t >= PTR_CTX:     # (Reg.is_ptr, inline)
            return self._ptr_cond(st, insn, dst, src, op, target, fall, is32)
        dv: tuple = dst.var
        sv: tuple = src.var
        if insn.memo_a is dv and insn.memo_b is sv:
            cond = insn.memo_r      # this instruction's last values (common._DInsn)
        elif dv[5] or sv[5]:
            # a pure function of the opcode and both values, cached like the ALU results
            if shared_memo_pays(insn):
                key = (insn.opcode, dv, sv)
                cond = _recall(_COND_MEMO, key, insn)
                if cond is None:
                    cond = _remember(_COND_MEMO, key, scalar_cond(insn.opcode, dv, sv))
            else:
                cond = scalar_cond(insn.opcode, dv, sv)
            insn.memo_a = dv
            insn.memo_b = sv
            insn.memo_r = cond
        else:
            # two constants (a loop counter against its bound): always decided
            self._branch_decided(st)
            taken = _const_taken(op, dst.var[4], src.var[4], is32)
            return [(target if taken else fall, st)]
        a, b, taken, r_fall, r_take = cond
        if taken is not None:
            self._branch_decided(st)
            return [(target if taken else fall, st)]
        out = []
        other = st.copy()
        if r_fall is not None:
            self._apply_refine(st, insn, dst, src, a, b, r_fall)
            out.append((fall, st))
        if r_take is not None:
            self._apply_refine(other, insn, dst, src, a, b, r_take)
            out.append((target, other))
        if len(out) < 2:
            self._branch_decided(st)
        return out

    def _apply_refine(self, st: State, insn: isa.Insn, dst: Reg, src: Reg, a, b, refined) -> None:
        na, nb = refined
        is32 = insn.cls == JMP32
        regs = st.frames[-1].regs
        if na != a:
            if a == dst.var:
                regs[insn.dst] = with_var(dst, na)
            elif is32:
                # the compare saw only the low 32 bits (#20: `if w1 s< 0` narrows r1 too)
                v = sc.refine_low32(dst.var, na)
                if v != dst.var:
                    regs[insn.dst] = with_var(dst, v)
        if insn.source == X and nb != b:
            if b == src.var:
                regs[insn.src] = with_var(src, nb)
            elif is32:
                v = sc.refine_low32(src.var, nb)
                if v != src.var:
                    regs[insn.src] = with_var(src, v)
        # then every register linked to either operand takes its (new) range, in the
        # kernel's order: the source's partners first, then the destination's; even an
        # operand the compare did not narrow is copied to its partners, as there
        if insn.source == X and src.id:
            self._sync_linked(st, insn.src)
        if dst.id:
            self._sync_linked(st, insn.dst)

    def _sync_linked(self, st: State, regno: Num) -> None:
        """Give every scalar linked to register ``regno`` (a register or spilled slot of
        any frame with the same base id) the range of ``regno`` moved by their deltas
        (the kernel's sync_linked_regs); with a plain link (or the same delta) the
        partner becomes a copy of it.  The data-buffer length's partners raise the
        buffer's known minimum size."""
        regs = st.frames[-1].regs
        known = regs[regno]
        kid = known.id
        base = kid & ~ADD_CONST
        for f in st.frames:
            fregs = f.regs
            for i in range(11):
                r = fregs[i]
                if r.t == SCALAR and r.id and (r.id & ~ADD_CONST) == base and r is not known:
                    nr = _synced(known, r)
                    if nr is not None:
                        fregs[i] = nr
            stack = f.stack
            hits = [(k, slot[1]) for k, slot in stack.items()
                    if slot[0] == "S" and slot[1].t == SCALAR and slot[1].id
                    and (slot[1].id & ~ADD_CONST) == base]
            for k, r in hits:
                nr = _synced(known, r)
                if nr is not None:
                    stack[k] = ("S", nr)
        if base == LEN_ID:
            v = known.var if not kid & ADD_CONST else sync_linked_var(
                known, known.replace(id=LEN_ID, off=0))
            if v[0] > st.buf_min:
                st.buf_min = min(v[0], 1 << 32)

    def _ptr_cond(self, st: State, insn: isa.Insn, dst: Reg, src: Reg, op: Num, target: Num,
                  fall: Num, is32: bool):
        # (the fields, not the is_ptr/is_const/value properties: this runs at every NULL check)
        ptr, other = (dst, src) if dst.t >= PTR_CTX else (src, dst)
        if (other.t >= PTR_CTX or is32 or op not in (EQ, NE)
                or not (other.t == SCALAR and other.var[5] == 0 and other.var[4] == 0)):
            raise _Reject(f"R{insn.dst} pointer comparison prohibited")
        if not ptr.null:
            if ptr.t in _NOT_NULL_TYPES:
                # a valid map value / memory / trusted pointer is never NULL (the kernel's
                # reg_not_null): the branch is decided
                return [(fall if op == EQ else target, st)]
            # the kernel explores both ways for other pointers (stack, ctx, ...): so do we,
            # without changing the pointer
            return [(fall, st), (target, st.copy())]
        other_st = st.copy()
        null_st, nonnull_st = (other_st, st) if op == EQ else (st, other_st)
        self._mark_null(null_st, ptr, is_null=True)
        self._mark_null(nonnull_st, ptr, is_null=False)
        return [(fall, st), (target, other_st)]

    def _mark_null(self, st: State, ptr: Reg, is_null: bool) -> None:
        _mark_null_in(st, ptr.id, is_null)
        if is_null and ptr.ref:
            st.refs.pop(ptr.ref, None)
