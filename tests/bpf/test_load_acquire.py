"""Load-acquire and store-release (BPF_STX | BPF_ATOMIC, imm 0x100 / 0x110; Linux 6.15+).

The kernel's rules (verifier.c check_atomic_load / check_atomic_store, 7.2): the access
is checked as the load or store of that size (all four sizes), always aligned
(strict_alignment_once), and then the pointer's type: the context, packet, flow keys and
sockets are refused ("BPF_ATOMIC loads from R1 ctx is not allowed"), arena pointers are
allowed where the JIT supports them (x86-64: both).  load_acquire writes dst_reg (zero-
extended), store_release reads src_reg.  Storing a pointer anywhere but the stack is
refused here (our rule for every store, docs/verifier.md).  Each accepted program runs on
both engines and must give the values the ISA defines."""

from __future__ import annotations

import struct

import pytest

from uringbpf.bpf import asm, disasm, isa, jit, maps
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.maps import BPF_F_MMAPABLE, Map
from uringbpf.bpf.memory import AddressSpace
from uringbpf.bpf.verifier import verify
from uringbpf.bpf.verifier.disasm import insn_text as insn_str
from uringbpf.errors import BpfVerifierError

ENGINES = ["interp", "jit"]
SIZES = {"u8": (isa.B, 1), "u16": (isa.H, 2), "u32": (isa.W, 4), "u64": (isa.DW, 8)}
PATTERN = 0x8877665544332211


def _reg(sz: str) -> str:
    return "r" if sz == "u64" else "w"


def program(text: str, prog_maps: list[Map] | None = None) -> isa.Program:
    return isa.Program("t", asm.assemble(text), section="socket", prog_type="socket_filter",
                       maps=prog_maps or [])


def run(prog: isa.Program, engine: str, prog_maps: list[Map] | None = None) -> int:
    """Verify ``prog`` and run it on ``engine``: its r0."""
    verify(prog)
    rt = Runtime(mem=AddressSpace(), maps=prog_maps or [])
    for m in prog_maps or []:
        for r in m.regions():
            rt.mem.add(r.base, r.size, r.writable, r.name)
    if engine == "interp":
        return Interpreter(prog, rt).run()
    fn = jit.compile(prog, rt)
    try:
        return fn()
    finally:
        fn.close()


def refused(text: str, prog_maps: list[Map] | None = None) -> str:
    with pytest.raises(BpfVerifierError) as exc:
        verify(program(text, prog_maps))
    return str(exc.value)


@pytest.fixture
def array():
    m = Map("m", maps.MAP_TYPE_ARRAY, 4, 16, 1)
    yield m
    m.close()


MAP_VALUE = """
    r1 = map_idx_value(0)+0 ll
"""


# ------------------------------------------------------------------ accepted, values


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("sz", SIZES)
def test_stack_store_release_then_load_acquire(engine, sz):
    """store_release writes only its size; load_acquire reads it back zero-extended."""
    code, n = SIZES[sz]
    r = _reg(sz)
    prog = program(f"""
        r1 = {PATTERN:#x} ll
        r2 = -1
        *(u64 *)(r10 - 16) = r2
        store_release(({sz} *)(r10 - 16), {r}1)
        r0 = load_acquire((u64 *)(r10 - 16))
        {r}3 = load_acquire(({sz} *)(r10 - 16))
        r0 ^= r3
        exit
    """)
    mask = (1 << (8 * n)) - 1
    stored = ((1 << 64) - 1) & ~mask | (PATTERN & mask)
    assert run(prog, engine) == stored ^ (PATTERN & mask)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("sz", SIZES)
