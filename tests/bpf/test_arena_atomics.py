"""Atomics through arena pointers (the kernel's BPF_PROBE_ATOMIC, x86-64 JIT since 6.9).

What Linux 7.2 (root, tools/kernel-vm guest) accepts on an arena pointer, measured with
raw socket filters like the ones below: add/or/and/xor without FETCH, fetch_add, xchg and
cmpxchg, 32 and 64 bits, at any offset (no alignment check: check_ptr_alignment skips
PTR_TO_ARENA); fetch_and/fetch_or/fetch_xor are refused ("BPF_ATOMIC stores into R1 arena
is not allowed", x86's bpf_jit_supports_insn), 8/16-bit ones too ("invalid atomic operand
size").  Both engines do the operation at arena window + low 32 bits + off, never at the
register's value, so no address leaves the window and its guards."""

from __future__ import annotations

import re
import struct

import pytest

from uringbpf.bpf import isa, jit, maps
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.isa import Insn
from uringbpf.bpf.maps import BPF_F_MMAPABLE, Map
from uringbpf.bpf.memory import AddressSpace
from uringbpf.bpf.verifier import verify
from uringbpf.errors import BpfVerifierError

ENGINES = ["interp", "jit"]
M64 = (1 << 64) - 1
ADD, OR, AND, XOR, FETCH = isa.ATOMIC_ADD, isa.ATOMIC_OR, isa.ATOMIC_AND, isa.ATOMIC_XOR, isa.FETCH
ACCEPTED = {"add": ADD, "or": OR, "and": AND, "xor": XOR, "fetch_add": ADD | FETCH,
            "xchg": isa.XCHG, "cmpxchg": isa.CMPXCHG}
REFUSED = {"fetch_or": OR | FETCH, "fetch_and": AND | FETCH, "fetch_xor": XOR | FETCH}
INITIAL = 0xA5A5A5A5F0F0FFFF
OPERAND = 0x123456789ABCDEF1
OUT = 0x100        # where the programs leave what they saw (arena page 0)


def lddw(dst: int, value: int, src: int = 0) -> list[Insn]:
    value &= M64
    return [Insn(isa.OP_LDDW, dst, src, 0, isa.to_s32(value & 0xFFFFFFFF), value),
            Insn(0, 0, 0, 0, isa.to_s32(value >> 32))]


def cast(reg: int) -> Insn:
    """addr_space_cast(reg, 0, 1): any number becomes an arena pointer."""
    return Insn(isa.ALU64 | isa.MOV | isa.X, reg, reg, isa.ADDR_SPACE_CAST, 1)


def atomic_program(base: int, off: int, size: int, imm: int, r0: int = 0) -> list[Insn]:
    """Store INITIAL (8 bytes) at arena pointer ``base`` + off, do the atomic with
    OPERAND in r3 (and ``r0`` in r0), then leave the 8 bytes there, r3 and r0 at OUT."""
    return (lddw(2, 0, isa.PSEUDO_MAP_IDX)                     # names the arena
            + lddw(1, base) + [cast(1)] + lddw(4, INITIAL)
            + [Insn(isa.STX | isa.MEM | isa.DW, 1, 4, off)]
            + lddw(3, OPERAND) + lddw(0, r0)
            + [Insn(isa.STX | isa.ATOMIC | size, 1, 3, off, imm),
               Insn(isa.LDX | isa.MEM | isa.DW, 5, 1, off),
               Insn(isa.MOV | isa.ALU64 | isa.K, 6, 0, 0, OUT), cast(6),
               Insn(isa.STX | isa.MEM | isa.DW, 6, 5, 0),
               Insn(isa.STX | isa.MEM | isa.DW, 6, 3, 8),
               Insn(isa.STX | isa.MEM | isa.DW, 6, 0, 16),
               Insn(isa.MOV | isa.ALU64 | isa.K, 0, 0, 0, 0), Insn(isa.OP_EXIT)])


