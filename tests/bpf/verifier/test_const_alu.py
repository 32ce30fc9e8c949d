"""The verifier's constant shortcuts (transfer._const_alu, _const_taken) against the domain.

``_const_alu`` computes ``a op b`` for two constant scalars directly instead of through
the range/tnum domain (scalar_alu): a loop counter makes a new constant every iteration.
Its result must be exactly the register the domain makes, for every operation and width,
and it must decline (None) what makes no constant: division, modulo and shifts by the
width or more (for ALU32 a shift amount is the whole 64-bit source).  Likewise
``_const_taken`` decides a conditional jump on two constants as the domain does.
"""

from __future__ import annotations

import random

import pytest

from uringbpf.bpf import isa
from uringbpf.bpf.verifier import scalar as sc
from uringbpf.bpf.verifier.common import _JMP_TO_CMP
from uringbpf.bpf.verifier.transfer import (
    _const_alu, _const_taken, _scalar_alu_reg, scalar_alu, scalar_cond)

_OPS = (isa.ADD, isa.SUB, isa.MUL, isa.AND, isa.OR, isa.XOR, isa.LSH, isa.RSH, isa.ARSH,
        isa.DIV, isa.MOD)
_EDGES = (0, 1, 2, 31, 32, 33, 63, 64, 65, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32,
          (1 << 32) + 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, (1 << 64) - 32)


def _values(n: int, seed: int) -> list[tuple[int, int]]:
    rnd = random.Random(seed)
    pairs = [(a, b) for a in _EDGES for b in _EDGES]
    for _ in range(n):
        width = rnd.choice((8, 32, 64))
        pairs.append((rnd.getrandbits(width), rnd.getrandbits(rnd.choice((3, 6, 32, 64)))))
    return pairs


@pytest.mark.parametrize("cls", [isa.ALU64, isa.ALU], ids=["alu64", "alu32"])
@pytest.mark.parametrize("op", _OPS, ids=lambda op: isa.ALU_OP_NAMES[op])
def test_const_alu_equals_the_domain(cls: int, op: int) -> None:
    opcode = cls | op | isa.X
    width = 64 if cls == isa.ALU64 else 32
    for a, b in _values(400, seed=op * 7 + cls):
        general = scalar_alu(opcode, 0, sc.const(a), sc.const(b))
        short = _const_alu(opcode, a, b)
        if short is None:
            # declined only where the domain makes no constant or it is a division
            assert op in (isa.DIV, isa.MOD) or (op in (isa.LSH, isa.RSH, isa.ARSH) and b >= width)
            continue
        assert short.var == general, (hex(a), hex(b))
        assert short.id == 0 and short.off == 0


def test_scalar_alu_reg_takes_the_shortcut_for_constants() -> None:
    # the cached entry point gives the same register as the domain for constants, and
    # still computes non-constant operands through the domain
    add = isa.ALU64 | isa.ADD | isa.X
    assert _scalar_alu_reg(add, 0, sc.const(5), sc.const(7)).var == sc.const(12)
    u8 = sc.urange(0, 255)
    assert _scalar_alu_reg(add, 0, u8, sc.const(1)).var == scalar_alu(add, 0, u8, sc.const(1))
    shift32 = isa.ALU | isa.LSH | isa.X
    # w1 <<= r2 with r2 = 2**32 + 1: the whole source counts, no constant (unknown)
    assert _scalar_alu_reg(shift32, 0, sc.const(3), sc.const((1 << 32) + 1)).var == sc.UNKNOWN


@pytest.mark.parametrize("cls", [isa.JMP, isa.JMP32], ids=["jmp", "jmp32"])
@pytest.mark.parametrize("jop", isa.CONDITIONAL_JUMPS, ids=lambda op: isa.JMP_OP_NAMES[op])
def test_const_compare_equals_the_domain(cls: int, jop: int) -> None:
    # every compare of two constants is decided by the domain, the same way as the shortcut
    opcode = cls | jop | isa.X
    op = _JMP_TO_CMP[jop]
    for a, b in _values(300, seed=jop + cls):
        taken = scalar_cond(opcode, sc.const(a), sc.const(b))[2]
        assert taken is not None
        assert _const_taken(op, a, b, cls == isa.JMP32) == taken, (hex(a), hex(b))