def test_map_value_each_size_and_offset(engine, sz, array):
    """Into and out of an array value at an aligned offset; the map sees the bytes."""
    code, n = SIZES[sz]
    r = _reg(sz)
    off = 8
    prog = program(MAP_VALUE + f"""
        r2 = {PATTERN:#x} ll
        store_release(({sz} *)(r1 + {off}), {r}2)
        {r}0 = load_acquire(({sz} *)(r1 + {off}))
        exit
    """, [array])
    array.update(0, bytes(16))
    mask = (1 << (8 * n)) - 1
    assert run(prog, engine, [array]) == PATTERN & mask
    value = array.lookup(0)
    assert value[off:off + n] == (PATTERN & mask).to_bytes(n, "little")
    assert value[:off] == bytes(off) and value[off + n:] == bytes(16 - off - n)


@pytest.mark.parametrize("engine", ENGINES)
def test_load_acquire_result_is_bounded_by_its_size(engine, array):
    """A u8 load_acquire is a number in [0, 255]: usable as a bounded index."""
    prog = program(MAP_VALUE + """
        r6 = r1
        w2 = load_acquire((u8 *)(r6 + 0))
        r2 &= 7
        r6 += r2
        r0 = *(u8 *)(r6 + 8)
        exit
    """, [array])
    array.update(0, bytes([5, 0, 0, 0, 0, 0, 0, 0, 10, 11, 12, 13, 14, 15, 16, 17]))
    assert run(prog, engine, [array]) == 15


def test_unbounded_load_acquire_result_is_refused_as_index(array):
    assert "max value is outside" in refused(MAP_VALUE + """
        w2 = load_acquire((u8 *)(r1 + 0))
        r1 += r2
        r0 = *(u8 *)(r1 + 0)
        exit
    """, [array])


@pytest.mark.parametrize("engine", ENGINES)
def test_pointer_spill_and_fill_through_the_stack(engine, array):
    """As the kernel: store_release of a pointer onto the stack spills it, load_acquire
    fills it back as the same pointer."""
    prog = program(MAP_VALUE + """
        store_release((u64 *)(r10 - 8), r1)
        r2 = load_acquire((u64 *)(r10 - 8))
        r3 = 42
        *(u64 *)(r2 + 0) = r3
        r0 = *(u64 *)(r2 + 0)
        exit
    """, [array])
    assert run(prog, engine, [array]) == 42


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("sz", SIZES)
def test_arena_any_offset(engine, sz):
    """Through an arena pointer: no alignment rule (check_ptr_alignment skips arena)."""
    code, n = SIZES[sz]
    arena = Map("arena", maps.MAP_TYPE_ARENA, 0, 0, 4, BPF_F_MMAPABLE)
    try:
        r = _reg(sz)
        insns = asm.assemble(f"""
            r2 = map_idx(0) ll
            r1 = 0x1003
            r1 = addr_space_cast(r1, 0, 1)
            r2 = {PATTERN:#x} ll
            store_release(({sz} *)(r1 + 2), {r}2)
            {r}0 = load_acquire(({sz} *)(r1 + 2))
            exit
        """)
        prog = isa.Program("t", insns, section="socket", prog_type="socket_filter",
                           maps=[arena])
        mask = (1 << (8 * n)) - 1
        assert run(prog, engine, [arena]) == PATTERN & mask
        mem = arena.memory()
        assert int.from_bytes(mem[0x1005:0x1005 + n], "little") == PATTERN & mask
        del mem
    finally:
        arena.close()


# ------------------------------------------------------------------ refused


