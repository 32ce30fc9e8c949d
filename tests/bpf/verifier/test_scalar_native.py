"""The compiled scalar domain computes in C integers (#19: scalar.pxd types the arcs,
tnums and sync as u64/i64); it must give exactly what the pure-Python source gives with
Python ints, for every operation, including the values where 64-bit arithmetic wraps
(sums past 2**64, shifts by 63, the signed ends, arcs across 0 and across 2**63).

Both modules are loaded side by side from the same source tree: ``scalar.py`` as plain
Python and the built extension from ``_compiled/``.  The test fails, naming the state,
when the compiled core is missing or stale (``make core``; ``make test`` builds it).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import pathlib
import random

import pytest

from uringbpf.bpf.verifier import core

SRC = pathlib.Path(core.__file__).resolve().parent
U64 = (1 << 64) - 1
U32 = (1 << 32) - 1

# values next to every boundary the domain treats specially
EDGES = sorted({v & U64 for base in (0, 1 << 31, 1 << 32, 1 << 63, 1 << 64)
                for v in (base - 2, base - 1, base, base + 1, base + 2)} | {7, 8, 255, 4096})


def _load(name: str, path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def both():
    state = core.build_state(SRC)
    assert state == core.COMPILED, f"the compiled core is not usable here: {state}"
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    native = _load("uringbpf.bpf.verifier.scalar", SRC / core.COMPILED_DIR / f"scalar{suffix}")
    pure = _load("_scalar_pure_source", SRC / "scalar.py")
    assert native.__file__.endswith(suffix) and pure.__file__.endswith(".py")
    return pure, native


def _value(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.4:
        return rng.choice(EDGES)
    if r < 0.6:
        return rng.getrandbits(rng.choice((4, 8, 31, 32, 33, 63, 64)))
    return (rng.choice(EDGES) + rng.randint(-300, 300)) & U64


def _scalar(rng: random.Random, sc, depth: int = 0):
    """A random scalar built with the (pure) domain's own constructors and operations,
    so wrapping arcs, one-sided signed ranges and partial tnums all occur."""
    kind = rng.randrange(7 if depth < 2 else 5)
    if kind == 0:
        return sc.exact(_value(rng))
    if kind == 1:
        lo, hi = sorted((_value(rng), _value(rng)))
        return sc.urange(lo, hi)
    if kind == 2:
        lo, hi = sorted((sc.s64(_value(rng)), sc.s64(_value(rng))))
        return sc.srange(lo, hi)
    if kind == 3:
        tm = _value(rng)
        return sc.from_tnum(_value(rng) & ~tm & U64, tm)
    if kind == 4:
        s = sc.urange(*sorted((_value(rng), _value(rng))))
        lo, hi = sorted((_value(rng) & U32, _value(rng) & U32))
        slo, shi = sorted((sc.s64(_value(rng)) % (1 << 32) - (1 << 31) for _ in range(2)))
        return sc.with_bounds32(s, lo, hi, slo, shi)
    a, b = _scalar(rng, sc, depth + 1), _scalar(rng, sc, depth + 1)
    if kind == 5:
        op = rng.choice((sc.alu_add, sc.alu_sub, sc.alu_and, sc.alu_or, sc.alu_xor, sc.alu_mul))
        return op(a, b)
    r = sc.refine(a, b, rng.randrange(10), rng.random() < 0.3)
    return a if r is None else r[0]


def _cases(pure, seed: int, n: int):
    rng = random.Random(seed)
    for _ in range(n):
        yield rng, _scalar(rng, pure), _scalar(rng, pure)


def _check(pure, native, name: str, *args):
    want = getattr(pure, name)(*args)
    got = getattr(native, name)(*args)
    assert got == want, f"{name}{args}: compiled {got!r}, source {want!r}"


def test_alu_operations_agree(both):
    pure, native = both
    for rng, a, b in _cases(pure, 1, 3000):
        for name in ("alu_add", "alu_sub", "alu_mul", "alu_div", "alu_mod", "alu_and",
                     "alu_or", "alu_xor", "contains", "sync"):
            args = (a,) if name == "sync" else (a, b)
            _check(pure, native, name, *args)
        k = rng.randrange(64)
        for name, args in (("alu_lsh", (a, k)), ("alu_lsh", (a, k & 31, 32)),
                           ("alu_rsh", (a, k)), ("alu_arsh", (a, k)), ("alu_neg", (a,)),
                           ("trunc32", (a,)), ("wrap32", (a,)), ("truncate", (a, 16)),
                           ("truncate", (a, 32)), ("sext", (a, rng.choice((8, 16, 32)))),
                           ("sext32", (pure.trunc32(a),)), ("bswap", (a, 32)),
                           ("add_const32", (a, rng.randint(-(1 << 31), (1 << 31) - 1))),
                           ("refine_low32", (a, pure.trunc32(b))),
                           ("_exclude", (a, b[4], rng.random() < 0.5))):
            _check(pure, native, name, *args)


def test_compares_agree(both):
    pure, native = both
    for rng, a, b in _cases(pure, 2, 3000):
        op = rng.randrange(11)
        is32 = rng.random() < 0.3
        _check(pure, native, "branch_taken", a, b, op)
        _check(pure, native, "refine", a, b, op, is32)
        _check(pure, native, "refine_not", a, b, op, is32)
        _check(pure, native, "contains", a, pure.alu_and(a, b))


def test_arcs_and_tnums_agree(both):
    pure, native = both
    rng = random.Random(3)
    for _ in range(20000):
        m = rng.choice((U64, U32))
        a = (_value(rng) & m, _value(rng) & m)
        b = (_value(rng) & m, _value(rng) & m)
        if rng.random() < 0.1:
            a = (m, m)             # the empty arc
        v = _value(rng) & m
        for name in ("_c_intersect", "_c_add", "_c_subset"):
            _check(pure, native, name, a, b, m)
        for name in ("_c_negate", "_c_normalize", "_c_umin", "_c_umax", "_c_sbounds"):
            _check(pure, native, name, a, m)
        _check(pure, native, "_c_contains", a, v, m)
        lo, hi = sorted((a[0], b[0]))
        _check(pure, native, "_c_urange", lo, hi, m)
        half = (m >> 1) + 1
        slo, shi = sorted(x - (m + 1) if x >= half else x for x in (a[0], b[0]))
        _check(pure, native, "_c_srange", slo, shi, m)
        tm = b[1]
        _check(pure, native, "_c_from_tnum", a[0] & ~tm & m, tm, m)
        a64 = (_value(rng), _value(rng))
        _check(pure, native, "_c32_from_c64", a64)
        _check(pure, native, "_c64_c32_intersect", a64, (a[0] & U32, a[1] & U32))
        t1, t2 = (a64[0] & ~a64[1] & U64, a64[1]), (v & ~tm & U64, tm)
        for name in ("tnum_add", "tnum_sub", "tnum_and", "tnum_or", "tnum_xor",
                     "tnum_intersect", "tnum_in"):
            _check(pure, native, name, t1, t2)
        _check(pure, native, "tnum_range", lo, hi)
        _check(pure, native, "tnum_step", t1[0], t1[1], _value(rng))
        _check(pure, native, "_bounds_sync", a64, t1[0], t1[1], (a[0] & U32, a[1] & U32))


def test_a_wrong_width_argument_raises_not_wraps(both):
    """A value outside u64 given to a typed function is refused (OverflowError), never
    silently wrapped into another value."""
    _, native = both
    with pytest.raises(OverflowError):
        native.tnum_add((-1, 0), (0, 0))
    with pytest.raises(OverflowError):
        native._c_urange(0, 1 << 64, U64)
