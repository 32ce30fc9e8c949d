"""Assembler and disassembler: round trips over every opcode, both dialects, and errors."""

from __future__ import annotations

import io
import sys

import pytest

from uringbpf.bpf import asm, disasm, isa
from uringbpf.bpf.isa import Insn


def every_instruction() -> list[list[Insn]]:
    """One or more instances of every valid opcode (and of each imm/off/src variant)."""
    out: list[list[Insn]] = []
    for opcode in range(256):
        cls = opcode & 7
        variants: list[Insn] = []
        if cls in (isa.ALU, isa.ALU64):
            op = opcode & 0xF0
            if op == isa.END:
                variants = [Insn(opcode, 3, 0, 0, w) for w in (16, 32, 64)]
            elif op == isa.NEG:
                variants = [Insn(opcode, 4)]
            elif opcode & isa.X:
                variants = [Insn(opcode, 2, 7)]
                if op in (isa.DIV, isa.MOD):
                    variants.append(Insn(opcode, 2, 7, 1))
                if op == isa.MOV:
                    variants += [Insn(opcode, 1, 9, o) for o in (8, 16, 32)]
            else:
                variants = [Insn(opcode, 5, 0, 0, v) for v in (0, 1, -1, 123456, -(1 << 31), 0x7FFFFFFF)]
                if op in (isa.DIV, isa.MOD):
                    variants.append(Insn(opcode, 5, 0, 1, -3))
        elif cls in (isa.JMP, isa.JMP32):
            if opcode == isa.OP_CALL:
                variants = [Insn(opcode, 0, 0, 0, 1), Insn(opcode, 0, 1, 0, -3),
                            Insn(opcode, 0, 2, 0, 4)]
            elif opcode == isa.OP_CALL | isa.X:
                variants = [Insn(opcode, 6)]
            elif opcode == isa.OP_JA:
                variants = [Insn(opcode, off=v) for v in (0, 3, -1)]
            elif opcode == isa.OP_EXIT:
                variants = [Insn(opcode)]
            elif opcode == isa.OP_JA32:
                variants = [Insn(opcode, imm=v) for v in (0, 5, -70000)]
            elif opcode & isa.X:
                variants = [Insn(opcode, 1, 2, -4)]
            else:
                variants = [Insn(opcode, 1, 0, 3, v) for v in (0, -1, 0x7FFFFFFF)]
        elif opcode == isa.OP_LDDW:
            out.append(isa.lddw_pair(2, 0x1122334455667788))
            out.append(isa.lddw_pair(0, 5))
            out.append(isa.lddw_pair(3, isa.U64))
            for src in range(1, 7):
                with_off = src in (isa.PSEUDO_MAP_VALUE, isa.PSEUDO_MAP_IDX_VALUE)
                out.append(isa.lddw_pair(1, ((4 << 32) if with_off else 0) | 2, src))
            continue
        elif cls == isa.LD:
            variants = [Insn(opcode, 0, 0, 0, 8)] if opcode & 0xE0 == isa.ABS else [Insn(opcode, 0, 3, 0, -2)]
        elif cls == isa.LDX:
            variants = [Insn(opcode, 1, 10, -8), Insn(opcode, 0, 1, 0), Insn(opcode, 9, 2, 32767)]
        elif cls == isa.ST:
            variants = [Insn(opcode, 10, 0, -16, -5)]
        elif cls == isa.STX:
            if opcode & 0xE0 == isa.ATOMIC:
                variants = [Insn(opcode, 10, 3, -8, op) for op in sorted(isa.ATOMIC_OPS)]
            else:
                variants = [Insn(opcode, 1, 4, 12)]
        variants = [v for v in variants if isa.invalid_reason(v) is None]
        out.extend([v] for v in variants)
    return out


CASES = every_instruction()


def test_every_opcode_is_covered():
    opcodes = {case[0].opcode for case in CASES}
    # ALU 27 + ALU64 26 + JMP 26 + JMP32 23 + LD 7 (lddw, abs/ind b/h/w) + LDX 7 + ST 4 + STX 6
    assert len(opcodes) == 126
    for cls in range(8):
        assert any(op & 7 == cls for op in opcodes)
    assert isa.OP_JA32 in opcodes and isa.OP_CALL | isa.X in opcodes
    assert any(c[0].cls == isa.LDX and c[0].mode == isa.MEMSX for c in CASES)


@pytest.mark.parametrize("style", ["kernel", "ubpf"])
def test_round_trip_every_opcode(style):
    for case in CASES:
        code = isa.encode(case)
        text = disasm.disassemble(isa.decode(code), style)
        again = asm.assemble(text)
        assert isa.encode(again) == code, f"{text!r} -> {again}"