@pytest.mark.parametrize("text, message", [
    # strict alignment, whatever the loader
    ("r1 = 0\n*(u64 *)(r10 - 8) = r1\nw0 = load_acquire((u32 *)(r10 - 6))\nexit",
     "misaligned stack access"),
    ("r1 = 0\nstore_release((u16 *)(r10 - 3), w1)\nr0 = 0\nexit", "misaligned stack access"),
    # a socket filter's r1 (the data buffer here, the kernel's __sk_buff ctx / packet)
    ("if r2 < 8 goto +1\nw0 = load_acquire((u32 *)(r1 + 0))\nr0 = 0\nexit",
     "BPF_ATOMIC loads from R1 ctx is not allowed"),
    ("if r2 < 8 goto +2\nw2 = 1\nstore_release((u8 *)(r1 + 0), w2)\nr0 = 0\nexit",
     "BPF_ATOMIC stores into R1 ctx is not allowed"),
    # registers
    ("r0 = load_acquire((u64 *)(r3 + 0))\nexit", "R3 !read_ok"),
    ("r1 = 0\nr0 = load_acquire((u64 *)(r1 + 0))\nexit", "R1 invalid mem access 'scalar'"),
    ("store_release((u64 *)(r10 - 8), r3)\nr0 = 0\nexit", "R3 !read_ok"),
    ("r1 = 0\nstore_release((u64 *)(r1 + 0), r1)\nr0 = 0\nexit",
     "R1 invalid mem access 'scalar'"),
    # the stack's bounds and contents, as plain loads
    ("r0 = load_acquire((u64 *)(r10 + 0))\nexit", "invalid"),
    ("r0 = load_acquire((u64 *)(r10 - 520))\nexit", "invalid"),
    # a load-acquire leaves its destination written: r0 is no longer the pointer
    ("r0 = r10\nr1 = 7\n*(u64 *)(r10 - 8) = r1\nr0 = load_acquire((u64 *)(r10 - 8))\n"
     "r0 = *(u64 *)(r0 + 0)\nexit", "R0 invalid mem access 'scalar'"),
])
def test_refused_like_the_kernel(text, message):
    assert message in refused(text)


LOOP_STEP = "struct_ops:io_uring_bpf_ops.loop_step"


@pytest.mark.parametrize("text, message", [
    ("r0 = load_acquire((u64 *)(r1 + 0))\nexit", "BPF_ATOMIC loads from R1 ctx is not allowed"),
    ("r6 = r1\nr0 = load_acquire((u64 *)(r6 + 0))\nexit",
     "BPF_ATOMIC loads from R6 ctx is not allowed"),
    # the access itself is checked first (check_load_mem), as for a plain load
    ("w0 = load_acquire((u32 *)(r1 + 0))\nexit", "invalid bpf_context access"),
    ("w0 = load_acquire((u8 *)(r1 + 0))\nexit", "invalid bpf_context access"),
    ("r0 = load_acquire((u64 *)(r1 + 4))\nexit", "invalid bpf_context access"),
    ("r2 = 0\nstore_release((u64 *)(r1 + 0), r2)\nr0 = 0\nexit", "is not writable"),
])
def test_loop_step_context_is_refused(text, message):
    """A struct_ops program's context (its argument array): refused as the kernel."""
    insns = asm.assemble(text)
    prog = isa.Program("t", insns, section="struct_ops/loop_step", prog_type=LOOP_STEP)
    with pytest.raises(BpfVerifierError) as exc:
        verify(prog)
    assert message in str(exc.value)


def test_map_value_rules(array):
    assert "misaligned" in refused(MAP_VALUE + "r0 = load_acquire((u64 *)(r1 + 4))\nexit",
                                   [array])
    assert "misaligned" in refused(MAP_VALUE + "r2 = 0\nstore_release((u32 *)(r1 + 2), w2)\n"
                                               "r0 = 0\nexit", [array])
    assert "invalid access to map value" in refused(
        MAP_VALUE + "r0 = load_acquire((u64 *)(r1 + 16))\nexit", [array])
    assert "invalid access to map value" in refused(
        MAP_VALUE + "r2 = 0\nstore_release((u8 *)(r1 + 16), w2)\nr0 = 0\nexit", [array])


def test_store_release_of_a_pointer_into_a_map_is_refused(array):
    """The kernel lets a privileged loader do it; we refuse every store of a pointer
    outside the stack (the program could read the address back as a number)."""
    assert "R10 leaks addr into mem" in refused(
        MAP_VALUE + "store_release((u64 *)(r1 + 0), r10)\nr0 = 0\nexit", [array])
    assert "R1 leaks addr into mem" in refused(
        MAP_VALUE + "store_release((u64 *)(r1 + 8), r1)\nr0 = 0\nexit", [array])


