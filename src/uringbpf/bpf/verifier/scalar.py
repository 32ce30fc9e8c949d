"""Scalar value tracking for the verifier: known bits (tnum) plus 64-bit ranges.

A scalar is abstracted as ``(umin, umax, smin, smax, tnum)``: the unsigned and signed
64-bit intervals it lies in, and a *tnum* ``(value, mask)`` saying which bits are known
(bits in ``mask`` are unknown, the others equal the bits of ``value``).  Every transfer
function below over-approximates: the concrete result of an operation on any values
inside the inputs lies inside the output.  That is the whole soundness argument, and
the fuzz tests check it against real execution.

The low 32 bits (the subregister) have their own bounds, as in the kernel (#20): a scalar
is the 10-tuple ``(umin, umax, smin, smax, tv, tm, u32min, u32max, s32min, s32max)``;
``sync`` derives each view from the others (the kernel's reg_bounds_sync: 32-bit bounds
from the low half of the tnum and from a 64-bit range that stays inside one 2**32 block,
u32 <-> s32, and back to the 64-bit range when it stays inside one block, which is the
zero-extended value of every ALU32 result).  A 32-bit operation *truncates* its operands
(the low 32 bits with their 32-bit bounds), and wraps its result back to 32 bits keeping
those bounds; ADD/SUB compute them as the kernel's scalar32_min_max_add/sub, ARSH from
the signed 32-bit range.  A 6-tuple given to ``sync`` gets unknown 32-bit bounds.

Functions take and return plain tuples for speed: the verifier calls them for every
processed instruction.
"""

from __future__ import annotations

U64 = (1 << 64) - 1
U32 = (1 << 32) - 1
S64_MIN = -(1 << 63)
S64_MAX = (1 << 63) - 1
S32_MIN = -(1 << 31)
S32_MAX = (1 << 31) - 1
SIGN64 = 1 << 63
_W64 = 1 << 64

# A scalar: (umin, umax, smin, smax, tv, tm, u32min, u32max, s32min, s32max)
_ANY32 = (0, U32, S32_MIN, S32_MAX)
UNKNOWN = (0, U64, S64_MIN, S64_MAX, 0, U64) + _ANY32
_B31 = 1 << 31


def s64(v: int) -> int:
    """``v`` as a signed 64-bit integer."""
    v &= U64
    return v - (1 << 64) if v & SIGN64 else v


# ---------------------------------------------------------------- tnum


def tnum_const(v: int) -> tuple[int, int]:
    """The tnum of the constant ``v`` (every bit known)."""
    return (v & U64, 0)


def tnum_range(lo: int, hi: int) -> tuple[int, int]:
    """Smallest tnum containing every value of the unsigned interval [lo, hi]."""
    chi = lo ^ hi
    bits = chi.bit_length()
    if bits > 63:
        return (0, U64)
    delta = (1 << bits) - 1
    return (lo & ~delta & U64, delta)


def tnum_add(a, b):
    """Known bits of ``a + b`` (the kernel's tnum_add)."""
    av, am = a
    bv, bm = b
    sm = am + bm
    sv = av + bv
    sigma = sm + sv
    chi = sigma ^ sv
    mu = (chi | am | bm) & U64
    return (sv & ~mu & U64, mu)


def tnum_sub(a, b):
    """Known bits of ``a - b`` (the kernel's tnum_sub)."""
    av, am = a
    bv, bm = b
    dv = av - bv
    alpha = dv + am
    beta = dv - bm
    chi = alpha ^ beta
    mu = (chi | am | bm) & U64
    return (dv & ~mu & U64, mu)


def tnum_and(a, b):
    """Known bits of ``a & b``."""
    av, am = a
    bv, bm = b
    alpha = av | am
    beta = bv | bm
    v = av & bv
    return (v, alpha & beta & ~v & U64)


def tnum_or(a, b):
    """Known bits of ``a | b``."""
    v = a[0] | b[0]
    mu = a[1] | b[1]
    return (v, mu & ~v & U64)


