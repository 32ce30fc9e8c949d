"""Soundness of the 32-bit subregister bounds (#20): every ALU32 operation, JMP32
refinement and 32-bit view keeps every concrete value of its inputs.

The abstract values are built the way the verifier builds them (chains of ALU32 ops and
JMP32 refinements from the generators of test_scalar_domain), so their 32-bit bounds
carry information the 64-bit ranges do not (a signed 32-bit range across zero).
Results are checked by membership only: Linux 7.2 keeps each range as one arc, so a
narrowing may trade a bound for another (the unsigned one for the signed one) and its
tuple need not lie inside its input's.
"""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from test_scalar_domain import abstract_with_member, member
from uringbpf.bpf import isa
from uringbpf.bpf.verifier import scalar as sc
from uringbpf.bpf.verifier import transfer

U32, U64 = sc.U32, sc.U64


def s32(v: int) -> int:
    v &= U32
    return v - (1 << 32) if v >> 31 else v


def alu32(op: int, a: int, b: int) -> int:
    """The concrete BPF ALU32 result (zero-extended)."""
    a, b = a & U32, b & U32
    r = {isa.ADD: lambda: a + b, isa.SUB: lambda: a - b, isa.MUL: lambda: a * b,
         isa.AND: lambda: a & b, isa.OR: lambda: a | b, isa.XOR: lambda: a ^ b,
         isa.DIV: lambda: a // b if b else 0, isa.MOD: lambda: a % b if b else a,
         isa.LSH: lambda: a << (b & 31), isa.RSH: lambda: a >> (b & 31),
         isa.ARSH: lambda: s32(a) >> (b & 31)}[op]()
    return r & U32


ALU32_OPS = [isa.ADD, isa.SUB, isa.MUL, isa.AND, isa.OR, isa.XOR, isa.DIV, isa.MOD,
             isa.LSH, isa.RSH, isa.ARSH]
JMP_OPS = {isa.JEQ: lambda a, b: a == b, isa.JNE: lambda a, b: a != b,
           isa.JGT: lambda a, b: a > b, isa.JGE: lambda a, b: a >= b,
           isa.JLT: lambda a, b: a < b, isa.JLE: lambda a, b: a <= b,
           isa.JSET: lambda a, b: (a & b) != 0}
JMP_SIGNED = {isa.JSGT: lambda a, b: a > b, isa.JSGE: lambda a, b: a >= b,
              isa.JSLT: lambda a, b: a < b, isa.JSLE: lambda a, b: a <= b}
_EDGES32 = [0, 1, 3, 4, 7, 8, 29, 31, 255, (1 << 31) - 1, 1 << 31, (1 << 31) + 1, U32, U32 - 3,
            U32 - 7, 1 << 32, (1 << 32) + 5, U64, U64 - (1 << 31)]


def jmp32_holds(opcode: int, a: int, b: int) -> bool:
    op = opcode & 0xF0
    if op in JMP_SIGNED:
        return JMP_SIGNED[op](s32(a), s32(b))
    return JMP_OPS[op](a & U32, b & U32)


def refine_jmp32(opcode: int, a, av: int, b, bv: int):
    """The two operands after the JMP32 ``opcode`` on the side the concrete pair takes,
    as transfer's _do_cond_jump/_apply_refine compute them."""
    va, vb, taken, fall, take = transfer.scalar_cond(opcode, a, b)
    holds = jmp32_holds(opcode, av, bv)
    if taken is not None:
        assert taken == holds, (opcode, a, b, av, bv)
        return a, b
    refined = take if holds else fall
    assert refined is not None, (opcode, a, b, av, bv, holds)
    na, nb = refined
    ra = na if va == a else sc.refine_low32(a, na)
    rb = nb if vb == b else sc.refine_low32(b, nb)
    return ra, rb