def test_round_trip_asm_encode_disasm_asm():
    src = """
        mov %r6, %r1
        lddw %r2, 0x8000000000000001
        start:
        ldxb %r3, [%r6+1]
        jsgt32 %r3, -5, next
        lock fetch xor32 [%r10-8], %r3
        next:
        movsx832 %r4, %r3
        sdiv %r4, -3
        call local sub
        ja32 start
        exit
        sub:
        bswap16 %r1
        mov %r0, %r1
        exit
    """
    first = asm.assemble(src)
    kernel = disasm.disassemble(first)
    ubpf = disasm.disassemble(first, "ubpf")
    assert isa.encode(asm.assemble(kernel)) == isa.encode(first)
    assert isa.encode(asm.assemble(ubpf)) == isa.encode(first)
    with_bytes = disasm.disassemble(first, show_bytes=True)
    assert isa.encode(asm.assemble(with_bytes)) == isa.encode(first)


def test_kernel_style_text():
    ins = asm.assemble("""
        w1 += w2
        r0 = *(u32 *)(r1 + 4)
        *(u64 *)(r10 - 8) = r1
        if r1 s< 5 goto +2
        lock *(u64 *)(r10 - 8) += r1
        r0 = (s16)r1
        r1 = be16 r1
        call bpf_map_lookup_elem#1
        r1 = 0x1122334455667788 ll
        exit
    """)
    text = disasm.disassemble(ins, show_pc=False)
    assert text.splitlines()[:6] == [
        "w1 += w2", "r0 = *(u32 *)(r1 + 4)", "*(u64 *)(r10 - 8) = r1", "if r1 s< 5 goto +2",
        "lock *(u64 *)(r10 - 8) += r1", "r0 = (s16)r1"]
    assert ins[7].opcode == isa.OP_CALL and ins[7].imm == 1
    assert ins[8].imm64 == 0x1122334455667788


def test_labels_exit_label_and_offsets():
    ins = asm.assemble("jeq %r1, 0, exit\nmov %r0, 1\nexit\nmov %r0, 2\nexit")
    assert ins[0].off == 1  # the first exit defines "exit"
    ins = asm.assemble("a: b: ja a\nja +0\nja -2")
    assert [i.off for i in ins] == [-1, 0, -2]
    ins = asm.assemble("lddw %r1, func(f)\nexit\nf:\nexit")
    assert ins[0].src == isa.PSEUDO_FUNC and ins[0].imm64 & 0xFFFFFFFF == 2


@pytest.mark.parametrize("text, message", [
    ("bogus %r0", "invalid mnemonic"),
    ("mov %r16, 1", "invalid register"),
    ("mov %r1", "takes 2 operand"),
    ("ja nowhere", "undefined label"),
    ("mov %r0, 0x100000000", "out of 32-bit range"),
    ("mov %r0, -2147483649", "out of 32-bit range"),
    ("ldxw %r0, [%r1+40000]", "out of 16-bit range"),
    ("ldxw %r0, %r1", "invalid memory operand"),
    ("lock nand [%r1], %r2", "invalid atomic"),
    ("call sideways 3", "invalid call mode"),
    ("l:\nl:\nexit", "duplicate label"),
    ("ldxsdw %r0, [%r1]", "does not exist"),
    ("r1 = be16 r2", "in place"),
])
def test_assembler_errors(text, message):
    with pytest.raises(asm.AsmError) as info:
        asm.assemble(text)
    assert message in str(info.value)
    assert "line" in str(info.value)


def test_wide_immediates_truncate_only_when_asked():
    """The .data parser mimics bpf_conformance (low 32 bits); plain assembly refuses."""
    text = "mov %r0, 0x1ffffff80\njne %r0, 0xffffffffffffff80, +1\nexit"
    with pytest.raises(asm.AsmError):
        asm.assemble(text)
    insns = asm.assemble(text, truncate_wide_imm=True)
    assert [i.imm for i in insns[:2]] == [-128, -128]
    # The mode does not leak into the next call.
    with pytest.raises(asm.AsmError):
        asm.assemble("mov %r0, 0x100000000")


def test_invalid_instructions_disassemble_without_crashing():
    text = disasm.format_insn(Insn(0xFF))
    assert text.startswith("<invalid")
    assert disasm.format_insn(Insn(isa.ALU | isa.END, 1, imm=17)).startswith("<invalid")


