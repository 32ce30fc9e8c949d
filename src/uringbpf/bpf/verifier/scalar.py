"""Scalar value tracking for the verifier: known bits (tnum) plus 64- and 32-bit ranges.

A scalar is abstracted as ``(umin, umax, smin, smax, tnum)``: the unsigned and signed
64-bit intervals it lies in, and a *tnum* ``(value, mask)`` saying which bits are known
(bits in ``mask`` are unknown, the others equal the bits of ``value``).  Every transfer
function below over-approximates: the concrete result of an operation on any values
inside the inputs lies inside the output.  That is the whole soundness argument, and
the fuzz tests check it against real execution.

The low 32 bits (the subregister) have their own bounds, as in the kernel (#20): a scalar
is the 10-tuple ``(umin, umax, smin, smax, tv, tm, u32min, u32max, s32min, s32max)``.
The ranges follow Linux 7.2's domain (kernel/bpf/cnum.c): the 64-bit range and the
32-bit range are each ONE arc of the number circle, and the tuple holds the bounds read
off them (an arc across 2**64 has the whole unsigned range, one across 2**63 the whole
signed range).  ``sync`` is 7.2's reg_bounds_sync on (tnum, arc64, arc32), one pass, and
each ALU operation computes both arcs and the tnum as 7.2's scalar_min_max_* and
scalar32_min_max_* do.  A 32-bit operation *truncates* its operands (the low 32 bits,
their 32-bit arc kept), and ``wrap32`` zero-extends the result from its 32-bit arc (the
kernel's zext_32_to_64).  A 6-tuple given to ``sync`` gets unknown 32-bit bounds.

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
# The masks again, under the names the compiled core's declarations (scalar.pxd) make
# C constants: in a typed function U64 would be a Python object and turn every
# expression it appears in back into Python-int arithmetic.
_M64 = U64
_M32 = U32

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
        return (0, _M64)
    delta = (_M64 >> (64 - bits)) if bits else 0     # 2**bits - 1 (no shift by 64)
    return (lo & ~delta & _M64, delta)


def tnum_add(a, b):
    """Known bits of ``a + b`` (the kernel's tnum_add)."""
    av, am = a
    bv, bm = b
    sm = am + bm
    sv = av + bv
    sigma = sm + sv
    chi = sigma ^ sv
    mu = (chi | am | bm) & _M64
    return (sv & ~mu & _M64, mu)


def tnum_sub(a, b):
    """Known bits of ``a - b`` (the kernel's tnum_sub)."""
    av, am = a
    bv, bm = b
    dv = av - bv
    alpha = dv + am
    beta = dv - bm
    chi = alpha ^ beta
    mu = (chi | am | bm) & _M64
    return (dv & ~mu & _M64, mu)


def tnum_and(a, b):
    """Known bits of ``a & b``."""
    av, am = a
    bv, bm = b
    alpha = av | am
    beta = bv | bm
    v = av & bv
    return (v, alpha & beta & ~v & _M64)


def tnum_or(a, b):
    """Known bits of ``a | b``."""
    v = a[0] | b[0]
    mu = a[1] | b[1]
    return (v, mu & ~v & _M64)


def tnum_xor(a, b):
    """Known bits of ``a ^ b``."""
    v = a[0] ^ b[0]
    mu = a[1] | b[1]
    return (v & ~mu & _M64, mu)


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
    return (v & ~mu & _M64, mu)


def tnum_in(outer, inner) -> bool:
    """True if every value of ``inner`` is a value of ``outer``."""
    if inner[1] & ~outer[1]:
        return False
    return (inner[0] & ~outer[1]) == outer[0]


def tnum_cast32(a):
    """The low 32 bits of a tnum."""
    return (a[0] & U32, a[1] & U32)


# ---------------------------------------------------------------- circular ranges (7.2)

# Linux 7.2 keeps a scalar's 64-bit range and its low half's 32-bit range each as ONE arc
# of the number circle (kernel/bpf/cnum.c: `base`, `size`; the arc is base .. base+size,
# wrapping).  The unsigned and signed bounds are both read off that one arc, so a pair of
# intervals whose intersection has two pieces (an unsigned compare across 2**64 next to
# a signed range) is kept as the smaller of the two, as there.  Our tuples hold the
# bounds read off the arcs; _arc64/_arc32 turn them back into the arcs (exactly, for a
# tuple made here), and _bounds_sync is the kernel's reg_bounds_sync on the arcs.
# An arc is (base, size) with the width's mask ``m``; _EMPTY(m) is (m, m).


def _c_urange(lo, hi, m):
    """The arc of the unsigned interval [lo, hi] (empty when lo > hi)."""
    if lo > hi:
        return (m, m)
    return (lo, hi - lo)


def _c_srange(lo, hi, m):
    """The arc of the signed interval [lo, hi] (empty when lo > hi)."""
    if lo > hi:
        return (m, m)
    size = hi - lo
    return (0 if size == m else lo & m, size)


def _c_umin(c, m):
    return 0 if c[1] > m - c[0] else c[0]


def _c_umax(c, m):
    return m if c[1] > m - c[0] else c[0] + c[1]


def _c_contains(c, v, m):
    base, size = c
    if base == m and size == m:
        return False
    if size > m - base:
        return v >= base or v <= (base + size) & m
    return base <= v <= base + size


def _c_sbounds(c, m):
    """(smin, smax) of an arc: the whole signed range when it holds both signed ends."""
    half = (m >> 1) + 1
    if _c_contains(c, half - 1, m) and _c_contains(c, half, m):
        return (-half, half - 1)
    ulo = c[0]
    uhi = (c[0] + c[1]) & m
    lo = ulo - (m + 1) if ulo >= half else ulo
    hi = uhi - (m + 1) if uhi >= half else uhi
    return (lo, hi) if lo <= hi else (hi, lo)


def _c_intersect(a, b, m):
    """One arc holding every value of both arcs (the kernel's cnum_intersect: of two
    pieces, the smaller input)."""
    if (a[0] == m and a[1] == m) or (b[0] == m and b[1] == m):
        return (m, m)
    if a[0] > b[0]:
        a, b = b, a
    dbase = b[0] - a[0]
    if b[1] > m - dbase:
        if dbase <= a[1]:
            return a if a[1] <= b[1] else b
        return (a[0], min(a[1], (dbase + b[1]) & m))
    if a[1] >= dbase:
        return (b[0], min(a[1] - dbase, b[1]))
    return (m, m)


def _c_normalize(c, m):
    if c[1] == m and c[0] != 0 and c[0] != m >> 1:
        return (0, m)
    return c


def _c_add(a, b, m):
    """The arc of ``x + y`` for x, y on the two arcs (wrapping)."""
    if (a[0] == m and a[1] == m) or (b[0] == m and b[1] == m):
        return (m, m)
    if a[1] > m - b[1]:
        return (0, m)
    return _c_normalize(((a[0] + b[0]) & m, a[1] + b[1]), m)


def _c_negate(a, m):
    if a[0] == m and a[1] == m:
        return a
    return _c_normalize((-(a[0] + a[1]) & m, a[1]), m)


def _c32_from_c64(c):
    """The arc of the low halves of a 64-bit arc."""
    if c[0] == _M64 and c[1] == _M64:
        return (_M32, _M32)
    if c[1] >= _M32:
        return (0, _M32)
    return (c[0] & _M32, c[1])


def _c64_c32_intersect(a, b):
    """The 64-bit arc ``a`` cut to the values whose low half lies on the 32-bit arc ``b``
    (kernel/bpf/cnum.c cnum64_cnum32_intersect: only its two ends move)."""
    if (a[0] == _M64 and a[1] == _M64) or (b[0] == _M32 and b[1] == _M32):
        return (_M64, _M64)
    b1base = (b[0] - a[0]) & _M32
    b1size = b[1]
    asz = a[1] & _M32
    base, size = a
    if b1size > _M32 - b1base:
        b1max = (b1base + b1size) & _M32
        if b1max < asz < b1base:
            size -= asz - b1max
        return (base, size)
    if size < b1base:
        return (_M64, _M64)
    base = (base + b1base) & _M64
    size -= b1base
    b1max = b1base + b1size
    d = 0
    if asz < b1base:
        d = asz + (_M32 + 1) - b1max
    elif asz >= b1max:
        d = asz - b1max
    if size < d:
        return (_M64, _M64)
    return (base, size - d)


def _c_from_tnum(tv, tm, m):
    """The arc of a tnum's values: signed from its extremes when the sign bit may be set."""
    half = (m >> 1) + 1
    if (tm | tv) & half:
        lo = tv | (tm & half)
        hi = tv | (tm & (half - 1))
        return _c_srange(lo - (m + 1), hi - (m + 1) if hi >= half else hi, m)
    return (tv, tm)


def tnum_step(tv: int, tm: int, z: int) -> int:
    """The smallest value of the tnum above ``z`` (its largest value if none is)."""
    tmax = tv | tm
    if z >= tmax:
        return tmax
    if z < tv:
        return tv
    y = z + 1
    diff = (y ^ tv) & ~tm & _M64
    if not diff:
        return y
    h = diff.bit_length() - 1
    # masks of the low h+1 and p+1 bits as shifts of _M64 (h, p <= 63: no shift by 64)
    low = _M64 >> (63 - h)
    if tv >> h & 1:
        return (y & ~low & _M64) | (tv & low)
    free = tm & ~y & ~low & _M64
    p = (free & -free & _M64).bit_length() - 1
    lowp = _M64 >> (63 - p)
    return (y & ~lowp & _M64) | (lowp ^ (lowp >> 1)) | (tv & (lowp >> 1))


def _arc64(s):
    """The 64-bit arc of a scalar tuple."""
    return _c_intersect(_c_urange(s[0], s[1], _M64), _c_srange(s[2], s[3], _M64), _M64)


def _arc32(s):
    """The 32-bit arc of a scalar tuple's low half."""
    if len(s) == 6:
        return (0, _M32)
    return _c_intersect(_c_urange(s[6], s[7], _M32), _c_srange(s[8], s[9], _M32), _M32)


def _update64(c64, tv, tm, c32):
    """__update_reg64_bounds: the arc cut by the tnum, and a constant where the range and
    the tnum share one value."""
    c64 = _c_intersect(c64, _c_from_tnum(tv, tm, _M64), _M64)
    if c64[0] == _M64 and c64[1] == _M64:
        return c64, tv, tm, c32
    umin, umax = _c_umin(c64, _M64), _c_umax(c64, _M64)
    nxt = tnum_step(tv, tm, umin)
    if (umin & ~tm) == tv:           # umin is a value of the tnum
        single = nxt > umax
        v = umin
    else:
        single = nxt == tv | tm or (nxt <= umax and tnum_step(tv, tm, nxt) > umax)
        v = nxt
    if not single:
        return c64, tv, tm, c32
    return (v, 0), v, 0, (v & _M32, 0)


def _bounds_sync(c64, tv, tm, c32):
    """The kernel's reg_bounds_sync on (tnum, 64-bit arc, 32-bit arc), as a scalar tuple;
    None when a range is empty (an impossible branch).  One pass, as there (not a
    fixpoint: what the kernel does not learn, we do not either)."""
    if (c64[0] == _M64 and c64[1] == _M64) or (c32[0] == _M32 and c32[1] == _M32):
        return None
    if tm:
        # __update_reg_bounds
        c32 = _c_intersect(c32, _c_from_tnum(tv & _M32, tm & _M32, _M32), _M32)
        c64, tv, tm, c32 = _update64(c64, tv, tm, c32)
        # __reg_deduce_bounds, twice
        c32 = _c_intersect(c32, _c32_from_c64(c64), _M32)
        c64 = _c64_c32_intersect(c64, c32)
        c32 = _c_intersect(c32, _c32_from_c64(c64), _M32)
        c64 = _c64_c32_intersect(c64, c32)
        if (c64[0] == _M64 and c64[1] == _M64) or (c32[0] == _M32 and c32[1] == _M32):
            return None
        # __reg_bound_offset
        rv, rm = tnum_range(_c_umin(c64, _M64), _c_umax(c64, _M64))
        v64, m64 = tnum_intersect((tv, tm), (rv, rm))
        rv, rm = tnum_range(_c_umin(c32, _M32), _c_umax(c32, _M32))
        v32, m32 = tnum_intersect((v64 & _M32, m64 & _M32), (rv, rm))
        tm = (m64 & ~_M32 & _M64) | m32
        tv = ((v64 & ~_M32 & _M64) | v32) & ~tm & _M64
        # __update_reg_bounds
        c32 = _c_intersect(c32, _c_from_tnum(tv & _M32, tm & _M32, _M32), _M32)
        c64, tv, tm, c32 = _update64(c64, tv, tm, c32)
        if (c64[0] == _M64 and c64[1] == _M64) or (c32[0] == _M32 and c32[1] == _M32):
            return None
    if not tm:
        if _c_contains(c64, tv, _M64) and _c_contains(c32, tv & _M32, _M32):
            return exact(tv)
        return None
    smin, smax = _c_sbounds(c64, _M64)
    s0, s1 = _c_sbounds(c32, _M32)
    return (_c_umin(c64, _M64), _c_umax(c64, _M64), smin, smax, tv, tm,
            _c_umin(c32, _M32), _c_umax(c32, _M32), s0, s1)


def _pack(c64, t, c32):
    """A scalar from its two arcs and tnum (synced); unknown when they contradict."""
    r = _bounds_sync(c64, t[0], t[1], c32)
    return UNKNOWN if r is None else r


# ---------------------------------------------------------------- ranges


def exact(v: int):
    """The scalar that is exactly ``v``."""
    v &= U64
    lo = v & U32
    sl = lo - (1 << 32) if lo >> 31 else lo
    sv = v - _W64 if v & SIGN64 else v
    return (v, v, sv, sv, v, 0, lo, lo, sl, sl)


#: :func:`exact` by its short name, for Python callers (``const`` is a keyword of
#: Cython's declarations, so the compiled modules call ``exact``: a C call)
const = exact


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
    """Make the views consistent with each other, as the kernel's reg_bounds_sync does
    (7.2: on one 64-bit and one 32-bit arc, see _bounds_sync); ``None`` if they are
    contradictory.  A 6-tuple has unknown 32-bit bounds."""
    return _bounds_sync(_arc64(s), s[4], s[5], _arc32(s))


def contains(outer, inner) -> bool:
    """True if every value of ``inner`` is a value of ``outer`` (state pruning's test):
    known bits, and each range arc inside the other's (7.2's range_within on cnums;
    two tuples read off arcs may trade an unsigned bound for a signed one)."""
    if not tnum_in((outer[4], outer[5]), (inner[4], inner[5])):
        return False
    if (outer[0] <= inner[0] and inner[1] <= outer[1] and outer[2] <= inner[2]
            and inner[3] <= outer[3] and outer[6] <= inner[6] and inner[7] <= outer[7]
            and outer[8] <= inner[8] and inner[9] <= outer[9]):
        return True
    return (_c_subset(_arc64(outer), _arc64(inner), _M64)
            and _c_subset(_arc32(outer), _arc32(inner), _M32))


def _c_subset(big, small, m):
    """Every value of the arc ``small`` lies on the arc ``big``."""
    if small[0] == m and small[1] == m:
        return True
    if big[0] == m and big[1] == m:
        return False
    base = (small[0] - big[0]) & m
    if small[1] > m - base and big[1] < m:
        return False
    return base <= big[1] and small[1] <= big[1] - base     # base + size <= big's size


def fits_u32(s) -> bool:
    """True if the scalar is known to be below 2**32."""
    return s[1] <= U32


def _zext(c32, tv, tm):
    """A zero-extended 32-bit value (the kernel's zext_32_to_64): its 32-bit arc, the low
    half of its tnum, and the 64-bit range of those zero-extended."""
    c32 = _c_intersect(c32, _c_from_tnum(tv & _M32, tm & _M32, _M32), _M32)
    if c32[0] == _M32 and c32[1] == _M32:
        return _ANY_U32
    c64 = (_c_umin(c32, _M32), _c_umax(c32, _M32) - _c_umin(c32, _M32))
    r = _bounds_sync(c64, tv & _M32, tm & _M32, c32)
    return _ANY_U32 if r is None else r


def trunc32(s):
    """The low 32 bits of a scalar, as a scalar in [0, 2**32) (its 32-bit bounds kept)."""
    if s[1] <= U32 and s[0] == s[6] and s[1] == s[7]:
        return s
    return _zext(_arc32(s), s[4], s[5])


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
    """Sign-extend the low ``bits`` bits (movsx, ldxs), as the kernel's
    coerce_reg_to_size_sx: from the signed 64-bit bounds, kept only when their upper bits
    agree and the sign-extended ends have one sign; otherwise the whole signed
    ``bits``-bit range (the known low half of a value whose upper half is unknown is
    lost, as there)."""
    half = 1 << (bits - 1)
    full = (1 << bits) - 1
    if is_const(s):
        v = s[4] & full
        return exact(v - (1 << bits) if v & half else v)
    if s[1] < half:
        return s
    if (s[2] & U64) >> bits == (s[3] & U64) >> bits:
        lo, hi = s[2] & full, s[3] & full
        lo = lo - (1 << bits) if lo & half else lo
        hi = hi - (1 << bits) if hi & half else hi
        lo, hi = min(lo, hi), max(lo, hi)
        if (lo >= 0) == (hi >= 0):
            return srange(lo, hi)
    return srange(-half, half - 1)


def wrap32(s):
    """Result of a 32-bit ALU op: the low 32 bits, zero-extended, keeping their 32-bit
    bounds (the kernel's zext_32_to_64: the 64-bit range comes from the 32-bit one)."""
    if s is None:
        return _ANY_U32
    return trunc32(s)


def with_bounds32(s, u0: int, u1: int, s0: int, s1: int):
    """``s`` whose low 32 bits are also known to lie in ``[u0, u1]`` (unsigned) and
    ``[s0, s1]`` (signed); ``s`` itself if that contradicts it."""
    c32 = _c_intersect(_arc32(s), _c_intersect(_c_urange(u0, u1, _M32),
                                               _c_srange(s0, s1, _M32), _M32), _M32)
    r = _bounds_sync(_arc64(s), s[4], s[5], c32)
    return s if r is None else r


_ANY_U32 = (0, U32, 0, U32, 0, U32, 0, U32, S32_MIN, S32_MAX)


def _or_unknown(s):
    r = sync(s)
    return UNKNOWN if r is None else r


# ---------------------------------------------------------------- ALU
# Each operation computes the 64-bit arc, the 32-bit arc and the tnum of its result as
# the kernel's scalar_min_max_* / scalar32_min_max_* do (7.2, adjust_scalar_min_max_vals),
# then syncs them.  A 32-bit operation gets its operands' low halves (trunc32: their
# 32-bit arcs kept) and wrap32 zero-extends the result from its 32-bit arc, so the
# kernel's 32-bit rule is the one that counts there.


def _arcs_add(a, b, sub: bool):
    a64, a32, b64, b32 = _arc64(a), _arc32(a), _arc64(b), _arc32(b)
    if sub:
        b64, b32 = _c_negate(b64, _M64), _c_negate(b32, _M32)
    return _c_add(a64, b64, _M64), _c_add(a32, b32, _M32)


def alu_add(a, b):
    """The scalar ``a + b`` (64-bit, wrapping; 32-bit bounds of the low halves' sum)."""
    c64, c32 = _arcs_add(a, b, False)
    return _pack(c64, tnum_add((a[4], a[5]), (b[4], b[5])), c32)


def add_const32(a, k: int):
    """The low 32 bits of ``a + k``, zero-extended (``k`` a signed constant): what a
    32-bit delta link makes of a partner's value (the kernel's sync_linked_regs:
    scalar_min_max_add of the delta, then zext_32_to_64)."""
    return wrap32(alu_add(a, exact(k & U64)))


def alu_sub(a, b):
    """The scalar ``a - b`` (64-bit, wrapping)."""
    c64, c32 = _arcs_add(a, b, True)
    return _pack(c64, tnum_sub((a[4], a[5]), (b[4], b[5])), c32)


def _mul_arc(au0, au1, as0, as1, bu0, bu1, bs0, bs1, m):
    """scalar_min_max_mul's range for one width: unsigned and signed products of the
    bounds, each unknown when it may overflow, as one arc."""
    half = (m >> 1) + 1
    u0, u1 = au0 * bu0, au1 * bu1
    if u1 > m:
        u0, u1 = 0, m
    p = (as0 * bs0, as0 * bs1, as1 * bs0, as1 * bs1)
    s0, s1 = min(p), max(p)
    if s0 < -half or s1 >= half:
        s0, s1 = -half, half - 1
    return _c_intersect(_c_urange(u0, u1, m), _c_srange(s0, s1, m), m)


def alu_mul(a, b):
    """The scalar ``a * b`` (64-bit, wrapping)."""
    t = tnum_mul((a[4], a[5]), (b[4], b[5]))
    c64 = _mul_arc(a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3], U64)
    c32 = _mul_arc(a[6], a[7], a[8], a[9], b[6], b[7], b[8], b[9], U32)
    return _pack(c64, t, c32)


