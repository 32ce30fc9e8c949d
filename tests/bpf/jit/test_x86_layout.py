"""The direct tier's code layout (bpf/jit_x86.py): the per-instruction size bounds that
decide 2-byte jumps hold for every encoding, loop heads start on 16-byte boundaries, and a
map value's offset is folded into its constant, all giving the interpreter's results."""

from __future__ import annotations

import itertools

from uringbpf.bpf import isa, jit, jit_x86
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.isa import Insn
from uringbpf.bpf.jit_codegen import Bindings
from uringbpf.errors import JitError

U64 = isa.U64


def _no_calls(_index: int):
    raise JitError("no calls here")


def _translate(insns: list[Insn], checked: bool = False,
               reorder: bool = True) -> jit_x86._Translator:
    t = jit_x86._Translator(isa.Program("layout", insns),
                            Bindings(helper=_no_calls, kfunc=_no_calls, checked=checked), {})
    t.reorder = reorder
    t.run()
    return t


def _alu_forms():
    for cls, op, x in itertools.product((isa.ALU, isa.ALU64), jit_x86._ALU_OPS, (0, isa.X)):
        if op in (isa.DIV, isa.MOD, isa.END) or (op in jit_x86._SHIFT and x):
            continue          # bounded as 1,000 bytes; END below
        for dst, src in itertools.product(range(10), range(11)):
            imms = (0, 1, -1, 0x7F, 0xFF, 0xFFFF, -0x80000000, 0x7FFFFFFF) if not x else (0,)
            for imm in imms:
                if op == isa.NEG and (x or imm):
                    continue
                offs = (0, 8, 16, 32) if op == isa.MOV and x else (0,)
                for off in offs:
                    yield Insn(cls | op | x, dst, src if x else 0, off, imm)
    for cls, src, width, dst in itertools.product((isa.ALU, isa.ALU64), (0, isa.X),
                                                  (16, 32, 64), range(10)):
        if cls == isa.ALU64 and src:
            continue
        yield Insn(cls | isa.END | src, dst, 0, 0, width)


def test_size_bounds_hold_for_every_small_encoding():
    """Each instruction's machine code is at most ``_bound`` bytes (a short jump relies on
    it): every ALU form over every register, jumps in their 32-bit-displacement form (their
    target is over 127 bytes away), memory accesses with 8- and 32-bit displacements."""
    forms = list(_alu_forms())
    for cls, op, x in itertools.product((isa.JMP, isa.JMP32), jit_x86._JCC, (0, isa.X)):
        for dst, imm in itertools.product(range(11), (0, 1, -1, 0x80, -0x80000000)):
            forms.append(Insn(cls | op | x, dst, 10 - dst if x else 0, 0, 0 if x else imm))
    for size, dst, off in itertools.product((isa.B, isa.H, isa.W, isa.DW), range(11),
                                            (0, 1, -0x8000, 0x7FFF)):
        forms.append(Insn(isa.LDX | isa.MEM | size, dst % 10, dst, off))
        forms.append(Insn(isa.LDX | isa.MEMSX | size, dst % 10, dst, off))
        forms.append(Insn(isa.ST | isa.MEM | size, dst, 0, off, -0x80000000))
        forms.append(Insn(isa.STX | isa.MEM | size, dst, 9 - dst % 10, off))
    far = isa.lddw_pair(0, 0x1122334455667788) * 8          # 8 x 10 bytes, bound 8 x 20
    for insn in forms:
        if isa.invalid_reason(insn) is not None:        # e.g. movsx 32 in ALU32
            continue
        if insn.is_jump:
            body = [Insn(insn.opcode, insn.dst, insn.src, len(far), insn.imm)] + far
        else:
            body = [insn]
        t = _translate(body + [Insn(isa.OP_EXIT)], reorder=False)
        size = t.a.labels[len(body) if not insn.is_jump else 1] - t.a.labels[0]
        assert size <= jit_x86._bound(insn, False), (insn, size)


def _run_both(insns: list[Insn], args=(0, 0)) -> int:
    program = isa.Program("layout", insns)
    want = Interpreter(program, Runtime()).run(*args)
    fn = jit.compile(program, Runtime(), tier="direct")
    assert fn.tier == "direct"
    assert fn(*args) == want
    fn.close()
    return want


def test_loop_heads_start_on_16_byte_boundaries():
    """Targets of backward jumps (nested loops, a loop entered by a jump, a loop head that
    is also a forward target) are 16-byte aligned, unchecked and checked; the padding is
    only executed on entry and the results are the interpreter's."""
    insns = [
        Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 0),
        Insn(isa.ALU64 | isa.MOV | isa.K, 2, 0, 0, 0),
        Insn(isa.JMP | isa.JA, 0, 0, 0),                       # a forward jump to the head
        Insn(isa.ALU64 | isa.MOV | isa.K, 3, 0, 0, 0),         # 3: outer head
        Insn(isa.ALU64 | isa.ADD | isa.X, 0, 3),               # 4: inner head
        Insn(isa.ALU64 | isa.ADD | isa.K, 3, 0, 0, 1),
        Insn(isa.JMP | isa.JLT | isa.K, 3, 0, -3, 7),          # to 4
        Insn(isa.ALU64 | isa.ADD | isa.K, 2, 0, 0, 1),
        Insn(isa.JMP | isa.JLT | isa.X, 2, 1, 1),              # if r2 < r1 goto +1 ...
        Insn(isa.JMP | isa.JA, 0, 0, 1),
        Insn(isa.JMP | isa.JA, 0, 0, -8),                      # ... goto 3 (fused pair)
        Insn(isa.OP_EXIT),
    ]
    for checked in (False, True):
        t = _translate(insns, checked)
        for head in (3, 4):
            assert t.a.labels[head] % 16 == 0, (checked, head, t.a.labels[head])
    assert _run_both(insns, (5, 0)) == 5 * 21


def test_nop_padding_is_every_length():
    """``Asm.align`` pads from each offset mod 16 with NOPs that decode as such: the code
    after them runs (0-15 bytes of padding before a loop head)."""
    for lead in range(16):
        # r0 = lead ones added by a 16-iteration loop after `lead` 1-byte-ish moves
        insns = [Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 0)]
        insns += [Insn(isa.ALU | isa.MOV | isa.K, 4, 0, 0, 1)] * lead
        insns += [Insn(isa.ALU64 | isa.MOV | isa.K, 2, 0, 0, 0),
                  Insn(isa.ALU64 | isa.ADD | isa.K, 0, 0, 0, 3),
                  Insn(isa.ALU64 | isa.ADD | isa.K, 2, 0, 0, 1),
                  Insn(isa.JMP | isa.JLT | isa.K, 2, 0, -3, 16),
                  Insn(isa.OP_EXIT)]
        assert _run_both(insns) == 48