def test_store_release_into_read_only_map_is_refused():
    ro = Map("ro", maps.MAP_TYPE_ARRAY, 4, 8, 1, maps.BPF_F_RDONLY_PROG)
    try:
        assert "write into map forbidden" in refused(
            MAP_VALUE + "r2 = 0\nstore_release((u64 *)(r1 + 0), r2)\nr0 = 0\nexit", [ro])
        verify(program(MAP_VALUE + "r0 = load_acquire((u64 *)(r1 + 0))\nexit", [ro]))
    finally:
        ro.close()


@pytest.mark.parametrize("imm, message", [
    (0x120, "BPF_ATOMIC uses invalid atomic opcode 120"),
    (0x101, "BPF_ATOMIC uses invalid atomic opcode 101"),
])
def test_other_imm_values_are_invalid(imm, message):
    insns = [isa.Insn(isa.STX | isa.ATOMIC | isa.DW, 0, 10, -8, imm),
             isa.Insn(isa.OP_EXIT)]
    with pytest.raises(BpfVerifierError, match=message):
        verify(isa.Program("t", insns, section="socket", prog_type="socket_filter"))


@pytest.mark.parametrize("size", [isa.B, isa.H])
def test_sub_word_read_modify_write_still_refused(size):
    insns = [isa.Insn(isa.ALU64 | isa.MOV | isa.K, 1, 0, 0, 0),
             isa.Insn(isa.STX | isa.MEM | isa.DW, 10, 1, -8),
             isa.Insn(isa.STX | isa.ATOMIC | size, 10, 1, -8, isa.ATOMIC_ADD),
             isa.Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 0), isa.Insn(isa.OP_EXIT)]
    with pytest.raises(BpfVerifierError, match="invalid atomic operand size"):
        verify(isa.Program("t", insns, section="socket", prog_type="socket_filter"))


# ------------------------------------------------------------------ spelling


@pytest.mark.parametrize("sz", SIZES)
def test_spelling_round_trip(sz):
    code, _ = SIZES[sz]
    r = _reg(sz)
    load = isa.Insn(isa.STX | isa.ATOMIC | code, 3, 1, -8, isa.LOAD_ACQ)
    store = isa.Insn(isa.STX | isa.ATOMIC | code, 1, 3, 16, isa.STORE_REL)
    # the kernel's verifier log (print_bpf_insn)
    assert insn_str(load) == f"{r}3 = load_acquire(({sz} *)(r1 -8))"
    assert insn_str(store) == f"store_release(({sz} *)(r1 +16), {r}3)"
    # LLVM's spelling, both dialects of our disassembler, read back by the assembler
    text = disasm.disassemble([load, store], show_pc=False)
    assert text.splitlines() == [f"{r}3 = load_acquire(({sz} *)(r1 - 8))",
                                 f"store_release(({sz} *)(r1 + 16), {r}3)"]
    assert asm.assemble(text) == [load, store]
    assert isa.encode(asm.assemble(text)) == isa.encode([load, store])
    assert insn_str(load) != insn_str(store)


def test_lookup_result_must_be_null_checked_first(array):
    # (a key the verifier does not know: with a constant in-range key an array lookup is
    # never NULL, Linux 6.14+, and needs no check)
    lookup = """
        call 7
        *(u32 *)(r10 - 4) = r0
        r2 = r10
        r2 += -4
        r1 = map_idx(0) ll
        call 1
    """
    assert "R0 invalid mem access 'map_value_or_null'" in refused(
        lookup + "w1 = load_acquire((u32 *)(r0 + 0))\nr0 = 0\nexit", [array])
    assert "R0 invalid mem access 'map_value_or_null'" in refused(
        lookup + "r1 = 1\nstore_release((u32 *)(r0 + 0), w1)\nr0 = 0\nexit", [array])
    verify(program(lookup + "if r0 == 0 goto +2\nr1 = 1\nstore_release((u32 *)(r0 + 4), w1)\n"
                            "r0 = 0\nexit", [array]))