def alu_div(a, b):
    """Unsigned division; BPF defines x / 0 == 0.  The kernel bounds it only for a
    constant divisor (anything else is unknown)."""
    if not is_const(b):
        return UNKNOWN
    c = b[4]
    if c == 0:
        return exact(0)
    if is_const(a):
        return exact(a[4] // c)
    return urange(a[0] // c, a[1] // c)


def alu_mod(a, b):
    """Unsigned modulo; BPF defines x % 0 == x.  Bounded for a constant divisor only."""
    if not is_const(b):
        return UNKNOWN
    c = b[4]
    if c == 0:
        return a
    if is_const(a):
        return exact(a[4] % c)
    if a[1] <= c - 1:
        return a
    return urange(0, min(a[1], c - 1))


def alu_and(a, b):
    """The scalar ``a & b``: minimum from the known bits, maximum the smaller maximum."""
    tv, tm = tnum_and((a[4], a[5]), (b[4], b[5]))
    if not tm:
        return exact(tv)
    c64 = _c_urange(tv, min(a[1], b[1]), _M64)
    c32 = _c_urange(tv & _M32, min(a[7], b[7]), _M32)
    if not (tm & _M32):
        c32 = (tv & _M32, 0)
    return _pack(c64, (tv, tm), c32)


def alu_or(a, b):
    """The scalar ``a | b``: minimum the larger minimum, maximum from the known bits."""
    tv, tm = tnum_or((a[4], a[5]), (b[4], b[5]))
    if not tm:
        return exact(tv)
    c64 = _c_urange(max(a[0], b[0]), tv | tm, _M64)
    c32 = _c_urange(max(a[6], b[6]), (tv | tm) & _M32, _M32)
    if not (tm & _M32):
        c32 = (tv & _M32, 0)
    return _pack(c64, (tv, tm), c32)


def alu_xor(a, b):
    """The scalar ``a ^ b`` (bounds from the known bits)."""
    tv, tm = tnum_xor((a[4], a[5]), (b[4], b[5]))
    if not tm:
        return exact(tv)
    return _pack((tv, tm), (tv, tm), (tv & _M32, tm & _M32))


def alu_lsh(a, k: int, bits: int = 64):
    """The scalar ``a << k`` on ``bits``-bit values."""
    if k > 31 or a[7] > 1 << (31 - k):
        c32 = (0, U32)
    else:
        c32 = _c_urange(a[6] << k, a[7] << k, U32)
    if bits == 32:
        tv, tm = ((a[4] << k) & U32, (a[5] << k) & U32)
        return _pack((0, U64), (tv, tm), c32)
    if k == 32:
        s = _c_srange(a[8] << 32, a[9] << 32, U64)
    else:
        s = (0, U64)
    if a[1] > 1 << (63 - k):
        u = (0, U64)
    else:
        u = _c_urange(a[0] << k, a[1] << k, U64)
    return _pack(_c_intersect(u, s, U64), tnum_lshift((a[4], a[5]), k), c32)


def alu_rsh(a, k: int):
    """The scalar ``a >> k`` (logical)."""
    return _pack(_c_urange(a[0] >> k, a[1] >> k, U64), tnum_rshift((a[4], a[5]), k), (0, U32))


def alu_arsh(a, k: int):
    """Arithmetic shift right of a 64-bit value."""
    return _pack(_c_srange(a[2] >> k, a[3] >> k, U64), tnum_arshift((a[4], a[5]), k),
                 (0, U32))


def alu_neg(a):
    """The scalar ``-a`` (64-bit, wrapping): ``0 - a``, as the kernel computes BPF_NEG
    (scalar_min_max_sub from a known 0 and tnum_neg), so the known bits survive
    (``-(x & 8)`` is 0 or -8: aligned for an 8-byte stack access)."""
    return alu_sub(exact(0), a)


def bswap(a, bits: int):
    """The scalar after a byte swap of its low ``bits`` bits (upper bits cleared): the
    known bits move with their bytes and the ranges come from them, as the kernel's
    tnum_bswap16/32/64 then __mark_reg_unbounded."""
    if is_const(a):
        v = a[4] & ((1 << bits) - 1)
        return exact(int.from_bytes(v.to_bytes(bits // 8, "little"), "big"))
    n = bits // 8
    full = (1 << bits) - 1
    tv = int.from_bytes((a[4] & full).to_bytes(n, "little"), "big")
    tm = int.from_bytes((a[5] & full).to_bytes(n, "little"), "big")
    return from_tnum(tv, tm)


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


def refine(a, b, op: int, is32: bool = False):
    """Narrow ``a`` and ``b`` assuming ``a op b`` holds (the kernel's regs_refine_cond_op
    then reg_bounds_sync, 7.2).  Returns (a', b') or None if impossible.  ``is32``: ``a``
    and ``b`` are the 32-bit views of a JMP32 compare (transfer.scalar_cond), whose
    32-bit arcs the kernel narrows directly, before they meet the known bits."""
    if op == EQ:
        if (a[4] ^ b[4]) & ~(a[5] | b[5]) & U64:
            return None
        tv, tm = tnum_intersect((a[4], a[5]), (b[4], b[5]))
        m = _bounds_sync(_c_intersect(_arc64(a), _arc64(b), _M64), tv, tm,
                         _c_intersect(_arc32(a), _arc32(b), _M32))
        return None if m is None else (m, m)
    if op == NE:
        if is_const(b):
            a = _exclude(a, b[4], is32)
            if a is None:
                return None
        elif is_const(a):
            b = _exclude(b, a[4], is32)
            if b is None:
                return None
        return a, b
    if op == SET:
        return _set_sides(_set_true, a, b)
    if op in (GT, GE, SGT, SGE):
        r = refine(b, a, _SWAP[op], is32)
        return None if r is None else (r[1], r[0])
    a64, b64 = _arc64(a), _arc64(b)
    if op == LE:
        a64 = _c_intersect(a64, _c_urange(0, _c_umax(b64, _M64), _M64), _M64)
        b64 = _c_intersect(b64, _c_urange(_c_umin(a64, _M64), _M64, _M64), _M64)
    elif op == LT:
        hi = _c_umax(b64, _M64)
        if hi == 0:
            return None
        a64 = _c_intersect(a64, _c_urange(0, hi - 1, _M64), _M64)
        lo = _c_umin(a64, _M64)
        if lo == _M64:
            return None
        b64 = _c_intersect(b64, _c_urange(lo + 1, _M64, _M64), _M64)
    elif op == SLE:
        a64 = _c_intersect(a64, _c_srange(S64_MIN, _c_sbounds(b64, _M64)[1], _M64), _M64)
        b64 = _c_intersect(b64, _c_srange(_c_sbounds(a64, _M64)[0], S64_MAX, _M64), _M64)
    elif op == SLT:
        shi = _c_sbounds(b64, _M64)[1]
        if shi == S64_MIN:
            return None
        a64 = _c_intersect(a64, _c_srange(S64_MIN, shi - 1, _M64), _M64)
        slo = _c_sbounds(a64, _M64)[0]
        if slo == S64_MAX:
            return None
        b64 = _c_intersect(b64, _c_srange(slo + 1, S64_MAX, _M64), _M64)
    else:
        raise ValueError(op)
    a32, b32 = _arc32(a), _arc32(b)
    if is32:
        # a view's 64-bit arc lies in one 32-bit window: the same cut of its 32-bit arc
        a32 = _c_intersect(a32, _c32_from_c64(a64), _M32)
        b32 = _c_intersect(b32, _c32_from_c64(b64), _M32)
    na = _bounds_sync(a64, a[4], a[5], a32)
    nb = _bounds_sync(b64, b[4], b[5], b32)
    if na is None or nb is None:
        return None
    return na, nb


def refine_not(a, b, op: int, is32: bool = False):
    """Narrow assuming ``a op b`` does NOT hold (``is32``: as for refine)."""
    if op == SET:
        return _set_sides(_set_false, a, b)
    return refine(a, b, _FLIP[op], is32)


def _set_sides(fn, a, b):
    """``fn(a, b)`` for a `&` test, the constant operand second (the kernel swaps the
    operands when only the first is constant); both unchanged when neither is."""
    if is_const(b):
        return fn(a, b)
    if not is_const(a):
        return a, b
    r = fn(b, a)
    return None if r is None else (r[1], r[0])


def _set_true(a, b):
    """``a & b != 0`` for a constant ``b``: a bit is learnt only from a one-bit constant."""
    v = b[4]
    if v and not v & (v - 1):
        na = sync(a[:4] + tnum_or((a[4], a[5]), (v, 0)) + a[6:10])
        return None if na is None else (na, b)
    return a, b


def _set_false(a, b):
    """``a & b == 0`` for a constant ``b``: the bits of b are known zero in a; the kernel
    forgets a's ranges first (they may contradict the new tnum on a dead branch) and
    re-derives them."""
    if a[4] & b[4] & ~a[5]:
        return None
    na = sync((0, U64, S64_MIN, S64_MAX, a[4] & ~b[4] & U64, a[5] & ~b[4] & U64) + _ANY32)
    return None if na is None else (na, b)


def _exclude(s, v: int, is32: bool = False):
    """``s`` without the value ``v``: the arc cut by its complement (only a value at an
    end of the arc goes, as in the kernel's JNE; for a JMP32 view its 32-bit arc is cut,
    which may wrap where the view's 64-bit arc does not)."""
    if is_const(s):
        return None if s[4] == v else s
    c64 = _c_intersect(_arc64(s), ((v + 1) & U64, U64 - 1), U64)
    c32 = _arc32(s)
    if is32:
        c32 = _c_intersect(c32, ((v + 1) & U32, U32 - 1), U32)
    return _bounds_sync(c64, s[4], s[5], c32)


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
    arc and the known bits of its low half meet the view's, then the kernel's
    reg_bounds_sync carries them into the 64-bit arc where the upper half allows it.
    Returns ``full`` unchanged when the views contradict each other (then the branch
    was infeasible anyway)."""
    tv, tm = narrowed[4] & U32, narrowed[5] & U32
    if (full[4] ^ tv) & ~(full[5] | tm) & U32:
        return full
    if (not _c_subset(_arc32(full), _arc32(narrowed), U32)
            and narrowed == sync((0, U64, S64_MIN, S64_MAX) + narrowed[4:6] + _ANY32)):
        # a view wider than the value, with only the ranges of its known bits: the
        # false side of `if w & K` (refine_not), where the kernel forgets the register's
        # ranges (64- and 32-bit) and keeps only its known bits
        out = sync((0, U64, S64_MIN, S64_MAX, (full[4] & ~U32 & U64) | tv,
                    (full[5] & ~U32 & U64) | tm) + _ANY32)
        return full if out is None else out
    # the range first, as the kernel's compares refine only the 32-bit range (the tnum
    # learns from it in reg_bounds_sync, after the 64-bit arc did); the view's known
    # bits then add what only EQ and JSET teach
    out = _bounds_sync(_arc64(full), full[4], full[5],
                       _c_intersect(_arc32(full), _arc32(narrowed), U32))
    if out is None:
        return full
    v, m = tnum_intersect((out[4], out[5]), (tv, tm | (U64 ^ U32)))
    if (v, m) != (out[4], out[5]):
        out = _bounds_sync(_arc64(out), v, m, _arc32(out)) or out
    return out


def _sdiv64(x: int, c: int) -> int:
    """BPF's signed 64-bit division (truncates toward zero; S64_MIN / -1 wraps)."""
    if c == 0:
        return 0
    q = abs(x) // abs(c)
    q = q if (x < 0) == (c < 0) else -q
    return s64(q & U64)


def alu_sdiv_const(a, c: int):
    """``a s/ c`` for a constant ``c`` (signed 64-bit): monotonic in ``a`` between the
    signed bounds, except S64_MIN / -1, which wraps (the kernel's scalar_min_max_sdiv)."""
    if c == 0:
        return exact(0)
    if c == -1 and a[2] == S64_MIN:
        return exact(S64_MIN & U64) if a[3] == S64_MIN else UNKNOWN
    q1, q2 = _sdiv64(a[2], c), _sdiv64(a[3], c)
    return srange(min(q1, q2), max(q1, q2))


def alu_smod_const(a, c: int):
    """``a s% c`` for a constant ``c``: the result has the dividend's sign and a smaller
    magnitude than ``c`` (x s% 0 == x; a dividend already in range is kept whole, as in
    the kernel's scalar_min_max_smod)."""
    if c == 0:
        return a
    m = abs(c) - 1
    if a[2] >= -m and a[3] <= m:
        return a
    if a[2] >= 0:
        return srange(0, min(a[3], m))
    if a[3] <= 0:
        return srange(max(a[2], -m), 0)
    return srange(-m, m)