def tnum_xor(a, b):
    """Known bits of ``a ^ b``."""
    v = a[0] ^ b[0]
    mu = a[1] | b[1]
    return (v & ~mu & U64, mu)


def tnum_mul(a, b):
    """Shift-and-add multiplication over known bits."""
    av, am = a
    bv, bm = b
    if am == 0 and bm == 0:
        return ((av * bv) & U64, 0)
    acc_v = (av * bv) & U64
    acc_m = (0, 0)
    steps = 0
    while (av or am) and steps < 64:
        if av & 1:
            acc_m = tnum_add(acc_m, (0, bm))
        elif am & 1:
            acc_m = tnum_add(acc_m, (0, (bv | bm) & U64))
        av >>= 1
        am >>= 1
        bv = (bv << 1) & U64
        bm = (bm << 1) & U64
        steps += 1
    return tnum_add((acc_v, 0), acc_m)


def tnum_lshift(a, k):
    """Known bits of ``a << k`` (64-bit)."""
    return ((a[0] << k) & U64, (a[1] << k) & U64)


def tnum_rshift(a, k):
    """Known bits of ``a >> k`` (logical)."""
    return (a[0] >> k, a[1] >> k)


def tnum_arshift(a, k, bits=64):
    """Known bits of ``a s>> k`` on ``bits``-bit values."""
    def sx(x):
        x &= (1 << bits) - 1
        return x - (1 << bits) if x >> (bits - 1) else x

    full = (1 << bits) - 1
    return ((sx(a[0]) >> k) & full, (sx(a[1]) >> k) & full)


def tnum_intersect(a, b):
    """Bits known in either of two tnums describing the same value."""
    v = a[0] | b[0]
    mu = a[1] & b[1]
    return (v & ~mu & U64, mu)


def tnum_in(outer, inner) -> bool:
    """True if every value of ``inner`` is a value of ``outer``."""
    if inner[1] & ~outer[1]:
        return False
    return (inner[0] & ~outer[1]) == outer[0]


def tnum_cast32(a):
    """The low 32 bits of a tnum."""
    return (a[0] & U32, a[1] & U32)


# ---------------------------------------------------------------- ranges


def const(v: int):
    """The scalar that is exactly ``v``."""
    v &= U64
    lo = v & U32
    sl = lo - (1 << 32) if lo >> 31 else lo
    return (v, v, s64(v), s64(v), v, 0, lo, lo, sl, sl)


def from_tnum(tv: int, tm: int):
    """The scalar described only by the tnum ``(tv, tm)``, ranges derived from it."""
    return sync((0, U64, S64_MIN, S64_MAX, tv, tm))


def urange(lo: int, hi: int):
    """A scalar in the unsigned range ``[lo, hi]``."""
    return sync((lo, hi, S64_MIN, S64_MAX, 0, U64))


def srange(lo: int, hi: int):
    """A scalar in the signed range ``[lo, hi]``."""
    return sync((0, U64, lo, hi, 0, U64))


def is_const(s) -> bool:
    """True if every bit of the scalar is known."""
    return s[5] == 0


def sync(s):
    """Make the views consistent with each other (64-bit ranges and tnum by ``_sync64``,
    then the 32-bit bounds by ``_sync32``); ``None`` if they are contradictory."""
    if len(s) == 6:
        r = _sync64(s)
        return None if r is None else _sync32(r, 0, U32, S32_MIN, S32_MAX)
    r = _sync64(s[:6])
    return None if r is None else _sync32(r, s[6], s[7], s[8], s[9])


