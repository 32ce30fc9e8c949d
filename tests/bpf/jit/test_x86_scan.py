"""The direct tier's one-pass check of a program (jit_x86._scan, issue #19): for every
instruction form it gives exactly what ``jit_codegen.validate`` and ``split_functions``
give (the same placeholders and function starts, or the same refusal), and the opcode
tables that skip work (``_SCAN``, ``_SUSPECT``, ``_BOUNDS``) agree with the full rules."""

from __future__ import annotations

import itertools
import random

import pytest

from uringbpf.bpf import isa, jit_x86
from uringbpf.bpf.isa import Insn
from uringbpf.bpf.jit_codegen import Bindings, split_functions, validate
from uringbpf.errors import JitError

# field values on both sides of every limit invalid_reason tests
DSTS = (0, 10, 11)
SRCS = (0, 1, 2, 3, 4, 6, 7, 10, 11)
OFFS = (0, 1, -1, 2, 8, 32)
IMMS = (0, 1, 16, 64, -1, isa.ATOMIC_ADD | isa.FETCH)


def _reference(insns: list[Insn], xlated: bool = False):
    try:
        return validate(insns, xlated), split_functions(insns)
    except JitError as exc:
        return ("refused", str(exc), exc.args)


def _fast(insns: list[Insn], xlated: bool = False):
    try:
        return jit_x86._scan(insns, xlated)[:2]
    except JitError as exc:
        return ("refused", str(exc), exc.args)


def test_every_single_instruction_form_is_judged_as_validate_judges_it():
    """All 256 opcodes with fields at every limit, as the first instruction of a program
    (its second slot an exit: an lddw gets it as its placeholder), plain and arena."""
    count = 0
    for opcode, dst, src, off, imm in itertools.product(range(256), DSTS, SRCS, OFFS, IMMS):
        insns = [Insn(opcode, dst, src, off, imm), Insn(isa.OP_EXIT), Insn(isa.OP_EXIT)]
        for xlated in (False, True) if opcode & 7 in (isa.LDX, isa.ST, isa.STX) else (False,):
            assert _fast(insns, xlated) == _reference(insns, xlated), (insns[0], xlated)
            count += 1
    assert count > 100_000


def test_targets_calls_and_function_starts():
    """Jumps, local calls and lddw-of-a-function to every slot of a small program (before
    it, into an lddw's second slot, past the end), in both jump encodings."""
    body = [Insn(isa.ALU64 | isa.MOV, 0), *isa.lddw_pair(1, 5), Insn(isa.OP_EXIT),
            Insn(isa.ALU64 | isa.ADD, 0, imm=1), Insn(isa.OP_EXIT)]
    n = len(body) + 1
    for rel in range(-3, n + 2):
        heads = [Insn(isa.JMP | isa.JA, off=rel), Insn(isa.JMP32 | isa.JA, imm=rel),
                 Insn(isa.JMP | isa.JEQ | isa.X, 1, 2, rel), Insn(isa.OP_CALL, 0, 1, 0, rel),
                 Insn(isa.OP_CALL, 0, 0, 0, 7), Insn(isa.OP_CALL, 0, 2, 0, 0),
                 Insn(isa.OP_LDDW, 3, isa.PSEUDO_FUNC, 0, rel)]
        for head in heads:
            insns = [head] + body + ([Insn(0)] if head.is_lddw else [])
            assert _fast(insns) == _reference(insns), (head, rel)


def test_random_programs_agree():
    rnd = random.Random(19)
    opcodes = [op for op in range(256) if jit_x86._SCAN[op]] + [isa.OP_LDDW] * 10
    for _ in range(5_000):
        n = rnd.randrange(1, 12)
        insns = []
        for _ in range(n):
            opcode = rnd.choice(opcodes) if rnd.random() < 0.95 else rnd.randrange(256)
            insns.append(Insn(opcode, rnd.choice((0, 1, 9, 10, 11)), rnd.choice(SRCS),
                              rnd.choice((0, 0, 0, 1, -1, 2, -2, 3)),
                              rnd.choice((0, 1, -1, 2, 3, 16, 32, 64))))
        assert _fast(insns) == _reference(insns), insns