@pytest.mark.parametrize("op", [isa.ADD, isa.SUB, isa.XOR], ids=["add", "sub", "xor"])
def test_any_value_plus_minus_xor_anything_is_any_value(op: int) -> None:
    # the shortcut of _scalar_alu_reg for a fully unknown 64-bit operand is the domain's
    rnd = random.Random(op)
    others = [sc.UNKNOWN, sc.const(0), sc.const(5), sc.const((1 << 64) - 1), sc.urange(0, 255),
              sc.srange(-8, 8), sc.urange(1 << 40, 1 << 41)]
    others += [sc.urange(lo, lo + rnd.getrandbits(20)) for lo in
               (rnd.getrandbits(64) >> 1 for _ in range(20))]
    for src in (isa.X, isa.K):
        opcode = isa.ALU64 | op | src
        for b in others:
            for x, y in ((sc.UNKNOWN, b), (b, sc.UNKNOWN)):
                assert scalar_alu(opcode, 0, x, y) == sc.UNKNOWN
                assert _scalar_alu_reg(opcode, 0, x, y).var == sc.UNKNOWN
    # 32-bit: the result is zero-extended, not any value; no shortcut there
    w = _scalar_alu_reg(isa.ALU | op | isa.X, 0, sc.UNKNOWN, sc.const(1)).var
    assert w == scalar_alu(isa.ALU | op | isa.X, 0, sc.UNKNOWN, sc.const(1)) and w[1] <= 0xFFFFFFFF


def test_clear_memos_empties_the_shared_caches() -> None:
    # bench/load.py times first verifications: after clear_memos nothing computed by an
    # earlier verification is reused
    from uringbpf.bpf.verifier import transfer
    opcode = isa.ALU64 | isa.ADD | isa.X
    _scalar_alu_reg(opcode, 0, sc.urange(0, 255), sc.urange(0, 7))
    transfer.const_imm(12345)
    assert transfer._ALU_MEMO and transfer._CONST_REGS
    transfer.clear_memos()
    assert not transfer._ALU_MEMO and not transfer._CONST_REGS and not transfer._COND_MEMO


def test_an_instruction_stops_using_the_shared_cache_when_it_does_not_pay() -> None:
    # new values every time (an accumulator): after the trial lookups the instruction
    # computes directly and the cache stops growing; equal values keep it looking
    from uringbpf.bpf.verifier import common, transfer
    transfer.clear_memos()
    add = isa.Insn(isa.ALU64 | isa.ADD | isa.X, dst=1, src=2)
    fresh = common._DInsn(add)
    for k in range(3 * common._MEMO_TRIAL):
        a = sc.urange(k, k + 1000)
        r = transfer._insn_alu(fresh, a, sc.urange(0, 7))
        assert r.var == scalar_alu(add.opcode, 0, a, sc.urange(0, 7))
    assert fresh.memo_looks == common._MEMO_TRIAL and fresh.memo_hits == 0
    assert not common.shared_memo_pays(fresh)
    assert len(transfer._ALU_MEMO) == common._MEMO_TRIAL
    # a second copy of the instruction meeting the values already cached (another path
    # through the same code) finds them all, and keeps looking
    again = common._DInsn(add)
    for k in range(3 * common._MEMO_TRIAL):
        a = sc.urange(k % common._MEMO_TRIAL, k % common._MEMO_TRIAL + 1000)
        transfer._insn_alu(again, a, sc.urange(0, 7))
    assert again.memo_looks == 3 * common._MEMO_TRIAL
    assert again.memo_hits == again.memo_looks
    assert common.shared_memo_pays(again)
