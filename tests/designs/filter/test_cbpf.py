"""The classic-BPF VM: the kernel's structural checks and the interpreter's semantics."""

from __future__ import annotations

import errno
import struct

import pytest
from hypothesis import given, strategies as st

from uringbpf.designs.filter import cbpf
from uringbpf.designs.filter.cbpf import (A, ABS, ADD, ALU, AND, B, CbpfError, DIV, H, IMM, IND, JA,
                                   JEQ, JGE, JGT, JMP, JSET, K, LD, LDX, LEN, LSH, MEM, MISC, MOD,
                                   MSH, MUL, NEG, OR, RET, RSH, ST, STX, SUB, TAX, TXA, W, X, XOR,
                                   SockFilter, jump, stmt)


def run(insns, ctx=b"", packet=None):
    return cbpf.Program(insns).run(ctx, packet)


def test_pack_unpack_roundtrip_is_struct_sock_filter():
    insns = [jump(JMP | JEQ | K, 0xDEADBEEF, 1, 2), stmt(RET | K, 7)]
    raw = cbpf.pack(insns)
    assert raw[:8] == struct.pack("<HBBI", JMP | JEQ | K, 1, 2, 0xDEADBEEF)
    assert cbpf.unpack(raw) == insns
    with pytest.raises(CbpfError):
        cbpf.unpack(raw[:7])


@pytest.mark.parametrize("insns", [
    [],                                                   # empty
    [stmt(LD | IMM, 1)],                                  # no final return
    [SockFilter(0xFFFF), stmt(RET | K)],                  # unknown opcode
    [stmt(ALU | DIV | K, 0), stmt(RET | A)],              # constant division by zero
    [stmt(ALU | MOD | K, 0), stmt(RET | A)],
    [stmt(ALU | LSH | K, 32), stmt(RET | A)],             # shift too wide
    [stmt(ST, 16), stmt(RET | A)],                        # scratch word out of range
    [stmt(JMP | JA, 1), stmt(RET | A)],                   # jump past the end
    [jump(JMP | JEQ | K, 0, 0, 1), stmt(RET | A)],        # false branch past the end
    [stmt(LD | MEM, 3), stmt(RET | A)],                   # load before store
    [jump(JMP | JEQ | K, 0, 0, 1), stmt(ST, 2), stmt(LD | MEM, 2), stmt(RET | A)],  # one path
    [stmt(RET | K)] * (cbpf.MAXINSNS + 1),               # too long
])
def test_check_classic_refuses_with_einval(insns):
    with pytest.raises(CbpfError) as exc:
        cbpf.Program(insns)
    assert exc.value.errno == errno.EINVAL


def test_store_on_every_path_makes_the_load_legal():
    prog = [jump(JMP | JEQ | K, 5, 0, 2), stmt(ST, 2), stmt(JMP | JA, 1), stmt(ST, 2),
            stmt(LD | MEM, 2), stmt(RET | A)]
    assert run(prog) == 0


def test_alu_is_32_bit_and_wraps():
    assert run([stmt(LD | IMM, 0xFFFFFFFF), stmt(ALU | ADD | K, 2), stmt(RET | A)]) == 1
    assert run([stmt(ALU | SUB | K, 1), stmt(RET | A)]) == 0xFFFFFFFF
    assert run([stmt(LD | IMM, 0x10000), stmt(ALU | MUL | K, 0x10000), stmt(RET | A)]) == 0
    assert run([stmt(LD | IMM, 5), stmt(ALU | NEG), stmt(RET | A)]) == 0xFFFFFFFB
    assert run([stmt(LD | IMM, 17), stmt(ALU | DIV | K, 5), stmt(RET | A)]) == 3
    assert run([stmt(LD | IMM, 17), stmt(ALU | MOD | K, 5), stmt(RET | A)]) == 2
    assert run([stmt(LD | IMM, 0xF0), stmt(ALU | AND | K, 0x3C), stmt(ALU | OR | K, 1),
                stmt(ALU | XOR | K, 0x100), stmt(RET | A)]) == 0x131
    assert run([stmt(LD | IMM, 1), stmt(ALU | LSH | K, 31), stmt(ALU | RSH | K, 30),
                stmt(RET | A)]) == 2