def run(insns: list[Insn], engine: str) -> tuple[int, int, int]:
    """Verify and run on ``engine`` with a fresh arena: (memory, r3, r0) after the atomic."""
    arena = Map("arena", maps.MAP_TYPE_ARENA, 0, 0, 4, BPF_F_MMAPABLE)
    try:
        prog = isa.Program("t", insns, section="socket", prog_type="socket_filter",
                           maps=[arena])
        verify(prog)
        rt = Runtime(mem=AddressSpace(), maps=[arena])
        for r in arena.regions():
            rt.mem.add(r.base, r.size, r.writable, r.name)
        if engine == "interp":
            assert Interpreter(prog, rt).run() == 0
        else:
            fn = jit.compile(prog, rt)
            try:
                assert fn() == 0
            finally:
                fn.close()
        mem = arena.memory()
        out = struct.unpack_from("<3Q", mem, OUT)
        del mem
        return out
    finally:
        arena.close()


def expected(size: int, imm: int, r0: int) -> tuple[int, int, int]:
    """(memory's 8 bytes, r3, r0) after the operation, from the ISA's definition."""
    bits = 32 if size == isa.W else 64
    mask = (1 << bits) - 1
    old, src = INITIAL & mask, OPERAND & mask
    base = imm & ~FETCH
    if imm == isa.CMPXCHG:
        new = src if old == r0 & mask else old
    elif imm == isa.XCHG:
        new = src
    else:
        new = {ADD: (old + src) & mask, OR: old | src, AND: old & src, XOR: old ^ src}[base]
    mem = (INITIAL & ~mask) | new            # a 32-bit op leaves the upper half alone
    r3 = old if imm & FETCH and imm != isa.CMPXCHG else OPERAND
    return mem, r3, old if imm == isa.CMPXCHG else r0