@st.composite
def abstract32_with_member(draw):
    """An abstract value after 0-3 ALU32 operations or JMP32 refinements by constants,
    plus one of its concrete values."""
    a, av = draw(abstract_with_member())
    for _ in range(draw(st.integers(0, 3))):
        k = draw(st.sampled_from(_EDGES32) | st.integers(0, U64))
        if draw(st.booleans()):
            op = draw(st.sampled_from(ALU32_OPS))
            if op in (isa.LSH, isa.RSH, isa.ARSH):
                k &= 31
            a = transfer.scalar_alu(isa.ALU | op, 0, a, sc.const(k))
            av = alu32(op, av, k)
        else:
            op = draw(st.sampled_from(sorted(JMP_OPS) + sorted(JMP_SIGNED)))
            a, _ = refine_jmp32(isa.JMP32 | op, a, av, sc.const(k), k)
        assert member(a, av), (a, av)
    return a, av


@settings(max_examples=1500, deadline=None)
@given(abstract32_with_member(), abstract32_with_member(), st.sampled_from(ALU32_OPS))
def test_alu32_contains_concrete_results(x, y, op):
    a, av = x
    b, bv = y
    if op in (isa.LSH, isa.RSH, isa.ARSH):
        b, bv = sc.const(bv & 31), bv & 31
    r = transfer.scalar_alu(isa.ALU | op, 0, a, b)
    assert member(r, alu32(op, av, bv)), (op, a, b, av, bv, r)


@settings(max_examples=1500, deadline=None)
@given(abstract32_with_member(), abstract32_with_member(),
       st.sampled_from(sorted(JMP_OPS) + sorted(JMP_SIGNED)), st.booleans())
def test_jmp32_refinement_keeps_every_concrete_pair(x, y, op, imm):
    a, av = x
    b, bv = y
    if imm:
        b = sc.const(bv)
    ra, rb = refine_jmp32(isa.JMP32 | op, a, av, b, bv)
    assert member(ra, av) and member(rb, bv), (op, a, b, av, bv, ra, rb)


@settings(max_examples=800, deadline=None)
@given(abstract32_with_member(), abstract32_with_member())
def test_64bit_ops_and_views_keep_members(x, y):
    a, av = x
    b, bv = y
    for r, v in ((sc.alu_add(a, b), av + bv), (sc.alu_sub(a, b), av - bv),
                 (sc.alu_and(a, b), av & bv), (sc.alu_or(a, b), av | bv),
                 (sc.alu_mul(a, b), av * bv), (sc.alu_neg(a), -av),
                 (sc.trunc32(a), av & U32), (sc.wrap32(a), av & U32),
                 (sc.truncate(a, 32), av & U32), (sc.sext(a, 32), s32(av)),
                 (sc.sext32(sc.trunc32(a)), s32(av)), (sc.alu_arsh(a, 3), sc.s64(av) >> 3)):
        assert member(r, v), (a, b, av, bv, r, v)
    assert sc.contains(a, sc.const(av))
    assert sc.contains(sc.UNKNOWN, a)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_EDGES32) | st.integers(0, U64)
                | st.integers(-300, 300).map(lambda v: v & U64)
                | st.integers((1 << 32) - 300, (1 << 32) + 300), min_size=1, max_size=4))
def test_sync_keeps_every_value_of_its_hull(values):
    """The tightest description of a set of values in each view separately (the hull)
    is consistent: sync keeps every one of them (each rule of _sync32 is checked)."""
    lows = [v & U32 for v in values]
    tv = values[0]
    tm = 0
    for v in values:
        tm |= v ^ tv
    hull = (min(values), max(values), min(map(sc.s64, values)), max(map(sc.s64, values)),
            tv & ~tm, tm, min(lows), max(lows), min(map(s32, values)), max(map(s32, values)))
    r = sc.sync(hull)
    assert r is not None, hull
    assert all(member(r, v) for v in values), (hull, r)


@settings(max_examples=800, deadline=None)
@given(abstract32_with_member(), st.integers(0, U32), st.integers(0, U32),
       st.integers(-(1 << 31), (1 << 31) - 1), st.integers(-(1 << 31), (1 << 31) - 1))
def test_with_bounds32_keeps_values_inside(x, u0, u1, s0, s1):
    a, av = x
    u0, u1 = sorted((u0, u1))
    s0, s1 = sorted((s0, s1))
    r = sc.with_bounds32(a, u0, u1, s0, s1)
    if u0 <= av & U32 <= u1 and s0 <= s32(av) <= s1:
        assert member(r, av)
