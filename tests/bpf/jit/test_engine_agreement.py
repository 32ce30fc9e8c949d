"""The verifier refuses what the kernel refuses, and for what it accepts the interpreter and
the JIT agree: r0, the memory the program wrote, and the reason a run was abandoned.

Programs here are hand-built :class:`~uringbpf.bpf.isa.Insn` lists (the raw-program API,
as BPF_RAW_INSN builds them), not assembler output, so every field can be set on its own:
reserved fields, an ``lddw`` whose ``imm64`` copy disagrees with the ``imm`` fields the
kernel reads, a second slot that is not all zero.

The first part pins the ``lddw`` (ld_imm64) forms against the kernel's
resolve_pseudo_ldimm64 and check_ld_imm. The second part is a seeded generator: a few
thousand random programs built from the instruction forms added or changed this round
(lddw forms, LD_ABS/LD_IND, BPF_ADDR_SPACE_CAST and arena accesses, reserved fields of
every class), each verified and, when accepted, run by both engines.
"""

from __future__ import annotations

import random
import struct

import pytest

from uringbpf.bpf import isa, jit, maps
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.isa import Insn
from uringbpf.bpf.maps import BPF_F_MMAPABLE, Map
from uringbpf.bpf.memory import AddressSpace, Buffer, BpfRuntimeError
from uringbpf.bpf.verifier import verify
from uringbpf.errors import BpfVerifierError

U32 = isa.U32
EXIT = Insn(isa.OP_EXIT)


def mov(dst: int, imm: int) -> Insn:
    """``dst = imm`` (64-bit, imm sign-extended)."""
    return Insn(isa.ALU64 | isa.MOV | isa.K, dst, 0, 0, isa.to_s32(imm))


def lddw(dst: int, src: int, imm: int, imm2: int, imm64: int | None = None, off: int = 0,
         second: tuple[int, int, int] = (0, 0, 0)) -> list[Insn]:
    """Both slots of an ``lddw`` with every field chosen; ``imm64`` defaults to the value
    the two ``imm`` fields make (what decoding the bytes would give)."""
    if imm64 is None:
        imm64 = (imm & U32) | ((imm2 & U32) << 32)
    return [Insn(isa.OP_LDDW, dst, src, off, isa.to_s32(imm), imm64),
            Insn(0, second[0], second[1], second[2], isa.to_s32(imm2))]


def _runtime(map_list) -> Runtime:
    rt = Runtime(mem=AddressSpace(), maps=list(map_list))
    for m in map_list:
        for r in m.regions():
            rt.mem.add(r.base, r.size, r.writable, r.name)
    return rt


def _outcome(engine: str, program: isa.Program, rt: Runtime, args: tuple[int, ...]):
    """("ok", r0) or ("error", exception type): what one engine made of one run."""
    try:
        if engine == "interp":
            return ("ok", Interpreter(program, rt).run(*args))
        fn = jit.compile(program, rt)
        try:
            return ("ok", fn(*args))
        finally:
            fn.close()
    except BpfRuntimeError as exc:
        return ("error", type(exc).__name__)


def verify_and_run(insns: list[Insn], map_list=(), prog_type: str = "socket_filter",
                   section: str = "socket", args: tuple[int, ...] = ()):
    """Verify ``insns`` (raises BpfVerifierError) and run both engines; assert they agree
    and return the interpreter's outcome."""
    program = isa.Program("t", list(insns), section=section, prog_type=prog_type,
                          maps=list(map_list))
    verify(program)
    rt = _runtime(map_list)
    got = {e: _outcome(e, program, rt, args) for e in ("interp", "jit")}
    assert got["interp"] == got["jit"], got
    return got["interp"]


@pytest.fixture
def two_arrays():
    """Two single-value arrays with distinct bytes (value 0: bytes 0.., value 1: 100..)."""
    a = Map("a", maps.MAP_TYPE_ARRAY, 4, 16, 1)
    b = Map("b", maps.MAP_TYPE_ARRAY, 4, 32, 1)
    a.update(struct.pack("<I", 0), bytes(range(16)))
    b.update(struct.pack("<I", 0), bytes(range(100, 132)))
    yield [a, b]
    a.close()
    b.close()