def test_empty_program_is_refused_as_validate_refuses_it():
    with pytest.raises(JitError, match="empty program"):
        jit_x86._scan([], False)


def test_unsupported_table_matches_the_full_test():
    """``unsupported_reason`` looks only at opcodes ``_SUSPECT`` flags: every instruction
    the full test refuses has a flagged opcode."""
    def full(insn: Insn, xlated: bool) -> bool:
        return (isa.is_arena_access(insn) or isa.is_addr_space_cast(insn)
                or (xlated and isa.is_arena_zext(insn))
                or (insn.cls in (isa.JMP, isa.JMP32) and insn.op not in jit_x86._JMP_OPS)
                or (insn.cls in (isa.ALU, isa.ALU64) and insn.op not in jit_x86._ALU_OPS))
    for opcode, off, xlated in itertools.product(range(256), (0, 1, 8, isa.ARENA_ZEXT),
                                                 (False, True)):
        insn = Insn(opcode, 1, 2, off, 1)
        if full(insn, xlated):
            assert jit_x86._SUSPECT[xlated][opcode], (insn, xlated)
            program = isa.Program("p", [Insn(isa.ALU64 | isa.MOV), insn, Insn(isa.OP_EXIT)],
                                  arena_xlated=xlated)
            assert jit_x86.unsupported_reason(program) is not None


def test_bounds_table_is_the_bound_of_each_opcode():
    for opcode, checked in itertools.product(range(256), (False, True)):
        insn = Insn(opcode, 3, 4, 5, 6)
        assert jit_x86._BOUNDS[checked][opcode] == jit_x86._bound(insn, checked)


def _no_calls(_index: int):
    raise JitError("no calls here")


def test_the_scans_facts_are_the_first_pass_of_a_one_function_program():
    """What ``_scan`` notes on its way (registers named, calls, jumps' targets, loop heads
    and back edges, exits) is what the translator's own first pass over the function
    finds, for random programs that the table clears (jumps both ways, lddw with and
    without odd second slots, packet loads, calls of every kind, exits)."""
    rnd = random.Random(23)
    opcodes = [op for op in range(256) if jit_x86._SCAN[op]] + [isa.OP_LDDW] * 6
    compared = 0
    for _ in range(4_000):
        n = rnd.randrange(1, 14)
        insns = []
        for pc in range(n):
            opcode = rnd.choice(opcodes)
            off = rnd.choice((0, 0, 1, -1, 2, -3, 8))
            insns.append(Insn(opcode, rnd.choice((0, 1, 6, 9, 10)), rnd.choice((0, 1, 6, 7, 10)),
                              off if opcode & 7 not in (isa.JMP, isa.JMP32) else
                              rnd.randrange(-pc - 1, n - pc), rnd.choice((0, 1, 16, 32, 64))))
        try:
            placeholder, starts, facts = jit_x86._scan(insns, False)
        except JitError:                    # refused by validate
            continue
        if facts is None or len(starts) != 1:
            continue
        t = jit_x86._Translator(isa.Program("p", insns),
                                Bindings(helper=_no_calls, kfunc=_no_calls), {})
        assert facts == t.first_pass(0, n), insns
        compared += 1
    assert compared > 500


def test_a_program_the_table_does_not_clear_has_no_facts():
    """(An arena program, or a form only ``validate`` judges: the translator makes its own
    first pass.)"""
    plain = [Insn(isa.ALU64 | isa.MOV, 0), Insn(isa.OP_EXIT)]
    assert jit_x86._scan(plain, False)[2] is not None
    assert jit_x86._scan(plain, True)[2] is None
    atomic = [Insn(isa.STX | isa.ATOMIC | isa.DW, 10, 1, -8, isa.ATOMIC_ADD)] + plain
    assert jit_x86._scan(atomic, False)[2] is None