def test_x_register_and_division_by_x_zero_returns_zero():
    prog = [stmt(LDX | IMM, 0), stmt(LD | IMM, 9), stmt(ALU | DIV | X), stmt(RET | K, 77)]
    assert run(prog) == 0
    prog = [stmt(LDX | IMM, 3), stmt(LD | IMM, 9), stmt(ALU | DIV | X), stmt(RET | A)]
    assert run(prog) == 3
    # shifts by X use the low five bits, like the eBPF ALU32 the kernel runs
    prog = [stmt(LDX | IMM, 33), stmt(LD | IMM, 1), stmt(ALU | LSH | X), stmt(RET | A)]
    assert run(prog) == 2
    prog = [stmt(LD | IMM, 4), stmt(MISC | TAX), stmt(LD | IMM, 0), stmt(MISC | TXA),
            stmt(ALU | ADD | X), stmt(RET | A)]
    assert run(prog) == 8


@pytest.mark.parametrize("code,a,k,taken", [
    (JEQ, 5, 5, True), (JEQ, 5, 6, False), (JGT, 6, 5, True), (JGT, 5, 5, False),
    (JGE, 5, 5, True), (JGE, 4, 5, False), (JSET, 6, 2, True), (JSET, 4, 3, False),
])
def test_conditional_jumps(code, a, k, taken):
    prog = [stmt(LD | IMM, a), jump(JMP | code | K, k, 0, 1), stmt(RET | K, 1), stmt(RET | K, 2)]
    assert run(prog) == (1 if taken else 2)
    prog = [stmt(LD | IMM, a), stmt(LDX | IMM, k), jump(JMP | code | X, 0, 0, 1),
            stmt(RET | K, 1), stmt(RET | K, 2)]
    assert run(prog) == (1 if taken else 2)


def test_scratch_memory():
    prog = [stmt(LD | IMM, 11), stmt(ST, 15), stmt(LDX | IMM, 4), stmt(STX, 0),
            stmt(LD | MEM, 0), stmt(LDX | MEM, 15), stmt(ALU | MUL | X), stmt(RET | A)]
    assert run(prog) == 44


def test_packet_loads_are_big_endian_and_out_of_range_returns_zero():
    pkt = bytes([0x45, 0x01, 0x02, 0x03, 0x04, 0x05])
    assert run([stmt(LD | W | ABS, 1), stmt(RET | A)], pkt) == 0x01020304
    assert run([stmt(LD | H | ABS, 4), stmt(RET | A)], pkt) == 0x0405
    assert run([stmt(LDX | IMM, 2), stmt(LD | B | IND, 3), stmt(RET | A)], pkt) == 5
    assert run([stmt(LD | W | ABS, 3), stmt(RET | K, 9)], pkt) == 0
    assert run([stmt(LD | W | LEN), stmt(RET | A)], pkt) == 6
    assert run([stmt(LDX | B | MSH, 0), stmt(MISC | TXA), stmt(RET | A)], pkt) == 20


def test_context_loads_after_rewrite_are_native_endian():
    ctx = struct.pack("<II", 0x11223344, 0xAABBCCDD)
    prog = cbpf.Program([stmt(LD | W | ABS, 4), stmt(RET | A)],
                        transform=lambda ins: [SockFilter(cbpf.CTX_LOAD, 0, 0, 4), ins[1]])
    assert prog.run(ctx) == 0xAABBCCDD


def test_ret_k_and_ret_a():
    assert run([stmt(RET | K, 0xFFFFFFFF)]) == 0xFFFFFFFF
    assert run([stmt(LD | IMM, 3), stmt(RET | A)]) == 3


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20), st.integers(0, 2**32 - 1))
def test_allow_list_filter_accepts_exactly_its_members(allowed, value):
    """A JEQ chain compiled from a set accepts a value iff it is in the set."""
    n = len(allowed)
    prog = [stmt(LD | IMM, value)]
    for i, v in enumerate(allowed):
        prog.append(jump(JMP | JEQ | K, v, n - i, 0))
    prog += [stmt(RET | K, 0), stmt(RET | K, 1)]
    assert run(prog) == (1 if value in allowed else 0)