def test_frame_pointer_is_not_a_destination():
    assert "frame pointer is read only" in refused(
        "r1 = 0\n*(u64 *)(r10 - 8) = r1\nr10 = load_acquire((u64 *)(r10 - 8))\nr0 = 0\nexit")


# ------------------------------------------------------------------ Linux 7.2's verdicts

#: Raw socket filters loaded by root in the Linux 7.2.13 guest (tools/kernel-vm/run,
#: kernel_exec.prog_load with the array map in fd_array), 2026-12-05: the verdict and the
#: last line of the kernel's log.  Ours must be the same verdict; the one difference is
#: ``ptr_into_map`` (a stored pointer, refused here on purpose: docs/verifier.md).
_MV = "r1 = map_idx_value(0)+0 ll\n"
KERNEL72 = {
    **{f"stack_{sz}": (f"r1 = 5\n*(u64 *)(r10 - 16) = r1\nstore_release(({sz} *)(r10 - 16), "
                       f"{_reg(sz)}1)\n{_reg(sz)}0 = load_acquire(({sz} *)(r10 - 16))\nexit",
                       "accept") for sz in SIZES},
    **{f"mapval_{sz}": (_MV + f"r2 = 7\nstore_release(({sz} *)(r1 + 8), {_reg(sz)}2)\n"
                        f"{_reg(sz)}0 = load_acquire(({sz} *)(r1 + 8))\nexit", "accept")
       for sz in SIZES},
    # the kernel's r1 is the __sk_buff ctx ("BPF_ATOMIC loads from R1 ctx is not
    # allowed"), ours the data buffer: refused too
    **{f"ctx_load_{sz}": (f"if r2 < 8 goto +1\n{_reg(sz)}0 = load_acquire(({sz} *)(r1 + 0))\n"
                          "r0 = 0\nexit", "reject") for sz in SIZES},
    "ctx_store_cb": ("r2 = 1\nstore_release((u32 *)(r1 + 48), w2)\nr0 = 0\nexit", "reject"),
    "stack_misaligned": ("r1 = 0\n*(u64 *)(r10 - 8) = r1\nw0 = load_acquire((u32 *)(r10 - 6))"
                         "\nexit", "reject"),     # misaligned stack access off 0+-6 size 4
    "mapval_misaligned_load": (_MV + "r0 = load_acquire((u64 *)(r1 + 4))\nexit", "reject"),
    "mapval_misaligned_store": (_MV + "r2 = 0\nstore_release((u32 *)(r1 + 2), w2)\nr0 = 0\nexit",
                                "reject"),        # misaligned value access off 0+2 size 4
    "spill_fill": (_MV + "store_release((u64 *)(r10 - 8), r1)\nr2 = load_acquire((u64 *)"
                   "(r10 - 8))\nr3 = 42\n*(u64 *)(r2 + 0) = r3\nr0 = 0\nexit", "accept"),
    "oob": (_MV + "r0 = load_acquire((u64 *)(r1 + 16))\nexit", "reject"),
    "scalar_src": ("r1 = 0\nr0 = load_acquire((u64 *)(r1 + 0))\nexit", "reject"),
    "uninit_src": ("r0 = load_acquire((u64 *)(r3 + 0))\nexit", "reject"),
    "fp_dst": ("r1 = 0\n*(u64 *)(r10 - 8) = r1\nr10 = load_acquire((u64 *)(r10 - 8))\nr0 = 0\n"
               "exit", "reject"),
    "ptr_into_map": (_MV + "store_release((u64 *)(r1 + 0), r10)\nr0 = 0\nexit", "accept"),
}
DELIBERATE = {"ptr_into_map"}


@pytest.mark.parametrize("name", sorted(KERNEL72))
def test_same_verdict_as_linux_7_2(name, array):
    text, kernel = KERNEL72[name]
    try:
        verify(program(text, [array]))
        ours = "accept"
    except BpfVerifierError:
        ours = "reject"
    if name in DELIBERATE:
        assert (kernel, ours) == ("accept", "reject")
    else:
        assert ours == kernel
