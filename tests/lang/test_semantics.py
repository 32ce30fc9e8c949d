"""The integer subset gives the same results in the application and compiled (JIT and
interpreter), including wrap-around, C conversions and BPF's division by zero."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uringbpf.lang import s8, s32, u8, u16, u32, u64

import lang_semantics_progs as P

EDGE = [
    (0, 0, 0, 0), (1, 0, -1, 255), (0xFFFFFFFF, 1, -0x80000000, 31), (7, 3, -7, 1),
    (0x80000000, 0x7FFFFFFF, 0x7FFFFFFF, 40), (12345, 67, -1, 7),
]


def _data(a: int, b: int, c: int, d: int) -> bytes:
    return struct.pack("<IIiB3x", a, b, c, d)


def _reset() -> None:
    for name in P.out._fields:
        if name != "hist":
            setattr(P.out, name, 0)
    for k in range(4):
        P.out.hist[k] = 0


def _observe(run, data: bytes) -> tuple:
    _reset()
    ret = run(data)
    return ret, P.out.values(), getattr(run, "last_data", None) or P.arith.last_data


@pytest.fixture(scope="module")
def engines():
    jit = P.arith.loaded("jit")
    interp = P.arith.loaded("interp")
    yield jit, interp
    jit.close()
    interp.close()


def _compare(engines, data: bytes) -> None:
    jit, interp = engines
    results = {"jit": _observe(jit, data), "interp": _observe(interp, data),
               "app": _observe(P.arith.run_in_app, data)}
    assert results["app"] == results["jit"] == results["interp"]
    return results["app"]


@pytest.mark.parametrize("a,b,c,d", EDGE)
def test_edge_cases_agree(engines, a, b, c, d):
    ret, vals, data_out = _compare(engines, _data(a, b, c, d))
    # spot-check the C semantics themselves, not only the agreement
    assert vals["add32"] == (a + b) & 0xFFFFFFFF
    assert vals["sub32"] == (a - b) & 0xFFFFFFFF
    assert vals["div"] == (a // b if b else 0)
    assert vals["mod"] == (a % b if b else a)
    assert vals["shl"] == (a << (b & 31)) & 0xFFFFFFFF
    assert vals["sar"] == c >> (d & 31)
    assert vals["mixed"] == (a * 3 + (c & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
    assert vals["lt_mixed"] == int((c & 0xFFFFFFFF) < a)
    assert vals["neg8"] == s8(-d)
    assert data_out[13] == d ^ 0xFF
    assert ret == a + b


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(-2**31, 2**31 - 1),
       st.integers(0, 255))
def test_random_inputs_agree(engines, a, b, c, d):
    _compare(engines, _data(a, b, c, d))


def test_fixed_ints_wrap_like_c():
    assert u8(250) + 10 == 4
    assert type(u8(250) + 10) is u8
    assert s32(0x7FFFFFFF) + 1 == -0x80000000
    assert u32(5) - 6 == 0xFFFFFFFF
    assert type(u32(1) + s32(1)) is u32           # same width: unsigned wins
    assert type(u16(1) + s32(1)) is s32           # wider wins
    assert (s32(-1) < u32(1)) is False            # compared as unsigned, as in C
    assert u32(7) // 0 == 0 and u32(7) % 0 == 7   # BPF's division by zero
    assert (s32(-7) // 2, s32(-7) % 2) == (-4, 1)  # Python's floor, not C's truncation
    assert s32(-0x80000000) // -1 == -0x80000000   # wraps like the compiled code
    assert s32(-7) // 0 == 0 and s32(-7) % 0 == -7
    assert u64(1) << 65 == 2                      # shift counts modulo the width
