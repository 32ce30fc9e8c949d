"""The direct tier (bpf/jit_x86.py) against the interpreter on the ISA's corners (RFC 9669):
every ALU, jump and atomic operation, both widths, register and immediate sources, on edge
values (0, -1, INT_MIN, shift counts >= the width, ...), through registers that the x86-64
code treats specially (r0 = rax and r3 = rdx for div, r4 = rcx for shifts). Each program
stores every result into a buffer; both engines' buffers and r0 must be equal."""

from __future__ import annotations

import itertools

import pytest

from uringbpf.bpf import isa, jit
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.isa import Insn
from uringbpf.bpf.memory import Buffer

U64 = isa.U64
VALUES = [0, 1, 2, 7, 31, 32, 63, 64, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000,
          0x8000000000000000, 0x7FFFFFFFFFFFFFFF, U64, U64 - 6, 0x123456789ABCDEF0]
IMMS = [0, 1, -1, 2, 7, 31, 32, 33, 63, 64, -0x80000000, 0x7FFFFFFF, -7, 0x1234, 0xFF,
        0xFFFF]
# (dst, src): plain registers, and the ones the x86 code must keep around div and shifts
PAIRS = [(1, 2), (0, 3), (3, 0), (4, 3), (3, 4), (2, 4), (4, 4), (0, 0), (7, 9)]
#: fewer values for the register pairs past the first (the program size is the test's cost)
FEW = [0, 1, 31, 32, 64, 0x80000000, 0xFFFFFFFF, 0x8000000000000000, U64]
BASE = 6          # r6 holds the result buffer


def lddw(dst: int, value: int) -> list[Insn]:
    return isa.lddw_pair(dst, value & U64)


def store_result(index: int, reg: int) -> Insn:
    return Insn(isa.STX | isa.MEM | isa.DW, BASE, reg, 8 * index)


def run_both(insns: list[Insn], slots: int) -> None:
    """Run on the interpreter and on the direct tier (unchecked and checked): same r0, same
    buffer."""
    insns = [Insn(isa.ALU64 | isa.MOV | isa.X, BASE, 1)] + insns + [
        Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 0x55), Insn(isa.OP_EXIT)]
    program = isa.Program("corners", insns)
    results = []
    for engine in ("interp", "direct", "direct-checked"):
        buf = Buffer(8 * slots + 8)
        rt = Runtime()
        rt.mem.add(buf.addr, buf.size, True, "results")
        if engine == "interp":
            r0 = Interpreter(program, rt).run(buf.addr, 0)
        else:
            fn = jit.compile(program, rt, checked=engine.endswith("checked"), tier="direct")
            assert fn.tier == "direct"
            r0 = fn(buf.addr, 0)
            fn.close()
        results.append((r0, buf.read(0, buf.size)))
    for engine, got in zip(("direct", "direct-checked"), results[1:]):
        if got != results[0]:
            words = lambda b: [int.from_bytes(b[i:i + 8], "little") for i in range(0, len(b), 8)]
            bad = [i for i, (x, y) in enumerate(zip(words(results[0][1]), words(got[1])))
                   if x != y]
            raise AssertionError(f"{engine} differs from the interpreter at results {bad[:8]}: "
                                 f"{[hex(words(got[1])[i]) for i in bad[:4]]} vs "
                                 f"{[hex(words(results[0][1])[i]) for i in bad[:4]]}")


ALU_OPS = [isa.ADD, isa.SUB, isa.MUL, isa.DIV, isa.OR, isa.AND, isa.LSH, isa.RSH, isa.MOD,
           isa.XOR, isa.MOV, isa.ARSH]


@pytest.mark.parametrize("cls", [isa.ALU, isa.ALU64], ids=["alu32", "alu64"])
@pytest.mark.parametrize("op", ALU_OPS, ids=[isa.ALU_OP_NAMES[o] for o in ALU_OPS])
def test_binary_alu_register_source(cls, op):
    offs = [0, 1] if op in (isa.DIV, isa.MOD) else [0]
    insns, n = [], 0
    for off, (dst, src) in itertools.product(offs, PAIRS):
        values = VALUES if (dst, src) == PAIRS[0] else FEW
        for a, b in itertools.product(values, values):
            if dst == src and a != b:
                continue
            insns += lddw(dst, a) + lddw(src, b)
            insns.append(Insn(cls | op | isa.X, dst, src, off))
            insns.append(store_result(n, dst))
            insns.append(store_result(n + 1, src))      # the source is kept too
            n += 2
    run_both(insns, n)


@pytest.mark.parametrize("cls", [isa.ALU, isa.ALU64], ids=["alu32", "alu64"])
@pytest.mark.parametrize("op", ALU_OPS, ids=[isa.ALU_OP_NAMES[o] for o in ALU_OPS])
def test_binary_alu_immediate_source(cls, op):
    offs = [0, 1] if op in (isa.DIV, isa.MOD) else [0]
    insns, n = [], 0
    for off, dst in itertools.product(offs, (0, 3, 4, 8)):
        for a, imm in itertools.product(VALUES if dst == 8 else FEW, IMMS):
            insns += lddw(dst, a)
            insns.append(Insn(cls | op | isa.K, dst, 0, off, imm))
            insns.append(store_result(n, dst))
            n += 1
    run_both(insns, n)


