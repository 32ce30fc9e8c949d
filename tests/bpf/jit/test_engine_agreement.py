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
    program = isa.Program("t", lddw(1, isa.PSEUDO_MAP_IDX_VALUE, 1, 2, imm64=0) + LOAD_BYTE,
                          maps=two_arrays)
    rt = _runtime(two_arrays)
    assert _outcome("interp", program, rt, ()) == _outcome("jit", program, rt, ()) == ("ok", 102)
    program = isa.Program("t", lddw(0, 0, 7, 1, imm64=3) + [EXIT])
    assert _outcome("interp", program, rt, ()) == _outcome("jit", program, rt, ()) \
        == ("ok", 7 | 1 << 32)


# ------------------------------------------------------------------ reserved fields

@pytest.mark.parametrize("insn,reason", [
    # check_alu_op's MOV branch reports every reserved MOV field as "BPF_MOV ..."
    (Insn(isa.ALU64 | isa.MOV | isa.X, 0, 1, 0, 5), "BPF_MOV uses reserved fields"),
    (Insn(isa.ALU64 | isa.MOV | isa.K, 0, 1, 0, 5), "BPF_MOV uses reserved fields"),
    (Insn(isa.ALU | isa.MOV | isa.X, 0, 1, 32, 0), "BPF_MOV uses reserved fields"),
    (Insn(isa.ALU | isa.MOV | isa.X, 0, 1, 1, 1), "BPF_MOV uses reserved fields"),
    (Insn(isa.ALU64 | isa.ADD | isa.X, 0, 1, 0, 5), "BPF_ALU uses reserved fields"),
    (Insn(isa.ALU64 | isa.ADD | isa.K, 0, 0, 1, 5), "BPF_ALU uses reserved fields"),
    # check_ld_abs looks at dst/off/src of ABS before any register number
    (Insn(isa.LD | isa.ABS | isa.W, 11, 0, 0, 0), r"BPF_LD_\[ABS\|IND\] uses reserved fields"),
    (Insn(isa.LD | isa.ABS | isa.B, 0, 12, 0, 0), r"BPF_LD_\[ABS\|IND\] uses reserved fields"),
    (Insn(isa.LD | isa.IND | isa.H, 0, 11, 0, 0), "R11 is invalid"),
    (Insn(isa.LD | isa.ABS | isa.DW, 0, 0, 0, 0), "unknown opcode 38"),
    # not in the kernel's instruction table (checked for every instruction up front)
    (Insn(isa.ALU | isa.NEG | isa.X, 0, 0, 0, 0), "unknown opcode 8c"),
    (Insn(isa.ALU64 | isa.END | isa.TO_BE, 0, 0, 0, 16), "unknown opcode df"),
    (Insn(isa.JMP | isa.JA | isa.X, 0, 0, 0, 0), "unknown opcode 0d"),
    (Insn(isa.JMP32 | isa.JA | isa.X, 0, 0, 0, 0), "unknown opcode 0e"),
    (Insn(isa.JMP | isa.CALL | isa.X, 1, 0, 0, 0), "unknown opcode 8d"),
    (Insn(isa.JMP32 | isa.CALL, 0, 0, 0, 1), "unknown opcode 86"),
    (Insn(isa.JMP32 | isa.EXIT, 0, 0, 0, 0), "unknown opcode 96"),
    (Insn(isa.JMP | isa.EXIT | isa.X, 0, 0, 0, 0), "unknown opcode 9d"),
    (Insn(isa.LDX | isa.MEMSX | isa.DW, 0, 10, -8, 0), "unknown opcode 99"),
    (Insn(isa.ST | isa.ATOMIC | isa.W, 10, 0, -8, 1), "unknown opcode c2"),
    (Insn(isa.STX | isa.MEMSX | isa.DW, 10, 1, -8, 0), "unknown opcode 9b"),
    (Insn(isa.LDX | isa.IMM | isa.W, 0, 10, -8, 0), "unknown opcode 01"),  # 7.2: table first
    (Insn(isa.LDX | isa.MEM | isa.W, 0, 10, -8, 1), "BPF_LDX uses reserved fields"),
    (Insn(isa.ST | isa.MEM | isa.W, 10, 1, -8, 1), "BPF_ST uses reserved fields"),
    (Insn(isa.STX | isa.MEM | isa.W, 10, 1, -8, 1), "BPF_STX uses reserved fields"),
    (Insn(isa.JMP | isa.EXIT, 0, 0, 0, 1), "BPF_EXIT uses reserved fields"),
])
def test_reserved_field_verdicts_name_the_kernel_check(insn, reason):
    """Same verdict and the kernel's message. Before: the MOV cases said "BPF_ALU uses
    reserved fields" and LD_ABS with register 11/12 said "R11 is invalid"."""
    insns = [Insn(isa.ALU64 | isa.MOV | isa.X, 6, 1), mov(0, 0), mov(1, 0), insn, EXIT]
    with pytest.raises(BpfVerifierError, match=reason):
        verify_and_run(insns)



