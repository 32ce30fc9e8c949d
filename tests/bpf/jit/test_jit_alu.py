"""ALU and jump semantics of the JIT against a small Python model of RFC 9669.

Each operation is compiled once with its operands in r1/r2 and then run on many
hypothesis-chosen values, so the corner cases (div/mod by zero, INT_MIN / -1, shift counts
beyond the width, 32-bit zero extension) are all exercised without recompiling.
"""

from __future__ import annotations

import pytest
import os

from hypothesis import given, settings, strategies as st

from uringbpf.bpf import isa, jit
from uringbpf.bpf.isa import Insn

#: In CI the examples are the same every run (a rare new failure must not block a
#: submission); locally hypothesis explores new ones each time.
CI = bool(os.environ.get("CI"))

U64, U32 = isa.U64, isa.U32

EDGE64 = [0, 1, 2, 3, 7, 31, 32, 63, 64, 65, U32, 1 << 31, (1 << 31) - 1, 1 << 32,
          1 << 63, (1 << 63) - 1, U64, U64 - 1, 0x8000000080000000, 0xFFFFFFFF00000000]
values = st.one_of(st.sampled_from(EDGE64), st.integers(0, U64))


def _signed(v: int, bits: int) -> int:
    return isa.sign_extend(v, bits)


def _tdiv(a: int, b: int) -> int:
    """C-style division truncating toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def alu_model(op: int, bits: int, signed: bool, a: int, b: int) -> int:
    mask = (1 << bits) - 1
    a &= mask
    b &= mask
    if op == isa.ADD:
        r = a + b
    elif op == isa.SUB:
        r = a - b
    elif op == isa.MUL:
        r = a * b
    elif op == isa.OR:
        r = a | b
    elif op == isa.AND:
        r = a & b
    elif op == isa.XOR:
        r = a ^ b
    elif op == isa.LSH:
        r = a << (b & (bits - 1))
    elif op == isa.RSH:
        r = a >> (b & (bits - 1))
    elif op == isa.ARSH:
        r = _signed(a, bits) >> (b & (bits - 1))
    elif op == isa.MOV:
        r = b
    elif op == isa.DIV:
        if b == 0:
            r = 0
        elif signed:
            r = _tdiv(_signed(a, bits), _signed(b, bits))
        else:
            r = a // b
    elif op == isa.MOD:
        if b == 0:
            r = a
        elif signed:
            sa, sb = _signed(a, bits), _signed(b, bits)
            r = sa - sb * _tdiv(sa, sb)
        else:
            r = a % b
    else:
        raise AssertionError(op)
    return r & mask


BINARY_OPS = [isa.ADD, isa.SUB, isa.MUL, isa.OR, isa.AND, isa.XOR, isa.LSH, isa.RSH,
              isa.ARSH, isa.MOV, isa.DIV, isa.MOD]


def _variants():
    for op in BINARY_OPS:
        for cls in (isa.ALU64, isa.ALU):
            signs = (False, True) if op in (isa.DIV, isa.MOD) else (False,)
            for signed in signs:
                yield pytest.param(op, cls, signed,
                                   id=f"{isa.ALU_OP_NAMES[op]}{'' if cls == isa.ALU64 else '32'}"
                                      f"{'-signed' if signed else ''}")


def _prog(*insns: Insn) -> isa.Program:
    return isa.Program("t", list(insns) + [Insn(isa.OP_EXIT)])


@pytest.mark.parametrize("op,cls,signed", list(_variants()))
def test_alu_register_operands(op, cls, signed):
    fn = jit.compile(_prog(
        Insn(cls | op | isa.X, isa.R1, isa.R2, 1 if signed else 0),
        Insn(isa.ALU64 | isa.MOV | isa.X, isa.R0, isa.R1),
    ))
    bits = 64 if cls == isa.ALU64 else 32

    @settings(derandomize=CI, max_examples=150, deadline=None)
    @given(a=values, b=values)
    def check(a, b):
        assert fn(a, b) == alu_model(op, bits, signed, a, b)

    check()
    # The corner cases, every time, whatever hypothesis picked.
    for a in EDGE64:
        for b in (0, U64, U32, 1 << 63, 1 << 31, 64, 32):
            assert fn(a, b) == alu_model(op, bits, signed, a, b), (hex(a), hex(b))


@pytest.mark.parametrize("op,cls,signed", list(_variants()))
@pytest.mark.parametrize("imm", [0, 1, -1, 5, -7, 31, 33, 63, 65, 0x7FFFFFFF, -0x80000000])
def test_alu_immediate_operands(op, cls, signed, imm):
    fn = jit.compile(_prog(
        Insn(cls | op | isa.K, isa.R1, 0, 1 if signed else 0, imm),
        Insn(isa.ALU64 | isa.MOV | isa.X, isa.R0, isa.R1),
    ))
    bits = 64 if cls == isa.ALU64 else 32
    b = imm & U64 if bits == 64 else imm & U32   # ALU64 sign-extends the immediate
    for a in EDGE64:
        assert fn(a) == alu_model(op, bits, signed, a, b), (hex(a), imm)


def test_alu32_results_are_zero_extended():
    fn = jit.compile(_prog(
        Insn(isa.ALU | isa.ADD | isa.K, isa.R1, 0, 0, 0),
        Insn(isa.ALU64 | isa.MOV | isa.X, isa.R0, isa.R1),
    ))
    assert fn(0xDEADBEEF_12345678) == 0x12345678


def test_signed_division_overflow_and_negative_operands():
    int_min = 1 << 63
    sdiv = jit.compile(_prog(Insn(isa.ALU64 | isa.DIV | isa.X, 1, 2, 1),
                             Insn(isa.ALU64 | isa.MOV | isa.X, 0, 1)))
    smod = jit.compile(_prog(Insn(isa.ALU64 | isa.MOD | isa.X, 1, 2, 1),
                             Insn(isa.ALU64 | isa.MOV | isa.X, 0, 1)))
    assert sdiv(int_min, U64) == int_min
    assert smod(int_min, U64) == 0
    assert sdiv(-13 & U64, 3) == -4 & U64
    assert smod(-13 & U64, 3) == -1 & U64
    assert smod(13, -3 & U64) == 1
    sdiv32 = jit.compile(_prog(Insn(isa.ALU | isa.DIV | isa.X, 1, 2, 1),
                               Insn(isa.ALU64 | isa.MOV | isa.X, 0, 1)))
    assert sdiv32(0xFFFFFFFF_80000000, U32) == 0x80000000
    smod32 = jit.compile(_prog(Insn(isa.ALU | isa.MOD | isa.X, 1, 2, 1),
                               Insn(isa.ALU64 | isa.MOV | isa.X, 0, 1)))
    # mod by zero keeps the dividend, but ALU32 still clears the upper half
    assert smod32(0x11111111_87654321, 0) == 0x87654321


@given(a=values)
@settings(derandomize=CI, max_examples=100, deadline=None)
def test_neg(a):
    neg64 = _NEG[0]
    neg32 = _NEG[1]
    assert neg64(a) == (-a) & U64
    assert neg32(a) == (-(a & U32)) & U32


_NEG = [jit.compile(_prog(Insn(cls | isa.NEG, 1), Insn(isa.ALU64 | isa.MOV | isa.X, 0, 1)))
        for cls in (isa.ALU64, isa.ALU)]


@pytest.mark.parametrize("bits", [8, 16, 32])
@pytest.mark.parametrize("cls", [isa.ALU64, isa.ALU])
def test_movsx(bits, cls):
    if cls == isa.ALU and bits == 32:
        with pytest.raises(jit.JitError):
            jit.compile(_prog(Insn(cls | isa.MOV | isa.X, 0, 1, bits)))
        return
    fn = jit.compile(_prog(Insn(cls | isa.MOV | isa.X, 0, 1, bits)))
    width = 64 if cls == isa.ALU64 else 32
    for a in EDGE64 + [0x80, 0x7F, 0xFF80, 0x8000, 0x1234_5678_9ABC_DEF0]:
        assert fn(a) == isa.sign_extend(a, bits) & ((1 << width) - 1), hex(a)


@pytest.mark.parametrize("width", [16, 32, 64])
@pytest.mark.parametrize("kind", ["le", "be", "bswap"])
def test_byte_swaps(width, kind):
    opcode = {"le": isa.ALU | isa.END | isa.TO_LE, "be": isa.ALU | isa.END | isa.TO_BE,
              "bswap": isa.ALU64 | isa.END}[kind]
    fn = jit.compile(_prog(Insn(opcode, 1, 0, 0, width), Insn(isa.ALU64 | isa.MOV | isa.X, 0, 1)))
    for a in EDGE64 + [0x0102030405060708, 0x1122]:
        low = a & ((1 << width) - 1)
        if kind == "le":
            expect = low
        else:
            expect = int.from_bytes(low.to_bytes(width // 8, "little"), "big")
        assert fn(a) == expect, (kind, width, hex(a))


JUMPS = {
    isa.JEQ: lambda a, b, bits: a == b,
    isa.JNE: lambda a, b, bits: a != b,
    isa.JGT: lambda a, b, bits: a > b,
    isa.JGE: lambda a, b, bits: a >= b,
    isa.JLT: lambda a, b, bits: a < b,
    isa.JLE: lambda a, b, bits: a <= b,
    isa.JSET: lambda a, b, bits: bool(a & b),
    isa.JSGT: lambda a, b, bits: _signed(a, bits) > _signed(b, bits),
    isa.JSGE: lambda a, b, bits: _signed(a, bits) >= _signed(b, bits),
    isa.JSLT: lambda a, b, bits: _signed(a, bits) < _signed(b, bits),
    isa.JSLE: lambda a, b, bits: _signed(a, bits) <= _signed(b, bits),
}


@pytest.mark.parametrize("cls", [isa.JMP, isa.JMP32], ids=["jmp", "jmp32"])
@pytest.mark.parametrize("op", list(JUMPS), ids=[isa.JMP_OP_NAMES[o] for o in JUMPS])
def test_conditional_jumps(op, cls):
    fn = jit.compile(_prog(
        Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 1),
        Insn(cls | op | isa.X, 1, 2, 1),
        Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 0),
    ))
    bits = 64 if cls == isa.JMP else 32
    mask = (1 << bits) - 1

    @settings(derandomize=CI, max_examples=80, deadline=None)
    @given(a=values, b=values)
    def check(a, b):
        assert fn(a, b) == int(JUMPS[op](a & mask, b & mask, bits))

    check()
    for a in (0, 1, U64, 1 << 63, U32, 1 << 31):
        for b in (0, 1, U64, 1 << 63, U32, 1 << 31):
            assert fn(a, b) == int(JUMPS[op](a & mask, b & mask, bits)), (hex(a), hex(b))


@pytest.mark.parametrize("imm", [0, 1, -1, 0x7FFFFFFF, -0x80000000])
def test_jump_immediate_is_sign_extended(imm):
    fn = jit.compile(_prog(
        Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 1),
        Insn(isa.JMP | isa.JEQ | isa.K, 1, 0, 1, imm),
        Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 0),
    ))
    assert fn(imm & U64) == 1
    assert fn(imm & U32) == (1 if imm >= 0 else 0)


def test_gotol_and_backward_loop():
    # r0 = sum(1..r1) with a backward jump; gotol skips a poison instruction.
    fn = jit.compile(_prog(
        Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 0),
        Insn(isa.OP_JA32, imm=1),
        Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 99),
        Insn(isa.JMP | isa.JEQ | isa.K, 1, 0, 3, 0),
        Insn(isa.ALU64 | isa.ADD | isa.X, 0, 1),
        Insn(isa.ALU64 | isa.SUB | isa.K, 1, 0, 0, 1),
        Insn(isa.OP_JA, off=-4),
    ))
    assert fn(0) == 0
    assert fn(10) == 55
    assert fn(1000) == 500500