def test_cli_asm_and_disasm(tmp_path, capsys, monkeypatch):
    from uringbpf import tools

    src = tmp_path / "p.s"
    src.write_text("mov %r0, 42\nexit\n")
    out = tmp_path / "p.bin"
    assert tools.main(["asm", str(src), "-o", str(out)]) == 0
    assert out.read_bytes() == isa.encode([Insn(isa.ALU64 | isa.MOV, 0, imm=42), Insn(isa.OP_EXIT)])
    assert tools.main(["disasm", str(out)]) == 0
    assert capsys.readouterr().out.split() == ["0:", "r0", "=", "42", "1:", "exit"]
    hexfile = tmp_path / "p.hex"
    assert tools.main(["asm", str(src), "--hex", "-o", str(hexfile)]) == 0
    assert hexfile.read_text().startswith("b7 00 00 00 2a 00 00 00")
    assert tools.main(["disasm", str(hexfile), "--style", "ubpf"]) == 0
    assert "mov %r0, 42" in capsys.readouterr().out
    bad = tmp_path / "bad.s"
    bad.write_text("mov %r0\n")
    assert tools.main(["asm", str(bad)]) == 1
    assert "line 1" in capsys.readouterr().err
    ragged = tmp_path / "r.bin"
    ragged.write_bytes(b"\x95\x00\x00")
    assert tools.main(["disasm", str(ragged)]) == 1


def test_cli_dispatch_through_uringbpf_command(tmp_path, capsys):
    from uringbpf import tools

    src = tmp_path / "p.s"
    src.write_text("r0 = 7\nexit\n")
    out = tmp_path / "p.bin"
    assert tools.main(["asm", str(src), "-o", str(out)]) == 0
    assert tools.main(["disasm", str(out)]) == 0
    assert "r0 = 7" in capsys.readouterr().out


C_PROGRAM = r"""
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

static __attribute__((noinline)) __u64 mix(__u64 a, __u64 b)
{
	return (a * 31) ^ (b >> 3);
}

SEC("syscall")
int entry(void *ctx)
{
	__u64 acc = 7;
	for (int i = 0; i < 10; i++)
		acc = mix(acc, (__u64)i << 40);
	return (int)(acc & 0x7fffffff);
}
"""


def test_disasm_of_a_clang_object_reassembles_and_runs(tmp_path, capsys):
    """uringbpf cc -> ELF -> uringbpf disasm -> assemble -> same code -> interpreter."""
    from uringbpf import tools
    from uringbpf.bpf.interp import Interpreter
    from uringbpf.bpf.object import BpfObject

    src = tmp_path / "mix.bpf.c"
    src.write_text(C_PROGRAM)
    obj_path = tmp_path / "mix.bpf.o"
    assert tools.main(["cc", str(src), "-o", str(obj_path)]) == 0
    assert tools.main(["disasm", str(obj_path)]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("entry:")
    assert "call pc" in listing  # the noinline subprogram is a BPF-to-BPF call
    obj = BpfObject.open(obj_path)
    try:
        prog = obj.programs["entry"].program
        body = listing.split(":", 1)[1].split("\n", 1)[1]
        assert isa.encode(asm.assemble(body)) == isa.encode(prog.insns)
        acc = 7
        for i in range(10):
            acc = ((acc * 31) ^ ((i << 40) >> 3)) & isa.U64
        assert Interpreter(prog.insns).run() == acc & 0x7FFFFFFF
    finally:
        obj.close()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_WORDS = st.sampled_from([
    "mov", "add32", "ldxw", "lock", "fetch", "xchg", "call", "local", "ja", "ja32", "%r1", "r2",
    "w3", "[%r1+4]", "[%r10-8]", "+3", "-1", "0x10", "-0x5", "lddw", "map_idx(1)+4", "func(x)",
    "x:", "=", "+=", "*(u32 *)(r1 + 4)", "if", "goto", "exit", ",", "be16", "(s8)", "ll", "#",
    "callx", "s>>=", "atomic_fetch_add((u64 *)(r1 + 0),", "r2)", "cmpxchg_64(r1 + 0,", "skb[4]",
    "99999999999999999999", "", "lock *(u64 *)(r1 + 0)"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_WORDS, max_size=7).map(" ".join), max_size=5).map("\n".join))
def test_assembler_garbage_gives_asm_error_only(text):
    try:
        asm.assemble(text)
    except asm.AsmError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=8, max_size=64).filter(lambda b: len(b) % 8 == 0))
def test_disassembler_never_crashes_on_random_bytes(code):
    try:
        insns = isa.decode(code)
    except isa.DecodeError:
        return
    for style in ("kernel", "ubpf"):
        text = disasm.disassemble(insns, style)
        assert text.count("\n") == sum(1 for i, _ in enumerate(insns)) - sum(
            1 for j, insn in enumerate(insns) if j and insns[j - 1].is_lddw)