@pytest.mark.parametrize("off", [1, -1, 0x7FFF])
def test_exit_off_is_not_reserved(off):
    """do_check's exit check reads src, dst, imm and the K bit, not off: accepted, and both
    engines return. Before: refused as "BPF_EXIT uses reserved fields"."""
    assert verify_and_run([mov(0, 9), Insn(isa.JMP | isa.EXIT, 0, 0, off, 0)]) == ("ok", 9)

# ------------------------------------------------------------------ the generator
#
# Each family builds a short program around one instruction whose fields are drawn from
# edge values (valid most of the time, reserved or out of range some of the time). The
# verifier decides; what it accepts both engines run, and they must agree on r0 (which
# reads back every stack slot, so memory written is compared too) and on the error.

EDGE = [0, 1, -1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 255, 256, 0x7FFF, -0x8000,
        0xFFFF, 0x7FFFFFFF, -0x80000000, 1 << 16, 1 << 20]
OFFS = [0, 0, 0, 1, -1, -8, -16, -64, 8, 32767, -32768]
REGS = [0, 0, 0, 1, 2, 5, 6, 9, 10, 11, 15]
DATA = bytes((i * 37 + 11) & 0xFF for i in range(64))
STACK_SLOTS = 8                  # the prologue zeroes [r10 - 64, r10)


def _edge(rng: random.Random, pool=EDGE) -> int:
    return rng.choice(pool) if rng.random() < 0.8 else rng.randint(-(1 << 31), (1 << 31) - 1)


def _field(rng: random.Random, valid: int, pool) -> int:
    """Mostly the valid value of a field, sometimes any value of ``pool``."""
    return valid if rng.random() < 0.75 else rng.choice(pool)


def _fold() -> list[Insn]:
    """r0 = a mix of r0..r9 and every stack slot: one number that differs when any
    register or byte of the window does. Reads a register the verifier knows nothing of
    make it refuse the program (then nothing runs)."""
    out = []
    for reg in range(1, 10):
        out += [Insn(isa.ALU64 | isa.LSH | isa.K, 0, 0, 0, 5),
                Insn(isa.ALU64 | isa.XOR | isa.X, 0, reg)]
    for slot in range(1, STACK_SLOTS + 1):
        out += [Insn(isa.LDX | isa.MEM | isa.DW, 1, 10, -8 * slot),
                Insn(isa.ALU64 | isa.MUL | isa.K, 0, 0, 0, 31),
                Insn(isa.ALU64 | isa.ADD | isa.X, 0, 1)]
    return out


def _prologue(rng: random.Random, skip: tuple[int, ...] = ()) -> list[Insn]:
    """Zero the stack window and give r0..r9 (except ``skip``) edge values."""
    out = [Insn(isa.ST | isa.MEM | isa.DW, 10, 0, -8 * s, 0) for s in range(1, STACK_SLOTS + 1)]
    for reg in range(10):
        if reg in skip:
            continue
        if rng.random() < 0.3:
            value = rng.choice([isa.U64, 1 << 63, 1 << 32, 0xFFFFFFFF, 0x80000000]) \
                if rng.random() < 0.7 else rng.getrandbits(64)
            out += lddw(reg, 0, value & U32, value >> 32)
        else:
            out.append(mov(reg, _edge(rng)))
    return out


