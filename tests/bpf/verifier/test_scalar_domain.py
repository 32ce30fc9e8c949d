"""Property tests of the scalar domain: every transfer function over-approximates.

For random abstract values and random concrete members of them, the concrete result of
each operation must be a member of the abstract result; refinements must keep every
concrete pair that satisfies (or falsifies) the comparison.
"""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from uringbpf.bpf.verifier import scalar as sc

U64 = sc.U64


def member(s, v: int) -> bool:
    """``v`` is a value of ``s``: in each of its views, the 32-bit bounds of the low half
    included."""
    v &= U64
    low = v & sc.U32
    slow = low - (1 << 32) if low >> 31 else low
    return (s[0] <= v <= s[1] and s[2] <= sc.s64(v) <= s[3] and (v & ~s[5] & U64) == s[4]
            and s[6] <= low <= s[7] and s[8] <= slow <= s[9])


@st.composite
def abstract_with_member(draw):
    """An abstract scalar built the way the verifier builds them, plus one member."""
    kind = draw(st.sampled_from(["const", "urange", "srange", "mask", "unknown", "small"]))
    if kind == "const":
        v = draw(st.integers(0, U64))
        return sc.const(v), v
    if kind == "urange":
        a, b = sorted(draw(st.lists(st.integers(0, U64), min_size=2, max_size=2)))
        v = draw(st.integers(a, b))
        return sc.urange(a, b), v
    if kind == "small":
        a, b = sorted(draw(st.lists(st.integers(0, 300), min_size=2, max_size=2)))
        v = draw(st.integers(a, b))
        return sc.urange(a, b), v
    if kind == "srange":
        a, b = sorted(draw(st.lists(st.integers(sc.S64_MIN, sc.S64_MAX), min_size=2, max_size=2)))
        v = draw(st.integers(a, b)) & U64
        return sc.srange(a, b), v
    if kind == "mask":
        mask = draw(st.integers(0, U64))
        value = draw(st.integers(0, U64)) & ~mask & U64
        v = value | (draw(st.integers(0, U64)) & mask)
        return sc.from_tnum(value, mask), v
    return sc.UNKNOWN, draw(st.integers(0, U64))


def _shift_ok(k):
    return 0 <= k < 64


@settings(max_examples=400, deadline=None)
@given(abstract_with_member(), abstract_with_member())
def test_binary_ops_contain_concrete_results(x, y):
    a, av = x
    b, bv = y
    assert member(a, av) and member(b, bv)
    checks = [
        (sc.alu_add(a, b), av + bv),
        (sc.alu_sub(a, b), av - bv),
        (sc.alu_mul(a, b), av * bv),
        (sc.alu_and(a, b), av & bv),
        (sc.alu_or(a, b), av | bv),
        (sc.alu_xor(a, b), av ^ bv),
        (sc.alu_div(a, b), av // bv if bv else 0),
        (sc.alu_mod(a, b), av % bv if bv else av),
    ]
    for result, concrete in checks:
        assert member(result, concrete), (a, b, av, bv, result, concrete)


@settings(max_examples=300, deadline=None)
@given(abstract_with_member(), st.integers(0, 63))
def test_shifts_and_unary_contain_concrete_results(x, k):
    a, av = x
    assert member(sc.alu_lsh(a, k), av << k)
    assert member(sc.alu_rsh(a, k), av >> k)
    assert member(sc.alu_arsh(a, k), sc.s64(av) >> k)
    assert member(sc.alu_neg(a), -av)
    for bits in (8, 16, 32):
        full = (1 << bits) - 1
        low = av & full
        assert member(sc.truncate(a, bits), low)
        assert member(sc.sext(a, bits), low - (1 << bits) if low >> (bits - 1) else low)
        assert member(sc.bswap(a, bits), int.from_bytes(low.to_bytes(bits // 8, "little"), "big"))
    a32 = sc.trunc32(a)
    assert member(a32, av & sc.U32)
    v32 = av & sc.U32
    assert member(sc.sext32(a32), v32 - (1 << 32) if v32 >> 31 else v32)
    assert member(sc.wrap32(a), av & sc.U32)


OPS = {
    sc.EQ: lambda a, b: a == b, sc.NE: lambda a, b: a != b,
    sc.GT: lambda a, b: a > b, sc.GE: lambda a, b: a >= b,
    sc.LT: lambda a, b: a < b, sc.LE: lambda a, b: a <= b,
    sc.SGT: lambda a, b: sc.s64(a) > sc.s64(b), sc.SGE: lambda a, b: sc.s64(a) >= sc.s64(b),
    sc.SLT: lambda a, b: sc.s64(a) < sc.s64(b), sc.SLE: lambda a, b: sc.s64(a) <= sc.s64(b),
    sc.SET: lambda a, b: (a & b) != 0,
}


@settings(max_examples=600, deadline=None)
@given(abstract_with_member(), abstract_with_member(), st.sampled_from(sorted(OPS)))
def test_branches_keep_every_concrete_pair(x, y, op):
    a, av = x
    b, bv = y
    holds = OPS[op](av, bv)
    taken = sc.branch_taken(a, b, op)
    if taken is not None:
        assert taken == holds, (a, b, av, bv, op)
    refined = sc.refine(a, b, op) if holds else sc.refine_not(a, b, op)
    assert refined is not None, (a, b, av, bv, op, holds)
    assert member(refined[0], av) and member(refined[1], bv), (a, b, av, bv, op, holds, refined)


@settings(max_examples=300, deadline=None)
@given(abstract_with_member())
def test_sync_keeps_members_and_tnum_containment(x):
    a, av = x
    assert sc.sync(a) is not None
    assert member(sc.sync(a), av)
    assert sc.contains(sc.UNKNOWN, a)
    assert sc.contains(a, sc.const(av))


@settings(max_examples=2000, deadline=None)
@given(abstract_with_member(), st.integers(0, sc.U32), st.integers(0, sc.U32), st.booleans())
def test_refine_low32_keeps_members(x, lo, hi, signed):
    """A 32-bit compare narrows the low half of a 64-bit value (#20): every concrete value
    whose low 32 bits satisfy the narrowed 32-bit view stays a member."""
    a, av = x
    lo, hi = min(lo, hi), max(lo, hi)
    low = av & sc.U32
    if signed:
        slo, shi = sorted((lo - (1 << 32) if lo >> 31 else lo, hi - (1 << 32) if hi >> 31 else hi))
        narrowed = sc.srange(slo, shi)
        inside = slo <= (low - (1 << 32) if low >> 31 else low) <= shi
    else:
        narrowed = sc.urange(lo, hi)
        inside = lo <= low <= hi
    r = sc.refine_low32(a, narrowed)
    if inside:
        assert member(r, av)


@settings(max_examples=3000, deadline=None)
@given(abstract_with_member(), st.sampled_from([1, 2, 3, 7, 16, -1, -3, -8, 0, sc.S64_MIN, sc.S64_MAX]))
def test_signed_div_mod_by_constant_contain_results(x, c):
    """BPF sdiv/smod (v4) by a constant: truncation toward zero, x s/ 0 = 0, x s% 0 = x,
    S64_MIN s/ -1 wraps."""
    a, av = x
    sv = sc.s64(av)
    if c == 0:
        q, r = 0, sv
    else:
        q = abs(sv) // abs(c)
        q = q if (sv < 0) == (c < 0) else -q
        r = sv - q * c
    assert member(sc.alu_sdiv_const(a, c), q & U64)
    assert member(sc.alu_smod_const(a, c), r & U64)