def test_unary_movsx_byteswap():
    forms = [Insn(isa.ALU64 | isa.NEG, 0), Insn(isa.ALU | isa.NEG, 0)]
    for bits in (8, 16, 32):
        forms.append(Insn(isa.ALU64 | isa.MOV | isa.X, 0, 2, bits))
        if bits < 32:
            forms.append(Insn(isa.ALU | isa.MOV | isa.X, 0, 2, bits))
    for width in (16, 32, 64):
        forms.append(Insn(isa.ALU | isa.END | isa.TO_LE, 0, 0, 0, width))
        forms.append(Insn(isa.ALU | isa.END | isa.TO_BE, 0, 0, 0, width))
        forms.append(Insn(isa.ALU64 | isa.END, 0, 0, 0, width))
    insns, n = [], 0
    for form, dst, value in itertools.product(forms, (0, 4, 7), VALUES):
        src = 1 if dst != 1 else 2
        insn = Insn(form.opcode, dst, src if form.off else 0, form.off, form.imm)
        insns += lddw(dst, value) + lddw(src, value ^ 0x5A5A)
        insns += [insn, store_result(n, dst)]
        n += 1
    run_both(insns, n)


JUMP_OPS = [isa.JEQ, isa.JNE, isa.JGT, isa.JGE, isa.JLT, isa.JLE, isa.JSGT, isa.JSGE,
            isa.JSLT, isa.JSLE, isa.JSET]


@pytest.mark.parametrize("cls", [isa.JMP, isa.JMP32], ids=["jmp", "jmp32"])
def test_conditional_jumps(cls):
    insns, n = [], 0
    for op in JUMP_OPS:
        for a, b in itertools.product(FEW, FEW):
            insns += lddw(2, a) + lddw(3, b)
            insns += [Insn(isa.ALU64 | isa.MOV | isa.K, 7, 0, 0, 0),
                      Insn(cls | op | isa.X, 2, 3, 1),
                      Insn(isa.ALU64 | isa.MOV | isa.K, 7, 0, 0, 1),
                      store_result(n, 7)]
            n += 1
        for a, imm in itertools.product(FEW, IMMS[::2]):
            insns += lddw(2, a)
            # the loop-edge shape the translator fuses: `if c goto +1; goto +1`
            insns += [Insn(isa.ALU64 | isa.MOV | isa.K, 7, 0, 0, 0),
                      Insn(cls | op | isa.K, 2, 0, 2, imm),
                      Insn(cls | op | isa.K, 2, 0, 1, imm),
                      Insn(isa.OP_JA, 0, 0, 1),
                      Insn(isa.ALU64 | isa.MOV | isa.K, 7, 0, 0, 1),
                      Insn(isa.ALU64 | isa.ADD | isa.K, 7, 0, 0, 2),
                      Insn(isa.OP_JA, 0, 0, 1),            # a forward ja (2-byte form)
                      Insn(isa.ALU64 | isa.ADD | isa.K, 7, 0, 0, 4),
                      store_result(n, 7)]
            n += 1
    run_both(insns, n)


ATOMICS = [isa.ATOMIC_ADD, isa.ATOMIC_OR, isa.ATOMIC_AND, isa.ATOMIC_XOR,
           isa.ATOMIC_ADD | isa.FETCH, isa.ATOMIC_OR | isa.FETCH, isa.ATOMIC_AND | isa.FETCH,
           isa.ATOMIC_XOR | isa.FETCH, isa.XCHG, isa.CMPXCHG]


@pytest.mark.parametrize("size", [isa.W, isa.DW], ids=["w", "dw"])
def test_atomics(size):
    """Every atomic, with r0 as the source, as the base and as neither; cmpxchg that
    succeeds and fails (r0 is zero-extended from 32 bits either way)."""
    insns, n = [], 0
    slot = 3000             # the memory word the atomics work on, after the results
    for code, (base, src), mem, value in itertools.product(
            ATOMICS, [(7, 2), (7, 0), (0, 2), (3, 4)], VALUES[::4], VALUES[1::4]):
        insns += lddw(8, mem)
        insns.append(Insn(isa.STX | isa.MEM | isa.DW, BASE, 8, 8 * slot))
        insns += lddw(0, mem if n % 2 else value ^ 0xFF00000000)    # cmpxchg: hit and miss
        if src != 0:
            insns += lddw(src, value)
        if base == 0:
            insns += [Insn(isa.ALU64 | isa.MOV | isa.X, 0, BASE), Insn(isa.ALU64 | isa.ADD | isa.K, 0, 0, 0, 8 * slot)]
            off = 0
        else:
            insns += [Insn(isa.ALU64 | isa.MOV | isa.X, base, BASE)]
            off = 8 * slot
        insns.append(Insn(isa.STX | isa.ATOMIC | size, base, src, off, code))
        insns.append(Insn(isa.LDX | isa.MEM | isa.DW, 9, BASE, 8 * slot))
        # r0 as the base holds an address (not comparable) unless cmpxchg replaced it
        kept = 0 if base != 0 or code == isa.CMPXCHG else 9
        insns += [store_result(n, 9), store_result(n + 1, kept), store_result(n + 2, src)]
        n += 3
    assert n < slot
    run_both(insns, slot + 1)


def test_division_by_zero_register_keeps_r0_and_r3():
    """div/mod go through rax:rdx (BPF r0 and r3): both keep their values, whatever the
    divisor (0 included) and whichever register is the destination."""
    insns, n = [], 0
    for op, off, dst, divisor in itertools.product((isa.DIV, isa.MOD), (0, 1), (1, 5, 9),
                                                   (0, 3, U64, 0x80000000)):
        insns += lddw(0, 0x1111) + lddw(3, 0x3333) + lddw(dst, 0x8000000000000000) + lddw(2, divisor)
        insns += [Insn(isa.ALU64 | op | isa.X, dst, 2, off)]
        insns += [store_result(n, 0), store_result(n + 1, 3), store_result(n + 2, dst)]
        n += 3
    run_both(insns, n)
