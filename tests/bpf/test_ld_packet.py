"""LD_ABS / LD_IND (legacy socket-filter packet loads, #20): the interpreter and the JIT
load big-endian values at r6 + offset, bounded by the run's data length (r2 at entry),
and end the program with 0 outside it, as the kernel's skb load helpers do."""

from __future__ import annotations

import pytest

from uringbpf.bpf import helpers, isa, jit
from uringbpf.bpf.asm import assemble
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.memory import AddressSpace, Buffer

DATA = bytes(range(0x10, 0x50))      # 64 bytes


def _engines(text: str, buf: Buffer):
    program = isa.Program("t", assemble(text))
    rt = helpers.Runtime(mem=AddressSpace())
    rt.mem.add_buffer(buf, False, "data")   # the interpreter checks every access
    interp = Interpreter(program, rt)
    fn = jit.compile(program)
    return [interp.run, fn]


def _run_both(text: str, data: bytes = DATA, length: int | None = None, r3: int = 0) -> int:
    buf = Buffer(max(len(data), 1), data)
    n = len(data) if length is None else length
    results = {run(buf.addr, n, r3) for run in _engines(text, buf)}
    assert len(results) == 1, results      # interpreter and JIT agree
    return results.pop()


@pytest.mark.parametrize("size,insn", [(1, "ldabsb"), (2, "ldabsh"), (4, "ldabsw")])
@pytest.mark.parametrize("off", [0, 13, 60])
def test_ld_abs_is_big_endian_at_the_offset(size, insn, off):
    got = _run_both(f"mov %r6, %r1\n{insn} {off}\nexit")
    if off + size <= len(DATA):
        assert got == int.from_bytes(DATA[off:off + size], "big")
    else:
        assert got == 0


@pytest.mark.parametrize("off", [61, 62, 63, 64, 1 << 20, 0x7FFFFFFF, -1, -4])
def test_ld_abs_past_the_data_ends_the_program_with_zero(off):
    # r0 = 7 would be returned if the program went on
    text = f"mov %r6, %r1\nldabsw {off}\nmov %r0, 7\nexit"
    assert _run_both(text) == 0


def test_the_bound_is_the_length_not_the_buffer():
    # the buffer has 64 bytes but the run says 8: byte 8 is outside
    assert _run_both("mov %r6, %r1\nldabsb 7\nexit", length=8) == DATA[7]
    assert _run_both("mov %r6, %r1\nldabsb 8\nmov %r0, 9\nexit", length=8) == 0


@pytest.mark.parametrize("r3,imm", [(0, 0), (10, 2), (70, -10), (2**32 + 5, 0), (3, -3)])
def test_ld_ind_adds_the_register_as_a_32_bit_int(r3, imm):
    got = _run_both(f"mov %r6, %r1\nldindh %r3, {imm}\nexit", r3=r3)
    off = ((r3 + imm) & 0xFFFFFFFF)
    off = off - (1 << 32) if off & 0x80000000 else off
    if 0 <= off and off + 2 <= len(DATA):
        assert got == int.from_bytes(DATA[off:off + 2], "big")
    else:
        assert got == 0


def test_ld_ind_negative_sum_ends_the_program():
    assert _run_both("mov %r6, %r1\nmov %r3, 2\nldindw %r3, -3\nmov %r0, 1\nexit") == 0


def test_callee_saved_registers_survive_and_r0_is_the_value():
    text = """
        mov %r6, %r1
        mov %r7, 100
        ldabsb 1
        add %r0, %r7
        exit
    """
    assert _run_both(text) == DATA[1] + 100
