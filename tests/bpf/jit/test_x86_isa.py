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


def test_move_then_mask_is_one_zero_extending_move():
    """`d = s; d &= 0xff` (or 0xffff), both widths, is translated as one movzx from s
    (jit_x86's pair rule): through every register kind (rsi/rdi need a REX prefix for their
    low byte, r8-r15 another), with d == s, and not fused when the mask is a jump target."""
    insns, n = [], 0
    for mov_cls, and_cls, mask in itertools.product((isa.ALU, isa.ALU64), (isa.ALU, isa.ALU64),
                                                    (0xFF, 0xFFFF)):
        for dst, src in ((4, 3), (0, 1), (3, 2), (5, 9), (7, 0), (2, 2), (9, 8), (1, 5)):
            if BASE in (dst, src):
                continue
            for value in (0x123456789ABCDEF0, U64, 0x80, 0x8000FF7F):
                insns += lddw(src, value) + lddw(dst, ~value)
                insns += [Insn(mov_cls | isa.MOV | isa.X, dst, src),
                          Insn(and_cls | isa.AND | isa.K, dst, 0, 0, mask),
                          store_result(n, dst)]
                n += 1
    # the mask is the target of a jump: the move and the mask stay two instructions
    insns += lddw(2, 0xABCD) + lddw(3, 0x1234) + [
        Insn(isa.ALU64 | isa.MOV | isa.X, 3, 2),
        Insn(isa.JMP | isa.JA, 0, 0, 1),
        Insn(isa.ALU64 | isa.MOV | isa.K, 3, 0, 0, 0x777),
        Insn(isa.ALU64 | isa.AND | isa.K, 3, 0, 0, 0xFF),
        store_result(n, 3)]
    run_both(insns, n + 1)


def test_add_then_load_through_the_sum_is_one_indexed_load():
    """`rX += rY; rX = *(size *)(rX + off)` becomes one load from [rX + rY + off] (jit_x86's
    pair rule): every size, sign-extending loads, 8- and 32-bit and negative offsets, bases
    that need a displacement byte in x86 (r7 = r13) or a REX prefix, an index of r0/r10,
    sums that wrap around 2**64; and not fused when the load is a jump target."""
    pattern = bytes((i * 37 + 11) & 0xFF for i in range(64))
    insns = []
    for i in range(8):
        insns += lddw(0, int.from_bytes(pattern[8 * i:8 * i + 8], "little"))
        insns.append(store_result(i, 0))
    n = 8
    sizes = [(isa.LDX | isa.MEM | sz) for sz in (isa.B, isa.H, isa.W, isa.DW)] + [
        (isa.LDX | isa.MEMSX | sz) for sz in (isa.B, isa.H, isa.W)]
    for opcode, (x, y), (bias, off) in itertools.product(
            sizes, ((1, 2), (7, 3), (0, 9), (9, 0), (3, 7), (5, 8), (2, 10)),
            ((1000, 0), (-5, 3), (0x12345, -0x8000), (-0x7000, 0x7FF0), (1 << 63, 17))):
        if x == BASE or y == BASE:
            continue
        at = 8 * (n % 7) + 1                # an unaligned byte of the pattern
        tmp = next(r for r in (1, 2, 3, 4, 5, 8, 9) if r not in (x, y))
        # x = r6 + at - off - y, so that x + y + off = r6 + at
        insns.append(Insn(isa.ALU64 | isa.MOV | isa.X, x, BASE))
        if y == 10:
            insns.append(Insn(isa.ALU64 | isa.SUB | isa.X, x, 10))
            insns += lddw(tmp, at - off)
        else:
            insns += lddw(y, bias) + lddw(tmp, at - off - bias)
        insns.append(Insn(isa.ALU64 | isa.ADD | isa.X, x, tmp))
        insns += [Insn(isa.ALU64 | isa.ADD | isa.X, x, y),
                  Insn(opcode, x, x, off),
                  store_result(n, x)]
        n += 1
    # the load is a jump target: the add and the load stay apart (the jump skips the add)
    insns += [Insn(isa.ALU64 | isa.MOV | isa.X, 2, BASE),
              Insn(isa.ALU64 | isa.MOV | isa.K, 3, 0, 0, 9),
              Insn(isa.JMP | isa.JA, 0, 0, 1),
              Insn(isa.ALU64 | isa.ADD | isa.X, 2, 3),
              Insn(isa.LDX | isa.MEM | isa.B, 2, 2, 2),
              store_result(n, 2)]
    run_both(insns, n + 1)