def _alu(rng: random.Random) -> list[Insn]:
    cls = rng.choice([isa.ALU, isa.ALU64])
    op = rng.choice(list(isa.ALU_OP_NAMES))
    source = rng.choice([isa.K, isa.X])
    off = 0
    imm = _edge(rng)
    if op == isa.END:
        imm = _field(rng, rng.choice([16, 32, 64]), [0, 8, 24, 128])
        source = rng.choice([isa.TO_LE, isa.TO_BE]) if cls == isa.ALU else _field(rng, isa.K, [isa.X])
    elif op == isa.NEG:
        source, imm = _field(rng, isa.K, [isa.X]), _field(rng, 0, EDGE)
    elif op == isa.MOV and source == isa.X:
        off = _field(rng, rng.choice([0, 8, 16, 32]), OFFS)
    elif op in (isa.DIV, isa.MOD):
        off = _field(rng, rng.choice([0, 1]), OFFS)
    elif op in (isa.LSH, isa.RSH, isa.ARSH) and source == isa.K and rng.random() < 0.7:
        imm = rng.randrange(32 if cls == isa.ALU else 64)
    else:
        off = _field(rng, 0, OFFS)
    if source == isa.X and op not in (isa.END,):
        imm = _field(rng, 0, EDGE)
    src = _field(rng, rng.randrange(10) if source == isa.X else 0, REGS)
    dst = _field(rng, rng.randrange(10), REGS)
    return [Insn(cls | op | source, dst, src, off, isa.to_s32(imm))]


def _jmp(rng: random.Random) -> list[Insn]:
    """A forward jump over one instruction (or a reserved-field variant)."""
    cls = rng.choice([isa.JMP, isa.JMP32])
    op = rng.choice(list(isa.CONDITIONAL_JUMPS) + [isa.JA])
    source = _field(rng, rng.choice([isa.K, isa.X]), [isa.K, isa.X])
    dst, src = rng.randrange(10), rng.randrange(10) if source == isa.X else 0
    off, imm = 1, _edge(rng) if source == isa.K else 0
    if op == isa.JA:
        source, dst, src = _field(rng, isa.K, [isa.X]), _field(rng, 0, REGS), _field(rng, 0, REGS)
        off, imm = (1, _field(rng, 0, EDGE)) if cls == isa.JMP else (_field(rng, 0, OFFS), 1)
    else:
        src = _field(rng, src, REGS)
        imm = _field(rng, imm, EDGE) if source == isa.X else imm
    return [Insn(cls | op | source, dst, src, off, isa.to_s32(imm)), mov(0, 0x5A5A)]