LOAD_BYTE = [Insn(isa.LDX | isa.MEM | isa.B, 0, 1, 0, 0), EXIT]    # r0 = *(u8 *)r1


# ------------------------------------------------------------------ lddw, as the kernel

@pytest.mark.parametrize("imm64", [None, 0, 4 << 32, 1 | (8 << 32), isa.U64])
def test_map_value_form_reads_imm_and_second_imm_on_both_engines(two_arrays, imm64):
    """MAP_IDX_VALUE: map index from imm, offset from the second slot's imm (the kernel's
    fields); a stale imm64 (imm64=0 is what a hand-built Insn without it has) changes
    nothing. Before: the interpreter read both from imm64 and disagreed with the JIT."""
    assert verify_and_run(lddw(1, isa.PSEUDO_MAP_IDX_VALUE, 1, 4, imm64) + LOAD_BYTE,
                          two_arrays) == ("ok", 104)
    assert verify_and_run(lddw(1, isa.PSEUDO_MAP_IDX_VALUE, 0, 9, imm64) + LOAD_BYTE,
                          two_arrays) == ("ok", 9)


@pytest.mark.parametrize("lo,hi", [(5, 0), (-1, 0), (0, 1), (-2, -1), (0x12345678, 0x7FFFFFFF)])
def test_plain_lddw_value_is_the_two_imm_fields(lo, hi):
    """src 0: the value is imm | second imm << 32, as in check_ld_imm, whatever imm64
    holds. Before: the verifier and both engines used imm64 (0 here)."""
    want = (lo & U32) | ((hi & U32) << 32)
    assert verify_and_run(lddw(0, 0, lo, hi, imm64=0) + [EXIT]) == ("ok", want)


@pytest.mark.parametrize("second", [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, -1), (9, 9, 0)])
@pytest.mark.parametrize("src", [0, isa.PSEUDO_MAP_IDX, isa.PSEUDO_MAP_IDX_VALUE])
def test_second_slot_fields_must_be_zero(two_arrays, src, second):
    """resolve_pseudo_ldimm64: insn[1].code/dst/src/off all zero, else
    "invalid bpf_ld_imm64 insn". Before: accepted."""
    with pytest.raises(BpfVerifierError, match="invalid bpf_ld_imm64 insn"):
        verify_and_run(lddw(1, src, 0, 0, second=second) + [mov(0, 0), EXIT], two_arrays)


def test_second_slot_opcode_must_be_zero(two_arrays):
    insns = lddw(1, 0, 0, 0) + [mov(0, 0), EXIT]
    insns[1] = Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 0)
    with pytest.raises(BpfVerifierError, match="invalid bpf_ld_imm64 insn"):
        verify_and_run(insns, two_arrays)


@pytest.mark.parametrize("imm2", [1, -1, 4])
def test_map_index_form_wants_a_zero_second_imm(two_arrays, imm2):
    """MAP_IDX / MAP_FD with insn[1].imm != 0: "unrecognized bpf_ld_imm64 insn"."""
    with pytest.raises(BpfVerifierError, match="unrecognized bpf_ld_imm64 insn"):
        verify_and_run(lddw(1, isa.PSEUDO_MAP_IDX, 0, imm2) + [mov(0, 0), EXIT], two_arrays)
    with pytest.raises(BpfVerifierError, match="unrecognized bpf_ld_imm64 insn"):
        verify_and_run(lddw(1, isa.PSEUDO_MAP_FD, 3, imm2) + [mov(0, 0), EXIT], two_arrays)


@pytest.mark.parametrize("src", [7, 8, 10, 11, 15])
def test_unknown_pseudo_forms_are_unrecognized(src):
    """Any src above MAP_IDX_VALUE (even 11-15, which are no registers here)."""
    with pytest.raises(BpfVerifierError, match="unrecognized bpf_ld_imm64 insn"):
        verify_and_run(lddw(1, src, 0, 0) + [mov(0, 0), EXIT])


@pytest.mark.parametrize("off", [1, -1, 0x7FFF])
def test_lddw_off_is_reserved(off):
    """check_ld_imm: "BPF_LD_IMM64 uses reserved fields"."""
    with pytest.raises(BpfVerifierError, match="BPF_LD_IMM64 uses reserved fields"):
        verify_and_run(lddw(0, 0, 1, 0, off=off) + [EXIT])