def _sync32(r, u0, u1, s0, s1):
    """The 64-bit scalar ``r`` (already synced) with 32-bit bounds ``[u0, u1]``/``[s0, s1]``
    of its low half: each narrowed by the other views and pushed back into them.

    Sound because every rule maps an interval through a bijection that is monotonic
    on it: inside one 2**32-aligned block a value and its low 32 bits (unsigned) move
    together, inside one block centred on a multiple of 2**32 a value and its low 32
    bits read as signed do, and a 32-bit interval on one side of 2**31 reads the same
    as u32 or s32."""
    for _ in (0, 1, 2):
        umin, umax, smin, smax, tv, tm = r
        if not tm:
            lo = tv & U32
            sl = lo - (1 << 32) if lo >> 31 else lo
            if u0 <= lo <= u1 and s0 <= sl <= s1:
                return r + (lo, lo, sl, sl)
            return None
        # from the low half of the tnum
        lv, lm = tv & U32, tm & U32
        if lv > u0:
            u0 = lv
        if (lv | lm) < u1:
            u1 = lv | lm
        x = lv | (lm & _B31)
        x = x - (1 << 32) if x >> 31 else x
        if x > s0:
            s0 = x
        x = lv | (lm & S32_MAX)
        x = x - (1 << 32) if x >> 31 else x
        if x < s1:
            s1 = x
        # from 64-bit ranges inside one block
        for lo, hi in ((umin, umax), (smin, smax)):
            if lo >> 32 == hi >> 32:
                u0, u1 = max(u0, lo & U32), min(u1, hi & U32)
            g = (lo + _B31) >> 32
            if g == (hi + _B31) >> 32:
                g <<= 32
                s0, s1 = max(s0, lo - g), min(s1, hi - g)
        if u0 > u1 or s0 > s1:
            return None
        # u32 <-> s32
        if u0 >> 31 == u1 >> 31:
            x = -(1 << 32) if u0 >> 31 else 0
            s0, s1 = max(s0, u0 + x), min(s1, u1 + x)
        if s0 >= 0 or s1 < 0:
            u0, u1 = max(u0, s0 & U32), min(u1, s1 & U32)
        if u0 > u1 or s0 > s1:
            return None
        # back into the 64-bit ranges, where they stay inside one block
        umin, umax = _in_block(umin, umax, u0, u1, s0, s1)
        smin, smax = _in_block(smin, smax, u0, u1, s0, s1)
        if umin > umax or smin > smax:
            return None
        # known bits of the low half from the u32 range
        rv, rm = tnum_range(u0, u1)
        if (tv ^ rv) & ~(tm | rm) & U32:
            return None
        ntm = tm & (rm | (U64 ^ U32))
        ntv = (tv | (rv & ~rm)) & ~ntm & U64
        n = (umin, umax, smin, smax, ntv, ntm)
        if n == r:
            return r + (u0, u1, s0, s1)
        r = _sync64(n)
        if r is None:
            return None
    return r + (u0, u1, s0, s1)


def _in_block(lo, hi, u0, u1, s0, s1):
    """The 64-bit interval ``[lo, hi]`` narrowed by the 32-bit bounds of its values' low
    half, where it stays inside one 2**32 block (unsigned) or one block centred on a
    multiple of 2**32 (signed)."""
    if lo >> 32 == hi >> 32:
        h = lo >> 32 << 32
        lo, hi = max(lo, h + u0), min(hi, h + u1)
    g = (lo + _B31) >> 32
    if g == (hi + _B31) >> 32:
        g <<= 32
        lo, hi = max(lo, g + s0), min(hi, g + s1)
    return lo, hi