# where: (the number cast into the arena, the instruction's off)
PLACES = {
    "page2": (0x2000, 8),
    "upper_half_ignored": (0x1234567800002000, 8),
    "misaligned": (0x2003, 0),
    "crosses_a_line": (0x203D, 0),                 # 0x203d..0x2044: two cache lines
    "top_plus_max": (0xFFFFFFFF, 32767 - 8),       # the last 8 bytes before +32767
    "top_plus_32767": (0xFFFFFFFF, 32767),         # past the 4 GiB: the upper guard
    "zero_minus_32767": (0, -32767),               # below the window: the lower guard
    "zero_minus_32768": (0xFFFFFFFF00000000, -32768),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("size", [isa.W, isa.DW], ids=["w", "dw"])
@pytest.mark.parametrize("op", sorted(ACCEPTED))
def test_each_op_and_size(engine, size, op):
    imm = ACCEPTED[op]
    # cmpxchg succeeds here: r0's low half (upper half junk for 32 bits) is the old value
    r0 = (0xDEAD << 48) | (INITIAL & 0xFFFFFFFF) if size == isa.W else INITIAL
    want = expected(size, imm, r0 if imm == isa.CMPXCHG else 0x77)
    got = run(atomic_program(0x2000, 16, size, imm, r0 if imm == isa.CMPXCHG else 0x77), engine)
    assert got == want


def test_expected_values_spelled_out():
    """A few of the model's values written out, so a wrong model cannot agree with itself."""
    assert expected(isa.DW, ADD | FETCH, 0) == (0xB7D9FC1E8BADDEF0, INITIAL, 0)
    assert expected(isa.W, ADD, 0) == (0xA5A5A5A58BADDEF0, OPERAND, 0)
    assert expected(isa.W, ADD | FETCH, 0) == (0xA5A5A5A58BADDEF0, 0xF0F0FFFF, 0)
    assert expected(isa.W, isa.XCHG, 0) == (0xA5A5A5A59ABCDEF1, 0xF0F0FFFF, 0)
    assert expected(isa.DW, AND, 0) == (0x00240420_90B0DEF1, OPERAND, 0)
    assert expected(isa.W, isa.CMPXCHG, 5) == (INITIAL, OPERAND, 0xF0F0FFFF)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("size", [isa.W, isa.DW], ids=["w", "dw"])
def test_cmpxchg_success_and_failure(engine, size):
    mask = 0xFFFFFFFF if size == isa.W else M64
    hit = run(atomic_program(0x3000, 0, size, isa.CMPXCHG, INITIAL), engine)
    assert hit == ((INITIAL & ~mask) | (OPERAND & mask), OPERAND, INITIAL & mask)
    miss = run(atomic_program(0x3000, 0, size, isa.CMPXCHG, INITIAL + 1), engine)
    assert miss == (INITIAL, OPERAND, INITIAL & mask)     # unchanged, r0 = the old value


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("op", ["fetch_add", "cmpxchg", "cmpxchg_miss", "xchg", "xor"])
def test_window_edges_and_alignment(engine, place, op):
    """Every address is window + low 32 bits + off: the upper half of the register never
    counts, offsets past both ends land in the guards, misaligned ones work (a locked op
    that would straddle a cache line is done unlocked by the JIT, same result)."""
    base, off = PLACES[place]
    imm = ACCEPTED[op.removesuffix("_miss")]
    r0 = {"cmpxchg": INITIAL, "cmpxchg_miss": INITIAL ^ (1 << 40)}.get(op, 0)
    assert run(atomic_program(base, off, isa.DW, imm, r0), engine) == expected(isa.DW, imm, r0)


def test_the_atomic_is_rewritten_to_probe_atomic():
    arena = Map("arena", maps.MAP_TYPE_ARENA, 0, 0, 4, BPF_F_MMAPABLE)
    try:
        prog = isa.Program("t", atomic_program(0, 0, isa.DW, ADD | FETCH), section="socket",
                           prog_type="socket_filter", maps=[arena])
        verify(prog)
        modes = [i.mode for i in prog.insns if i.cls == isa.STX]
        assert isa.PROBE_ATOMIC in modes and isa.ATOMIC not in modes
        verify(prog)                                   # verifying again undoes it first
        assert isa.PROBE_ATOMIC in [i.mode for i in prog.insns if i.cls == isa.STX]
    finally:
        arena.close()


def _verdict(body: list[Insn]) -> None:
    """Verify r1 = arena pointer (number 0), r3 = 1, r0 = 0, then ``body``, exit."""
    insns = (lddw(2, 0, isa.PSEUDO_MAP_IDX)
             + [Insn(0xB7, 1, 0, 0, 0), cast(1), Insn(0xB7, 3, 0, 0, 1), Insn(0xB7, 0, 0, 0, 0)]
             + body + [Insn(0xB7, 0, 0, 0, 0), Insn(isa.OP_EXIT)])
    arena = Map("arena", maps.MAP_TYPE_ARENA, 0, 0, 4, BPF_F_MMAPABLE)
    try:
        verify(isa.Program("t", insns, section="socket", prog_type="socket_filter",
                           maps=[arena]))
    finally:
        arena.close()


# 7.2's verdicts, recorded in the guest (see the module docstring)
LINUX72_REFUSED = {
    **{f"{n}_{sz}": ([Insn(isa.STX | isa.ATOMIC | s, 1, 3, 0, imm)],
                     "BPF_ATOMIC stores into R1 arena is not allowed")
       for n, imm in REFUSED.items() for sz, s in (("w", isa.W), ("dw", isa.DW))},
    "add_b": ([Insn(isa.STX | isa.ATOMIC | isa.B, 1, 3, 0, ADD)], "invalid atomic operand size"),
    "xchg_h": ([Insn(isa.STX | isa.ATOMIC | isa.H, 1, 3, 0, isa.XCHG)],
               "invalid atomic operand size"),
    # refused by both; our message differs (7.2: "frame pointer is read only")
    "xchg_src_fp": ([Insn(isa.STX | isa.ATOMIC | isa.DW, 1, 10, 0, isa.XCHG)],
                    "R10 leaks addr into mem"),
    # refused by both; our message differs (7.2: "R4 invalid mem access 'scalar'")
    "number_not_cast": ([Insn(0xB7, 4, 0, 0, 0), Insn(isa.STX | isa.ATOMIC | isa.DW, 4, 3, 0,
                                                        ADD | FETCH)],
                        "BPF_ATOMIC stores into R4 scalar is not allowed"),
    "fetched_value_is_a_number": ([Insn(isa.STX | isa.ATOMIC | isa.DW, 1, 3, 0, ADD | FETCH),
                                   Insn(isa.LDX | isa.MEM | isa.DW, 4, 3, 0, 0)],
                                  "R3 invalid mem access 'scalar'"),
}
LINUX72_ACCEPTED = {
    f"{n}_{sz}_off{off}": [Insn(isa.STX | isa.ATOMIC | s, 1, 3, off, imm)]
    for n, imm in ACCEPTED.items() for sz, s in (("w", isa.W), ("dw", isa.DW))
    for off in (0, 1, -32768, 32767)
}


@pytest.mark.parametrize("name", sorted(LINUX72_REFUSED))
def test_refused_as_linux_72(name):
    body, message = LINUX72_REFUSED[name]
    with pytest.raises(BpfVerifierError, match=re.escape(message)):
        _verdict(body)


@pytest.mark.parametrize("name", sorted(LINUX72_ACCEPTED))
def test_accepted_as_linux_72(name):
    _verdict(LINUX72_ACCEPTED[name])


@pytest.mark.parametrize("body, message", [
    # stricter than 7.2 as root (which may leak addresses): pointers as operands
    ([Insn(0xBF, 0, 10, 0, 0), Insn(isa.STX | isa.ATOMIC | isa.DW, 1, 3, 0, isa.CMPXCHG)],
     "R0 leaks addr into mem"),
    ([Insn(isa.STX | isa.ATOMIC | isa.DW, 1, 1, 0, ADD)], "R1 leaks addr into mem"),
])
def test_pointer_operands_stay_refused(body, message):
    with pytest.raises(BpfVerifierError, match=re.escape(message)):
        _verdict(body)


def _plain_verdict(ptr_setup: list[Insn], imm: int, off: int, size: int = isa.DW) -> None:
    insns = ptr_setup + [Insn(0xB7, 3, 0, 0, 1), Insn(0xB7, 0, 0, 0, 0),
                         Insn(isa.STX | isa.ATOMIC | size, 1, 3, off, imm),
                         Insn(0xB7, 0, 0, 0, 0), Insn(isa.OP_EXIT)]
    verify(isa.Program("t", insns, section="socket", prog_type="socket_filter"))


@pytest.mark.parametrize("imm", sorted(ACCEPTED.values()) + sorted(REFUSED.values()))
def test_non_arena_atomics_keep_their_checks(imm):
    """The same operations elsewhere: on the stack every one is allowed (fetch and/or/xor
    too) and alignment is still required; the data buffer (the kernel's ctx/packet) takes
    none (check_atomic_rmw); a number that was not cast into the arena is no pointer."""
    fp = [Insn(0xBF, 1, 10, 0, 0), Insn(0x7A, 10, 0, -16, 0), Insn(0x7A, 10, 0, -8, 0)]
    _plain_verdict(fp, imm, -16)
    with pytest.raises(BpfVerifierError, match="misaligned stack access"):
        _plain_verdict(fp, imm, -12)
    with pytest.raises(BpfVerifierError, match="BPF_ATOMIC stores into R1 ctx is not allowed"):
        _plain_verdict([], imm, 0)
    with pytest.raises(BpfVerifierError, match="BPF_ATOMIC stores into R1 scalar"):
        _plain_verdict([Insn(0xB7, 1, 0, 0, 0x2000)], imm, 0)


def test_probe_atomic_in_a_loaded_program_is_refused():
    """Only the verifier writes PROBE_ATOMIC: a program as loaded may not carry it (else
    it would pick the arena path without the verifier having seen an arena pointer)."""
    body = atomic_program(0x2000, 0, isa.DW, ADD | FETCH)
    forged = [Insn((i.opcode & ~0xE0) | isa.PROBE_ATOMIC, i.dst, i.src, i.off, i.imm)
              if i.cls == isa.STX and i.mode == isa.ATOMIC else i for i in body]
    arena = Map("arena", maps.MAP_TYPE_ARENA, 0, 0, 4, BPF_F_MMAPABLE)
    try:
        prog = isa.Program("t", forged, section="socket", prog_type="socket_filter",
                           maps=[arena])
        with pytest.raises(BpfVerifierError, match="unknown"):
            verify(prog)
        probe = next(i for i in forged if i.cls == isa.STX and i.mode == isa.PROBE_ATOMIC)
        assert isa.invalid_reason(probe) is not None
        assert isa.invalid_reason(probe, xlated=True) is None
        assert isa.plain_access(probe).mode == isa.ATOMIC
    finally:
        arena.close()