@pytest.mark.parametrize("src", [isa.PSEUDO_MAP_FD, isa.PSEUDO_MAP_VALUE, isa.PSEUDO_BTF_ID])
def test_fd_and_btf_forms_are_refused(src):
    """Without a kernel fd table or BTF there is nothing to resolve them against."""
    with pytest.raises(BpfVerifierError, match=f"unsupported lddw form src={src}"):
        verify_and_run(lddw(1, src, 3, 0) + [mov(0, 0), EXIT])


def _direct_value_map(kind: str) -> Map:
    if kind == "hash":
        return Map("h", maps.MAP_TYPE_HASH, 4, 16, 4)
    if kind == "percpu_array":
        return Map("p", maps.MAP_TYPE_PERCPU_ARRAY, 4, 16, 1)
    if kind == "ringbuf":
        return Map("r", maps.MAP_TYPE_RINGBUF, 0, 0, 4096)
    return Map("a4", maps.MAP_TYPE_ARRAY, 4, 16, 4)


@pytest.mark.parametrize("kind,reason", [
    ("hash", "no direct value access support for this map type"),
    ("percpu_array", "no direct value access support for this map type"),
    ("ringbuf", "no direct value access support for this map type"),
    ("array_of_4", "invalid access to map value pointer, value_size=16 off=0"),
])
def test_map_value_form_needs_a_direct_value(kind, reason):
    """Only single-value arrays (array_map_direct_value_addr) and arenas have a direct
    value. Before: accepted, and both engines read the map's internal storage."""
    m = _direct_value_map(kind)
    try:
        with pytest.raises(BpfVerifierError, match=reason):
            verify_and_run(lddw(1, isa.PSEUDO_MAP_IDX_VALUE, 0, 0) + LOAD_BYTE, [m])
    finally:
        m.close()


@pytest.mark.parametrize("off", [16, 17, -1, 1 << 29, -(1 << 31)])
def test_map_value_offset_is_a_u32_inside_the_value(two_arrays, off):
    with pytest.raises(BpfVerifierError, match=f"value_size=16 off={off & U32}"):
        verify_and_run(lddw(1, isa.PSEUDO_MAP_IDX_VALUE, 0, off) + LOAD_BYTE, two_arrays)


def test_map_value_form_in_dead_code_is_still_checked(two_arrays):
    """resolve_pseudo_ldimm64 runs over every instruction, reached or not."""
    insns = [mov(0, 0), Insn(isa.JMP | isa.JA, 0, 0, 2, 0)] + \
        lddw(1, isa.PSEUDO_MAP_IDX_VALUE, 0, 99) + [EXIT]
    with pytest.raises(BpfVerifierError, match="invalid access to map value pointer"):
        verify_and_run(insns, two_arrays)


def test_arena_global_offset_bound():
    """An arena's direct value: any offset up to the arena's size (arena_map_direct_value_addr)."""
    arena = Map("arena", maps.MAP_TYPE_ARENA, 0, 0, 2, BPF_F_MMAPABLE)
    try:
        assert verify_and_run(lddw(1, isa.PSEUDO_MAP_IDX_VALUE, 0, 8192) + [mov(0, 3), EXIT],
                              [arena]) == ("ok", 3)
        with pytest.raises(BpfVerifierError, match="off=8193"):
            verify_and_run(lddw(1, isa.PSEUDO_MAP_IDX_VALUE, 0, 8193) + [mov(0, 3), EXIT],
                           [arena])
    finally:
        arena.close()


def test_unverified_engines_read_the_same_fields(two_arrays):
    """Without the verifier (which syncs imm64) both engines still read imm and the second
    imm: a stale imm64 cannot make them differ."""
    program = isa.Program("t", lddw(1, isa.PSEUDO_MAP_IDX_VALUE, 1, 2, imm64=0) + LOAD_BYTE
                          + [], maps=two_arrays)
    rt = _runtime(two_arrays)
    assert _outcome("interp", program, rt, ()) == _outcome("jit", program, rt, ()) == ("ok", 102)
    program = isa.Program("t", lddw(0, 0, 7, 1, imm64=3) + [EXIT])
    assert _outcome("interp", program, rt, ()) == _outcome("jit", program, rt, ()) \
        == ("ok", 7 | 1 << 32)