def _mem(rng: random.Random) -> list[Insn]:
    """A stack load, store or atomic at an edge offset, maybe with reserved fields."""
    size = rng.choice([isa.B, isa.H, isa.W, isa.DW])
    nbytes = isa.SIZE_BYTES[size]
    off = -nbytes * rng.randint(1, 64 // nbytes) if rng.random() < 0.8 else rng.choice(OFFS)
    kind = rng.randrange(4)
    base = _field(rng, 10, REGS)
    if kind == 0:
        mode = _field(rng, rng.choice([isa.MEM, isa.MEMSX]), [isa.IMM, isa.ABS, isa.ATOMIC])
        return [Insn(isa.LDX | mode | size, rng.randrange(10), base, off, _field(rng, 0, EDGE))]
    if kind == 1:
        return [Insn(isa.ST | _field(rng, isa.MEM, [isa.ATOMIC, isa.MEMSX]) | size, base,
                     _field(rng, 0, REGS), off, _edge(rng))]
    if kind == 2:
        return [Insn(isa.STX | _field(rng, isa.MEM, [isa.MEMSX]) | size, base, rng.randrange(10),
                     off, _field(rng, 0, EDGE))]
    aop = _field(rng, rng.choice(sorted(isa.ATOMIC_OPS)), [2, 0x10, 0xE0, 0xF0, 0x100])
    size = _field(rng, rng.choice([isa.W, isa.DW]), [isa.B, isa.H])
    nbytes = isa.SIZE_BYTES[size]
    if rng.random() < 0.8:
        off = -nbytes * rng.randint(1, 64 // nbytes)
    out = []
    if aop == isa.CMPXCHG:
        out.append(mov(0, rng.choice([0, 1, -1])))
    return out + [Insn(isa.STX | isa.ATOMIC | size, base, rng.randrange(1, 10), off, aop)]


def _lddw_form(rng: random.Random, nmaps: int) -> list[Insn]:
    src = rng.choice([0, 0, 4, 5, 5, 6, 6, 6, 1, 2, 3, 7])
    imm = rng.randrange(nmaps + 1) if src in (5, 6) else _edge(rng)
    imm2 = _field(rng, 0, EDGE) if src in (1, 5) else _edge(rng, [0, 1, 7, 8, 15, 16, 31, 32, -1])
    imm64 = None if rng.random() < 0.5 else rng.getrandbits(64)
    second = (0, 0, 0) if rng.random() < 0.85 else (rng.choice([0, 1]), rng.choice([0, 1]),
                                                     rng.choice([0, 1, -1]))
    dst = _field(rng, rng.randrange(1, 10), REGS)
    if src == 4:
        imm = 3 + 1                               # the function after the main one's exit
    insns = lddw(dst, src, imm, imm2, imm64, _field(rng, 0, OFFS), second)
    if src == 6:                                  # read the value it points to
        insns.append(Insn(isa.LDX | isa.MEM | rng.choice([isa.B, isa.W, isa.DW]), 0, dst, 0))
    if src:
        insns.append(mov(dst, 0))                 # a pointer cannot be returned
    return insns


def _ld_packet(rng: random.Random) -> list[Insn]:
    """LD_ABS / LD_IND with edge offsets around the data (0..64 bytes long)."""
    mode = rng.choice([isa.ABS, isa.IND])
    size = rng.choice([isa.B, isa.H, isa.W]) if rng.random() < 0.9 else isa.DW
    imm = rng.choice([0, 1, 2, 3, 4, 31, 60, 61, 62, 63, 64, 65, -1, -2, -4, 0x7FFFFFFF,
                      -0x80000000, -0x100000, -0x200000]) if rng.random() < 0.4 else \
        rng.randrange(64) if rng.random() < 0.8 else _edge(rng)
    out = []
    src = 0
    if mode == isa.IND:
        src = rng.choice([3, 4, 7, 8])
        value = rng.choice([0, 1, 2, 30, 64, -1, -3, 1 << 32, (1 << 32) - 2, (1 << 31) - 1,
                            1 << 31, 0xFFFFFFFF00000004, 0x100000010])
        out += lddw(src, 0, value & U32, (value >> 32) & U32)
        src = _field(rng, src, REGS)
    insn = Insn(isa.LD | mode | size, _field(rng, 0, REGS), src, _field(rng, 0, OFFS),
                isa.to_s32(imm))
    return out + [insn, Insn(isa.ALU64 | isa.ADD | isa.X, 0, 7)]


def _arena(rng: random.Random) -> list[Insn]:
    """A number cast into the arena, stored through and read back (and cast back)."""
    value = rng.choice([0, 1, 8, 4096, 8191, 0x3FF8, 0xFFFFFFF8, 0xFFFFFFFF, 1 << 32,
                        0x1234567800002000, isa.U64, 0x7FFF0000]) \
        if rng.random() < 0.8 else rng.getrandbits(64)
    size = rng.choice([isa.B, isa.H, isa.W, isa.DW])
    off = rng.choice([0, 8, -8, 4095, 4096, 32767, -32768, 1, -1])
    cast = _field(rng, 1, [1 << 16, 0, 2, (1 << 16) | 1, -1])
    cast_off = _field(rng, isa.ADDR_SPACE_CAST, [0, 2, 8])
    out = lddw(2, isa.PSEUDO_MAP_IDX, 0, 0)                         # names the arena
    if rng.random() < 0.3:   # an arena global's address (a number, the arena's user address)
        out += lddw(1, isa.PSEUDO_MAP_IDX_VALUE, 0, rng.choice([0, 8, 4096, 16376, 16384, 16385]))
    else:
        out += lddw(1, 0, value & U32, value >> 32)
    out.append(Insn(isa.ALU64 | isa.MOV | isa.X, 1, _field(rng, 1, [10, 2, 11]), cast_off, cast))
    kind = rng.randrange(5)
    if kind == 4:          # an atomic through the arena pointer (what it fetched, then the cell)
        aop = rng.choice(sorted(isa.ATOMIC_OPS))
        asize = rng.choice([isa.W, isa.DW])
        out += [Insn(isa.ST | isa.MEM | asize, 1, 0, off, _edge(rng)), mov(0, rng.choice([0, -1, 5])),
                mov(3, _edge(rng)), Insn(isa.STX | isa.ATOMIC | asize, 1, 3, off, aop),
                Insn(isa.LDX | isa.MEM | asize, 4, 1, off),
                Insn(isa.ALU64 | isa.LSH | isa.K, 0, 0, 0, 7), Insn(isa.ALU64 | isa.XOR | isa.X, 0, 3),
                Insn(isa.ALU64 | isa.LSH | isa.K, 0, 0, 0, 7), Insn(isa.ALU64 | isa.XOR | isa.X, 0, 4)]
    elif kind == 0:
        out += [Insn(isa.ST | isa.MEM | size, 1, 0, off, _edge(rng)),
                Insn(isa.LDX | isa.MEM | size, 0, 1, off)]
    elif kind == 1:
        out += [mov(3, _edge(rng)), Insn(isa.STX | isa.MEM | size, 1, 3, off),
                Insn(isa.LDX | _field(rng, isa.MEM, [isa.MEMSX]) | size, 0, 1, off)]
    elif kind == 2:        # 64-bit arithmetic on the arena pointer, then an access
        out += [Insn(isa.ALU64 | rng.choice([isa.ADD, isa.SUB, isa.OR]) | isa.K, 1, 0, 0, _edge(rng)),
                Insn(isa.ST | isa.MEM | size, 1, 0, off, 0x77),
                Insn(isa.LDX | isa.MEM | size, 0, 1, off)]
    else:                  # back to a user address: a number (upper half: the window's)
        out += [Insn(isa.ALU64 | isa.MOV | isa.X, 0, 1, 1, 1 << 16),
                Insn(isa.ALU64 | isa.AND | isa.K, 0, 0, 0, -1)]
        out += lddw(3, 0, 0xFFFFFFFF, 0)
        out.append(Insn(isa.ALU64 | isa.AND | isa.X, 0, 3))        # its low 32 bits
    return out


def _map_calls(rng: random.Random) -> list[Insn]:
    """Helper calls on the maps (lookup, update, delete) with edge keys, flags and value
    offsets; what they return goes into r9, what a lookup finds is read or written."""
    mi = rng.randrange(4)
    key = rng.choice([0, 1, 2, 3, 4, -1, 0x10000])
    out = [Insn(isa.ST | isa.MEM | isa.W, 10, 0, -72, key),
           Insn(isa.ALU64 | isa.MOV | isa.X, 2, 10), Insn(isa.ALU64 | isa.ADD | isa.K, 2, 0, 0, -72)]
    out += lddw(1, isa.PSEUDO_MAP_IDX, mi if rng.random() < 0.92 else rng.choice([4, 7]), 0)
    kind = rng.randrange(3)
    if kind == 0:
        size = rng.choice([isa.B, isa.W, isa.DW])
        off = rng.choice([0, 1, 4, 8, 15, 16, 56, 63, 64, -1])
        out += [Insn(isa.OP_CALL, 0, 0, 0, 1),
                Insn(isa.JMP | isa.JEQ | isa.K, 0, 0, 2, 0),
                Insn(isa.LDX | isa.MEM | size, 3, 0, off) if rng.random() < 0.5
                else Insn(isa.ST | isa.MEM | size, 0, 0, off, _edge(rng)),
                mov(0, 1),
                Insn(isa.ALU64 | isa.ADD | isa.X, 9, 0)]
    elif kind == 1:
        out += [Insn(isa.ALU64 | isa.MOV | isa.X, 3, 10), Insn(isa.ALU64 | isa.ADD | isa.K, 3, 0, 0, -64),
                mov(4, rng.choice([0, 1, 2, 4, 8])), Insn(isa.OP_CALL, 0, 0, 0, 2),
                Insn(isa.ALU64 | isa.ADD | isa.X, 9, 0)]
    else:
        out += [Insn(isa.OP_CALL, 0, 0, 0, 3), Insn(isa.ALU64 | isa.ADD | isa.X, 9, 0)]
    return out + [mov(r, 0) for r in range(0, 6)]      # r0-r5 are not kept by a call


def _bounds(rng: random.Random) -> list[Insn]:
    """A variable offset into a map value or the stack: a scalar shaped by random ALU
    operations and bounded (or not) by random conditional jumps, added to the pointer,
    then a load or store. The verifier must refuse every access it cannot prove inside;
    an access it wrongly accepts makes the interpreter (which checks every address) fail
    where the JIT does not."""
    to_stack = rng.random() < 0.4
    out = [Insn(isa.ST | isa.MEM | isa.W, 10, 0, -72, 0),
           Insn(isa.ALU64 | isa.MOV | isa.X, 2, 10), Insn(isa.ALU64 | isa.ADD | isa.K, 2, 0, 0, -72)]
    out += lddw(1, isa.PSEUDO_MAP_IDX, rng.choice([0, 1, 3]), 0)
    out += [Insn(isa.OP_CALL, 0, 0, 0, 1), Insn(isa.JMP | isa.JNE | isa.K, 0, 0, 2, 0),
            mov(0, 0), EXIT, Insn(isa.ALU64 | isa.MOV | isa.X, 6, 0)]
    out += [mov(r, rng.choice([0, 1, 5, 17, 64, -1, -64])) for r in range(1, 6)]
    reg = rng.choice([1, 2, 3, 7, 8])
    # an unknown number: what the map value holds (the programs before wrote some of it)
    out.append(Insn(isa.LDX | isa.MEM | rng.choice([isa.B, isa.H, isa.W, isa.DW]), reg, 6,
                    rng.choice([0, 8])))
    if to_stack:
        out.append(Insn(isa.ALU64 | isa.MOV | isa.X, 6, 10))
    for _ in range(rng.randint(1, 4)):
        cls = rng.choice([isa.ALU, isa.ALU64])
        op = rng.choice([isa.ADD, isa.SUB, isa.AND, isa.OR, isa.LSH, isa.RSH, isa.ARSH, isa.MUL,
                         isa.MOD, isa.DIV, isa.XOR, isa.MOV, isa.NEG])
        if op == isa.NEG:
            out.append(Insn(cls | op, reg))
        elif rng.random() < 0.6:
            imm = rng.randrange(32) if op in (isa.LSH, isa.RSH, isa.ARSH) else \
                rng.choice([1, 3, 7, 8, 15, 16, 63, 64, 0xFF, -1, -8, 0x7FFFFFFF])
            out.append(Insn(cls | op | isa.K, reg, 0, 0, imm))
        else:
            out.append(Insn(cls | op | isa.X, reg, rng.choice([1, 2, 3, 4, 5, 7, 8, 9])))
        if rng.random() < 0.5:      # a bound: past it, end the program
            jop = rng.choice([isa.JGT, isa.JGE, isa.JSGT, isa.JSGE, isa.JLT, isa.JSLT, isa.JNE,
                              isa.JEQ, isa.JSET])
            out += [Insn(rng.choice([isa.JMP, isa.JMP32]) | jop | isa.K, reg, 0, 2,
                         rng.choice([0, 1, 7, 8, 15, 16, 48, 56, 63, 64, -1, -64])),
                    Insn(isa.ALU64 | isa.ADD | isa.K, 6, 0, 0, 0), Insn(isa.JMP | isa.JA, 0, 0, 2, 0),
                    mov(0, 0), EXIT]
    size = rng.choice([isa.B, isa.H, isa.W, isa.DW])
    off = rng.choice([0, 1, 8, -8, -64, -1, 15, 56]) if not to_stack else rng.choice([-8, -16, -64, -72, 0, -1])
    out.append(Insn(isa.ALU64 | rng.choice([isa.ADD, isa.ADD, isa.SUB]) | isa.X, 6, reg))
    if rng.random() < 0.5:
        out += [Insn(isa.LDX | isa.MEM | size, 4, 6, off), Insn(isa.ALU64 | isa.ADD | isa.X, 9, 4)]
    else:
        out.append(Insn(isa.ST | isa.MEM | size, 6, 0, off, rng.choice([0x5A, -1])))
    return out + [mov(r, 0) for r in range(0, 7)]


FAMILIES = ("alu", "jmp", "mem", "lddw", "ld_packet", "arena", "maps", "bounds")


def _program(rng: random.Random, family: str, nmaps: int) -> list[Insn]:
    if family == "ld_packet":
        body = [Insn(isa.ALU64 | isa.MOV | isa.X, 6, 1), mov(7, rng.randrange(1 << 16)), mov(0, 0)]
        for _ in range(rng.randint(1, 3)):
            body += _ld_packet(rng)
        return body + [EXIT]
    if family == "arena":
        return _arena(rng) + [EXIT]
    make = {"alu": _alu, "jmp": _jmp, "mem": _mem, "maps": _map_calls,
            "bounds": _bounds}.get(family)
    pro = _prologue(rng)
    if make is None:
        body = _lddw_form(rng, nmaps)
    else:
        body = [i for _ in range(rng.randint(1, 3)) for i in make(rng)]
    tail = _fold() + [EXIT]
    main = pro + body + tail
    funcs = [pc for pc, insn in enumerate(main) if insn.is_lddw and insn.src == isa.PSEUDO_FUNC
             and pc >= len(pro)]
    if not funcs:
        return main
    for pc in funcs:         # name a subprogram placed after the main function's exit
        main[pc].imm = len(main) - pc - 1
    return main + [mov(0, 1), EXIT]


def _map_set() -> list[Map]:
    """The maps every family's programs may name: two single-value arrays (index 0, 1), a
    hash (2), an array of four (3), an arena (4). Each engine gets its own set, filled
    alike, so that what one run writes cannot reach the other's."""
    ms = [Map("v", maps.MAP_TYPE_ARRAY, 4, 16, 1), Map("w", maps.MAP_TYPE_ARRAY, 4, 64, 1),
          Map("h", maps.MAP_TYPE_HASH, 4, 8, 4), Map("n", maps.MAP_TYPE_ARRAY, 4, 16, 4),
          Map("arena", maps.MAP_TYPE_ARENA, 0, 0, 4, BPF_F_MMAPABLE)]
    ms[0].update(struct.pack("<I", 0), bytes(range(16)))
    ms[1].update(struct.pack("<I", 0), DATA)
    ms[2].update(struct.pack("<I", 1), struct.pack("<Q", 0x1122334455667788))
    return ms


def _map_contents(ms: list[Map]) -> tuple:
    """Every value of the non-arena maps (the arena is read back by the programs)."""
    return tuple(tuple(sorted(m.items())) for m in ms[:4])


@pytest.mark.parametrize("family", FAMILIES)
def test_random_programs_agree(family):
    """Seeded: the same programs every run. Counts are asserted so that a generator that
    stops producing accepted programs (all refused) is noticed."""
    rng = random.Random(f"h9-{family}")
    sets = [_map_set(), _map_set()]
    data = [Buffer(64, DATA) for _ in range(2)]
    accepted = refused = 0
    try:
        for n in range(PROGRAMS[family]):
            insns = _program(rng, family, 4)

            def program_for(ms: list[Map], xlated: bool = False) -> isa.Program:
                return isa.Program(f"{family}{n}", insns, section="socket",
                                   prog_type="socket_filter", arena_xlated=xlated,
                                   maps=[ms[4]] if family == "arena" else ms[:4])
            program = program_for(sets[0])
            try:
                verify(program)
            except BpfVerifierError:
                refused += 1
                continue
            accepted += 1
            length = rng.choice([0, 1, 2, 4, 31, 32, 60, 63, 64, 64, 64, 64])
            got = {}
            for e, engine in enumerate(("interp", "jit")):
                prog = program if e == 0 else program_for(sets[e], program.arena_xlated)
                rt = _runtime(prog.maps)
                data[e].write(0, DATA)
                rt.mem.add_buffer(data[e], True, "data")
                got[engine] = _outcome(engine, prog, rt, (data[e].addr, length)) + (
                    data[e].read(), _map_contents(sets[e]))
            assert got["interp"] == got["jit"], (family, n, isa.encode(insns).hex())
    finally:
        for m in sets[0] + sets[1]:
            m.close()
    assert accepted >= PROGRAMS[family] // 10, (accepted, refused)
    assert refused >= PROGRAMS[family] // 20, (accepted, refused)


PROGRAMS = {"alu": 700, "jmp": 400, "mem": 500, "lddw": 500, "ld_packet": 500, "arena": 400,
            "maps": 400, "bounds": 600}