def _sync64(s):
    """Make the five 64-bit views consistent with each other; ``None`` if they are contradictory.

    The order mirrors what any sound reduction must do: bounds from known bits, signed
    from unsigned (and back) where an interval does not cross a sign boundary, then
    known bits from the bounds.  Two rounds reach a fixpoint in practice; a round that
    changes nothing ends early (the next would compute the same).  Written out with
    plain comparisons instead of helper calls: this runs for nearly every processed
    instruction (tests/bpf/verifier/test_verifier_speed.py checks it against the plain
    definition).
    """
    umin, umax, smin, smax, tv, tm = s[:6]
    if not tm:
        # a known value (the common case in unrolled and counted loops): the bounds must
        # contain it, and then they are it
        sv = tv - _W64 if tv >> 63 else tv
        if umin <= tv <= umax and smin <= sv <= smax:
            return (tv, tv, sv, sv, tv, 0)
        return None
    for _ in (0, 1):
        u0, u1, s0, s1, t0, t1 = umin, umax, smin, smax, tv, tm
        # bounds from tnum
        if tv > umin:
            umin = tv
        x = tv | tm
        if x < umax:
            umax = x
        x = (tv | (tm & SIGN64)) & U64
        if x >> 63:
            x -= _W64
        if x > smin:
            smin = x
        x = (tv | (tm & S64_MAX)) & U64
        if x >> 63:
            x -= _W64
        if x < smax:
            smax = x
        if umin > umax or smin > smax:
            return None
        # signed <-> unsigned
        if smin >= 0 or smax < 0:
            x = smin & U64
            if x > umin:
                umin = x
            x = smax & U64
            if x < umax:
                umax = x
        a = umin & U64
        if a >> 63:
            a -= _W64
        b = umax & U64
        if b >> 63:
            b -= _W64
        if a <= b:
            if a > smin:
                smin = a
            if b < smax:
                smax = b
        if umin > umax or smin > smax:
            return None
        # tnum from bounds (tnum_range inlined)
        bits = (umin ^ umax).bit_length()
        if bits > 63:
            rv, rm = 0, U64
        else:
            rm = (1 << bits) - 1
            rv = umin & ~rm & U64
        if (tv & ~rm & ~tm) != (rv & ~rm & ~tm):
            return None
        tm = tm & rm
        tv = (tv | rv) & ~tm & U64
        if umin == u0 and umax == u1 and smin == s0 and smax == s1 and tv == t0 and tm == t1:
            break
    if (tv & ~tm) != tv:
        return None
    return (umin, umax, smin, smax, tv, tm)


def contains(outer, inner) -> bool:
    """True if every value of ``inner`` is a value of ``outer`` (state pruning's test)."""
    return (outer[0] <= inner[0] and inner[1] <= outer[1] and outer[2] <= inner[2]
            and inner[3] <= outer[3] and tnum_in((outer[4], outer[5]), (inner[4], inner[5]))
            and outer[6] <= inner[6] and inner[7] <= outer[7] and outer[8] <= inner[8]
            and inner[9] <= outer[9])


def fits_u32(s) -> bool:
    """True if the scalar is known to be below 2**32."""
    return s[1] <= U32


def trunc32(s):
    """The low 32 bits of a scalar, as a scalar in [0, 2**32) (its 32-bit bounds kept)."""
    if s[1] <= U32:
        return s
    tv, tm = tnum_cast32((s[4], s[5]))
    return sync((0, U32, 0, U32, tv, tm) + s[6:10]) or _ANY_U32


def sext32(s):
    """A 32-bit value (in [0, 2**32)) read as a signed 32-bit number: its signed range
    is its s32 bounds, the upper half copies bit 31."""
    if s[1] <= S32_MAX:
        return s
    tv, tm = s[4] & U32, s[5] & U32
    upper = U64 ^ U32
    if tm & _B31:
        tm |= upper
    elif tv & _B31:
        tv |= upper
    return sync((0, U64, s[8], s[9], tv, tm) + s[6:10]) or srange(s[8], s[9])


def sext(s, bits: int):
    """Sign-extend the low ``bits`` bits (movsx, ldxs)."""
    half = 1 << (bits - 1)
    full = (1 << bits) - 1
    if is_const(s):
        v = s[4] & full
        return const(v - (1 << bits) if v & half else v)
    if s[1] < half:
        return s
    if bits == 32:
        return sext32(trunc32(s))
    return srange(-half, half - 1)


def wrap32(s):
    """Result of a 32-bit ALU op: the low 32 bits, zero-extended (their 32-bit bounds
    are the result's)."""
    if s is None:
        return _ANY_U32
    if s[0] >= 0 and s[1] <= U32 and s[2] >= 0:
        return s
    tv, tm = tnum_cast32((s[4], s[5]))
    return sync((0, U32, 0, U32, tv, tm) + s[6:10]) or _ANY_U32