def test_load_op_store_of_a_dead_register_is_one_memory_operation():
    """`rA = *(size *)(rB + off); rA op= K|rC; *(size *)(rB + off) = rA` is one `op [mem]`
    when rA is dead afterwards (jit_x86.update_in_memory): every size, add/sub/and/or/xor,
    immediates at the sign-extension edges of each width, register operands, ALU32 on a
    64-bit value (must stay three instructions: it clears the upper half), bases rbp (r10)
    and r13 (r7), and rA read afterwards (not dead: must keep the value)."""
    ops = [isa.ADD, isa.SUB, isa.AND, isa.OR, isa.XOR]
    imms = [1, -1, 0x7F, 0x80, -0x80, 0x7FFF, 0x8000, -0x80000000, 0x12345678]
    initial = 0x8123456789ABCDEF
    insns, n = [], 0
    for size, cls, op, src, (a_reg, b_reg), tail in itertools.product(
            (isa.B, isa.H, isa.W, isa.DW), (isa.ALU, isa.ALU64), ops,
            imms + ["reg"], ((2, 7), (0, 3), (7, 9), (4, 10)), ("dead", "live", "jump", "fall")):
        if tail != "dead" and src not in (1, "reg"):
            continue                  # the live/jump tails on fewer forms: program size
        slot = 8 * n
        off = -8 if b_reg == 10 else slot
        insns += lddw(1, initial)
        if b_reg == 10:
            insns.append(Insn(isa.STX | isa.MEM | isa.DW, 10, 1, -8))
        else:
            insns += [Insn(isa.ALU64 | isa.MOV | isa.X, b_reg, BASE),
                      Insn(isa.STX | isa.MEM | isa.DW, b_reg, 1, off)]
        x = src == "reg"
        if x:
            insns += lddw(5, 0xF0F0F0F0_0F0F0F0F ^ n)
        insns += lddw(a_reg, 0x5555)
        insns += [Insn(isa.LDX | isa.MEM | size, a_reg, b_reg, off),
                  Insn(cls | op | (isa.X if x else isa.K), a_reg, 5 if x else 0, 0,
                       0 if x else src),
                  Insn(isa.STX | isa.MEM | size, b_reg, a_reg, off)]
        if tail == "live":
            insns.append(store_result(n + 1, a_reg))
        elif tail == "jump":
            # rA is read on the taken branch only (r1 != 0): not dead
            insns += [Insn(isa.JMP | isa.JNE | isa.K, 1, 0, 1, 0),
                      Insn(isa.ALU64 | isa.MOV | isa.K, a_reg, 0, 0, 0),
                      store_result(n + 1, a_reg)]
        elif tail == "fall":
            # rA is read on the fall-through only (r1 != 0): not dead
            insns += [Insn(isa.JMP | isa.JEQ | isa.K, 1, 0, 1, 0),
                      store_result(n + 1, a_reg)]
        insns.append(Insn(isa.ALU64 | isa.MOV | isa.K, a_reg, 0, 0, 0))    # rA dead
        if b_reg == 10:
            insns += [Insn(isa.LDX | isa.MEM | isa.DW, 1, 10, -8), store_result(n, 1)]
        n += 2
    run_both(insns, n)


def test_element_update_through_a_dead_sum_is_one_indexed_memory_operation():
    """`rB += rI; rA = *(rB + off); rA op= K|rC; *(rB + off) = rA` with rA and rB dead is
    one `op [rB + rI + off]`: sizes, immediates and registers, rI == rA (the index is read
    before the load), rC == rI, and rB or rA read afterwards (must keep the sum/value)."""
    insns, n = [], 0
    initial = 0x0123456789ABCDEF
    for size, op, (b_reg, i_reg, a_reg), src, tail in itertools.product(
            (isa.B, isa.H, isa.W, isa.DW), (isa.ADD, isa.SUB, isa.XOR),
            ((3, 2, 2), (7, 9, 0), (1, 10, 4), (9, 4, 5)), (1, -0x81, "reg", "index"),
            ("dead", "base live", "value live")):
        slot = 8 * n
        c_reg = 8 if src == "reg" else i_reg
        insns += lddw(5 if a_reg != 5 else 1, initial)
        insns.append(Insn(isa.STX | isa.MEM | isa.DW, BASE, 5 if a_reg != 5 else 1, slot))
        if i_reg != 10:
            insns += lddw(i_reg, 0x1000 + n)
        insns += lddw(8, 0x0F0F0F0F_F0F0F0F0 + n)
        # rB = r6 - rI + slot - 4, so that rB + rI + 4 = r6 + slot
        insns += [Insn(isa.ALU64 | isa.MOV | isa.X, b_reg, BASE),
                  Insn(isa.ALU64 | isa.SUB | isa.X, b_reg, i_reg),
                  Insn(isa.ALU64 | isa.ADD | isa.K, b_reg, 0, 0, slot - 4),
                  Insn(isa.ALU64 | isa.ADD | isa.X, b_reg, i_reg),
                  Insn(isa.LDX | isa.MEM | size, a_reg, b_reg, 4)]
        if src in ("reg", "index"):
            if size in (isa.B, isa.H) or (src == "index" and i_reg in (a_reg, 10)):
                insns.append(Insn(isa.ALU64 | op | isa.K, a_reg, 0, 0, 3))
            else:
                insns.append(Insn(isa.ALU64 | op | isa.X, a_reg, c_reg))
        else:
            insns.append(Insn(isa.ALU64 | op | isa.K, a_reg, 0, 0, src))
        insns.append(Insn(isa.STX | isa.MEM | size, b_reg, a_reg, 4))
        if tail == "base live":               # as an offset: buffers differ per engine
            insns += [Insn(isa.ALU64 | isa.SUB | isa.X, b_reg, BASE),
                      store_result(n + 1, b_reg)]
        elif tail == "value live":
            insns.append(store_result(n + 1, a_reg))
        insns += [Insn(isa.ALU64 | isa.MOV | isa.K, a_reg, 0, 0, 0),
                  Insn(isa.ALU64 | isa.MOV | isa.K, b_reg, 0, 0, 0)]
        n += 2
    run_both(insns, n)