def with_bounds32(s, u0: int, u1: int, s0: int, s1: int):
    """``s`` whose low 32 bits are also known to lie in ``[u0, u1]`` (unsigned) and
    ``[s0, s1]`` (signed); ``s`` itself if that contradicts it."""
    r = sync(s[:6] + (max(s[6], u0), min(s[7], u1), max(s[8], s0), min(s[9], s1)))
    return s if r is None else r


def bounds32_add_sub(a, b, sub: bool):
    """The 32-bit bounds ``(u32min, u32max, s32min, s32max)`` of ``a + b`` (``a - b`` if
    ``sub``) on 32-bit values, from the operands' 32-bit bounds: the kernel's
    scalar32_min_max_add/sub (an interval that may wrap becomes unknown)."""
    if sub:
        if a[6] >= b[7]:
            u0, u1 = a[6] - b[7], a[7] - b[6]
        else:
            u0, u1 = 0, U32
        s0, s1 = a[8] - b[9], a[9] - b[8]
    else:
        u0, u1 = a[6] + b[6], a[7] + b[7]
        if u1 > U32:
            u0, u1 = 0, U32
        s0, s1 = a[8] + b[8], a[9] + b[9]
    if s0 < S32_MIN or s1 > S32_MAX:
        s0, s1 = S32_MIN, S32_MAX
    return u0, u1, s0, s1


_ANY_U32 = sync((0, U32, 0, U32, 0, U32))


def _or_unknown(s):
    r = sync(s)
    return UNKNOWN if r is None else r


# ---------------------------------------------------------------- ALU


def alu_add(a, b):
    """The scalar ``a + b`` (64-bit, wrapping)."""
    t = tnum_add((a[4], a[5]), (b[4], b[5]))
    umin, umax = a[0] + b[0], a[1] + b[1]
    if umax > U64:
        umin, umax = 0, U64
    smin, smax = a[2] + b[2], a[3] + b[3]
    if smin < S64_MIN or smax > S64_MAX:
        smin, smax = S64_MIN, S64_MAX
    return _or_unknown((umin, umax, smin, smax, t[0], t[1]))


def add_const32(a, k: int):
    """The low 32 bits of ``a + k``, zero-extended (``k`` a signed constant): what a
    32-bit delta link makes of a partner's value.  Exact when the low 32 bits of ``a``
    move without crossing 2**32 as unsigned or without crossing the s32 limits as
    signed numbers (the kernel's scalar32_min_max_add + zext_32_to_64)."""
    lo32 = trunc32(a)
    v = wrap32(alu_add(lo32, const(k & U64)))
    d = k & U32
    ulo, uhi = lo32[0] + d, lo32[1] + d
    if ulo >> 32 == uhi >> 32:
        v = _meet(v, ulo & U32, uhi & U32) or v
    s32 = sext32(lo32)
    slo, shi = s32[2] + k, s32[3] + k
    if S32_MIN <= slo and shi <= S32_MAX and (slo >= 0 or shi < 0):
        v = _meet(v, slo & U32, shi & U32) or v
    return v


def alu_sub(a, b):
    """The scalar ``a - b`` (64-bit, wrapping)."""
    t = tnum_sub((a[4], a[5]), (b[4], b[5]))
    if a[0] >= b[1]:
        umin, umax = a[0] - b[1], a[1] - b[0]
    else:
        umin, umax = 0, U64
    smin, smax = a[2] - b[3], a[3] - b[2]
    if smin < S64_MIN or smax > S64_MAX:
        smin, smax = S64_MIN, S64_MAX
    return _or_unknown((umin, umax, smin, smax, t[0], t[1]))


def alu_mul(a, b):
    """The scalar ``a * b`` (64-bit, wrapping)."""
    t = tnum_mul((a[4], a[5]), (b[4], b[5]))
    if a[1] <= U32 and b[1] <= U32:
        umin, umax = a[0] * b[0], a[1] * b[1]
    else:
        umin, umax = 0, U64
    return _or_unknown((umin, umax, S64_MIN, S64_MAX, t[0], t[1]))


def alu_div(a, b):
    """Unsigned division; BPF defines x / 0 == 0."""
    if is_const(a) and is_const(b):
        return const(a[4] // b[4] if b[4] else 0)
    if b[0] > 0:
        return urange(a[0] // b[1], a[1] // b[0])
    return urange(0, a[1])


def alu_mod(a, b):
    """Unsigned modulo; BPF defines x % 0 == x."""
    if is_const(a) and is_const(b):
        return const(a[4] % b[4] if b[4] else a[4])
    hi = a[1]
    if b[0] > 0:
        hi = min(hi, b[1] - 1)
    return urange(0, hi)


def alu_and(a, b):
    """The scalar ``a & b``."""
    t = tnum_and((a[4], a[5]), (b[4], b[5]))
    return _or_unknown((t[0], min(a[1], b[1]), S64_MIN, S64_MAX, t[0], t[1]))


def alu_or(a, b):
    """The scalar ``a | b``."""
    t = tnum_or((a[4], a[5]), (b[4], b[5]))
    return _or_unknown((max(a[0], b[0]), t[0] | t[1], S64_MIN, S64_MAX, t[0], t[1]))


def alu_xor(a, b):
    """The scalar ``a ^ b``."""
    t = tnum_xor((a[4], a[5]), (b[4], b[5]))
    return from_tnum(*t)


def alu_lsh(a, k: int, bits: int = 64):
    """The scalar ``a << k`` on ``bits``-bit values."""
    full = (1 << bits) - 1
    t = tnum_lshift((a[4], a[5]), k)
    t = (t[0] & full, t[1] & full)
    if (a[1] << k) <= full:
        return _or_unknown((a[0] << k, a[1] << k, S64_MIN, S64_MAX, t[0], t[1]))
    return _or_unknown((0, full, S64_MIN, S64_MAX, t[0], t[1]))


def alu_rsh(a, k: int):
    """The scalar ``a >> k`` (logical)."""
    t = tnum_rshift((a[4], a[5]), k)
    return _or_unknown((a[0] >> k, a[1] >> k, S64_MIN, S64_MAX, t[0], t[1]))


def alu_arsh(a, k: int):
    """Arithmetic shift right of a 64-bit value."""
    t = tnum_arshift((a[4], a[5]), k)
    return _or_unknown((0, U64, a[2] >> k, a[3] >> k, t[0], t[1]))


def alu_neg(a):
    """The scalar ``-a`` (64-bit, wrapping): ``0 - a``, as the kernel computes BPF_NEG
    (scalar_min_max_sub from a known 0 and tnum_neg), so the known bits survive
    (``-(x & 8)`` is 0 or -8: aligned for an 8-byte stack access)."""
    return alu_sub(const(0), a)


def bswap(a, bits: int):
    """The scalar after a byte swap of its low ``bits`` bits."""
    if is_const(a):
        v = a[4] & ((1 << bits) - 1)
        return const(int.from_bytes(v.to_bytes(bits // 8, "little"), "big"))
    return urange(0, (1 << bits) - 1)


def truncate(a, bits: int):
    """Zero-extend the low ``bits`` bits (le16/le32, narrow loads)."""
    if bits >= 64:
        return a
    full = (1 << bits) - 1
    if a[1] <= full:
        return a
    tv, tm = a[4] & full, a[5] & full
    keep = a[6:10] if bits == 32 else ()     # the low 32 bits themselves: their bounds hold
    return sync((0, full, 0, full, tv, tm) + keep) or urange(0, full)


# ---------------------------------------------------------------- comparisons

# Comparison codes (independent of opcodes): unsigned/signed <, <=, >, >=, ==, !=, &.
EQ, NE, GT, GE, LT, LE, SGT, SGE, SLT, SLE, SET = range(11)

_FLIP = {EQ: NE, NE: EQ, GT: LE, GE: LT, LT: GE, LE: GT, SGT: SLE, SGE: SLT, SLT: SGE, SLE: SGT}
_SWAP = {EQ: EQ, NE: NE, GT: LT, GE: LE, LT: GT, LE: GE, SGT: SLT, SGE: SLE, SLT: SGT, SLE: SGE}


def branch_taken(a, b, op: int):
    """True / False when ``a op b`` is decided for all values, None when either may happen."""
    if op == EQ:
        if is_const(a) and is_const(b):
            return a[4] == b[4]
        if a[1] < b[0] or b[1] < a[0] or a[3] < b[2] or b[3] < a[2]:
            return False
        if (a[4] ^ b[4]) & ~(a[5] | b[5]) & U64:
            return False
        return None
    if op == NE:
        r = branch_taken(a, b, EQ)
        return None if r is None else not r
    if op == GT:
        if a[0] > b[1]:
            return True
        if a[1] <= b[0]:
            return False
        return None
    if op == GE:
        if a[0] >= b[1]:
            return True
        if a[1] < b[0]:
            return False
        return None
    if op == LT:
        return branch_taken(b, a, GT)
    if op == LE:
        return branch_taken(b, a, GE)
    if op == SGT:
        if a[2] > b[3]:
            return True
        if a[3] <= b[2]:
            return False
        return None
    if op == SGE:
        if a[2] >= b[3]:
            return True
        if a[3] < b[2]:
            return False
        return None
    if op == SLT:
        return branch_taken(b, a, SGT)
    if op == SLE:
        return branch_taken(b, a, SGE)
    if op == SET:
        if a[5] and b[5]:
            # neither side constant: the kernel's is_scalar_branch_taken explores both,
            # and so do we (deciding it would accept programs 7.2 refuses)
            return None
        if (a[4] & b[4]) != 0:
            return True
        if ((a[4] | a[5]) & (b[4] | b[5])) == 0:
            return False
        return None
    raise ValueError(op)


def _meet(s, umin=0, umax=U64, smin=S64_MIN, smax=S64_MAX, tn=None):
    tv, tm = (s[4], s[5])
    if tn is not None:
        if (tv ^ tn[0]) & ~(tm | tn[1]) & U64:
            return None
        tv, tm = tnum_intersect((tv, tm), tn)
    return sync((max(s[0], umin), min(s[1], umax), max(s[2], smin), min(s[3], smax), tv, tm)
                + s[6:10])


def refine(a, b, op: int):
    """Narrow ``a`` and ``b`` assuming ``a op b`` holds.  Returns (a', b') or None if impossible."""
    if op == EQ:
        m = _meet(a, b[0], b[1], b[2], b[3], (b[4], b[5]))
        return None if m is None else (m, m)
    if op == NE:
        if is_const(b):
            a = _exclude(a, b[4])
            if a is None:
                return None
        if is_const(a):
            b = _exclude(b, a[4])
            if b is None:
                return None
        return a, b
    if op == GT:  # a > b
        if b[0] >= U64 or a[1] == 0:
            return None
        na = _meet(a, umin=b[0] + 1)
        nb = _meet(b, umax=a[1] - 1)
    elif op == GE:
        na = _meet(a, umin=b[0])
        nb = _meet(b, umax=a[1])
    elif op == LT:
        r = refine(b, a, GT)
        return None if r is None else (r[1], r[0])
    elif op == LE:
        r = refine(b, a, GE)
        return None if r is None else (r[1], r[0])
    elif op == SGT:
        if b[2] >= S64_MAX or a[3] == S64_MIN:
            return None
        na = _meet(a, smin=b[2] + 1)
        nb = _meet(b, smax=a[3] - 1)
    elif op == SGE:
        na = _meet(a, smin=b[2])
        nb = _meet(b, smax=a[3])
    elif op == SLT:
        r = refine(b, a, SGT)
        return None if r is None else (r[1], r[0])
    elif op == SLE:
        r = refine(b, a, SGE)
        return None if r is None else (r[1], r[0])
    elif op == SET:
        return a, b
    else:
        raise ValueError(op)
    if na is None or nb is None:
        return None
    return na, nb


def refine_not(a, b, op: int):
    """Narrow assuming ``a op b`` does NOT hold."""
    if op == SET:
        if is_const(b):  # a & b == 0: the bits of b are known zero in a
            tv, tm = a[4] & ~b[4] & U64, a[5] & ~b[4] & U64
            if a[4] & b[4] & ~a[5]:
                return None
            na = sync((a[0], a[1], a[2], a[3], tv, tm) + a[6:10])
            return None if na is None else (na, b)
        return a, b
    return refine(a, b, _FLIP[op])


def _exclude(s, v: int):
    """Remove a single value at the edge of a range (the only exclusion ranges can express)."""
    if is_const(s):
        return None if s[4] == v else s
    umin, umax, smin, smax = s[0], s[1], s[2], s[3]
    if umin == v:
        umin += 1
    if umax == v:
        umax -= 1
    sv = s64(v)
    if smin == sv:
        smin += 1
    if smax == sv:
        smax -= 1
    return sync((umin, umax, smin, smax, s[4], s[5]) + s[6:10])


def swap_op(op: int) -> int:
    """The jump opcode with its operands swapped (``a < b`` is ``b > a``)."""
    return _SWAP.get(op, op)


def fmt(s) -> str:
    """Kernel-style text: a constant prints as its value, otherwise the non-trivial bounds."""
    if is_const(s):
        return str(s64(s[4])) if s[4] & SIGN64 else str(s[4])
    parts = []
    umin, umax, smin, smax, tv, tm = s[:6]
    same_signed = smin == umin and smax == umax
    if not same_signed:
        if smin != S64_MIN:
            parts.append(f"smin={smin}")
        if smax != S64_MAX:
            parts.append(f"smax={smax}")
    if umin != 0:
        parts.append(f"umin={umin}")
    if umax != U64:
        parts.append(f"umax={umax}")
    if tm != U64 and (tv, tm) != tnum_range(umin, umax):
        parts.append(f"var_off=({tv:#x}; {tm:#x})")
    return "scalar(" + ",".join(parts) + ")"


def refine_low32(full, narrowed):
    """``full`` (64 bits) whose low 32 bits are known to lie in ``narrowed`` (a 32-bit
    view of them: zero-extended, or sign-extended for signed JMP32 compares): its 32-bit
    bounds and the known bits of its low half meet the view's, then ``sync`` carries
    them into the 64-bit ranges where the upper half allows it (the kernel's
    reg_bounds_sync after a JMP32 refinement).  Returns ``full`` unchanged when the
    views contradict each other (then the branch was infeasible anyway)."""
    tv, tm = narrowed[4] & U32, narrowed[5] & U32
    if (full[4] ^ tv) & ~(full[5] | tm) & U32:
        return full
    v, m = tnum_intersect((full[4], full[5]), (tv, tm | (U64 ^ U32)))
    out = sync((full[0], full[1], full[2], full[3], v, m, max(full[6], narrowed[6]),
                min(full[7], narrowed[7]), max(full[8], narrowed[8]), min(full[9], narrowed[9])))
    return full if out is None else out


def _sdiv64(x: int, c: int) -> int:
    """BPF's signed 64-bit division (truncates toward zero; S64_MIN / -1 wraps)."""
    if c == 0:
        return 0
    q = abs(x) // abs(c)
    q = q if (x < 0) == (c < 0) else -q
    return s64(q & U64)


def alu_sdiv_const(a, c: int):
    """``a s/ c`` for a constant ``c`` (signed 64-bit): monotonic in ``a`` between the
    signed bounds, except S64_MIN / -1, which wraps."""
    if c == 0:
        return const(0)
    if c == -1 and a[2] == S64_MIN:
        return UNKNOWN
    q1, q2 = _sdiv64(a[2], c), _sdiv64(a[3], c)
    return srange(min(q1, q2), max(q1, q2))


def alu_smod_const(a, c: int):
    """``a s% c`` for a constant ``c``: the result has the dividend's sign and a smaller
    magnitude than ``c`` (x s% 0 == x)."""
    if c == 0:
        return a
    m = abs(c) - 1
    if a[2] >= 0:
        return srange(0, min(a[3], m))
    if a[3] <= 0:
        return srange(max(a[2], -m), 0)
    return srange(-m, m)
