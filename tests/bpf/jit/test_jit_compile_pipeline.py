"""The compile pipeline behind the JIT (#19 compile time): the IR pass managers are built
once per (target machine, level) and reused, each level keeps its own passes, the code
made with reused managers is right, compile phases are reported, and the disk-cache key
follows the machine-code level and every field the generator reads."""

from __future__ import annotations

import subprocess
import sys

import llvmlite.binding as llvm
import pytest

from uringbpf.bpf import isa, jit
from uringbpf.bpf.asm import assemble
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.memory import BpfRuntimeError, Buffer


@pytest.fixture(autouse=True)
def _llvm_tier(monkeypatch):
    """These tests are about the LLVM tier (phases, IR, its disk cache): ask for it."""
    monkeypatch.setenv("URINGBPF_JIT_TIER", "llvm")

# Jumps over jumps: one LLVM block per jump target, which only simplifycfg (level >= 1,
# not level 0) folds together.
BRANCHY = """
    mov %r0, 0
    jeq %r1, 0, +2
    add %r0, 1
    ja +0
    jeq %r1, 1, +2
    add %r0, 2
    ja +0
    jeq %r1, 2, +2
    add %r0, 4
    ja +0
    exit
"""


def _blocks(ir: str, level: int) -> int:
    module = llvm.parse_assembly(ir)
    jit._optimize(module, level)
    return sum(len(list(f.blocks)) for f in module.functions if not f.is_declaration)


def test_reused_pass_managers_keep_their_level():
    jit.initialize()
    ir = jit.compile(isa.Program("b", assemble(BRANCHY)), Runtime(), cache=False).ir
    first = [_blocks(ir, level) for level in (0, 1, 0, 1, 2, 0)]
    # The same level gives the same result however the managers were used before.
    assert first[0] == first[2] == first[5]
    assert first[1] == first[3]
    assert first[0] > first[1] >= first[4]


def test_code_from_reused_pass_managers_matches_the_interpreter():
    prog = isa.Program("b", assemble(BRANCHY))
    for _ in range(3):                      # the second and third compiles reuse the managers
        fn = jit.compile(prog, Runtime(), cache=False)
        for r1 in (0, 1, 2, 3, 1 << 40):
            assert fn(r1) == Interpreter(prog, Runtime()).run(r1), r1
        fn.close()


def test_compile_reports_each_phase():
    fn = jit.compile(isa.Program("b", assemble(BRANCHY)), Runtime(), cache=False)
    timings = fn.timings
    assert set(timings) == {"generate", "parse", "verify", "optimize", "codegen", "load"}
    assert all(t >= 0 for t in timings.values())
    fn.close()


def test_disk_key_follows_the_codegen_level(monkeypatch):
    jit.initialize()
    prog = isa.Program("k", assemble("mov %r0, 1\nexit"))
    monkeypatch.delitem(jit._disk_state, "version", raising=False)
    before = jit._disk_key(prog, False, 1, ())
    monkeypatch.setattr(jit, "CODEGEN_LEVEL", jit.CODEGEN_LEVEL - 1)
    monkeypatch.delitem(jit._disk_state, "version", raising=False)
    after = jit._disk_key(prog, False, 1, ())
    assert before != after
    # The key from the fields handed in is the key from the program.
    assert jit._disk_key(prog, False, 1, (), jit._program_fields(prog)) == after
    monkeypatch.delitem(jit._disk_state, "version", raising=False)


class _MapRef:
    """What the loader puts in Program.maps: the map's addresses."""

    def __init__(self, addr: int, value_addr: int | None):
        self.addr, self.value_addr = addr, value_addr


def _lddw_map_value(offset: int, placeholder_imm: int, index: int = 0) -> list[isa.Insn]:
    """``r0 = &map[index].value + offset`` with the second slot's imm set apart: the
    encoded bytecode takes the offset from imm64 only."""
    return [isa.Insn(isa.OP_LDDW, 0, isa.PSEUDO_MAP_IDX_VALUE, 0, index,
                     index | (offset << 32)),
            isa.Insn(0, 0, 0, 0, placeholder_imm),
            isa.Insn(isa.OP_EXIT)]


def _cached_is_own_code(first: isa.Program, second: isa.Program) -> None:
    """``second`` compiled after ``first`` (the code cache on) runs as ``second`` compiled
    alone: the cache never hands it ``first``'s code."""
    fa = jit.compile(first, Runtime())
    fb = jit.compile(second, Runtime())
    alone = jit.compile(second, Runtime(), cache=False)
    assert fb() == alone()
    assert jit._disk_key(first, False, 1, ()) != jit._disk_key(second, False, 1, ())
    for fn in (fa, fb, alone):
        fn.close()


def test_code_cache_key_covers_the_lddw_second_slot():
    # Regression: the memory and disk keys hashed the encoded bytecode, which takes an
    # lddw's value from imm64 and leaves out the second slot's imm, where the generator
    # reads a map value's offset: the second program ran the first one's code.
    values = Buffer(64)
    maps = [_MapRef(0x1000, values.addr)]
    a = isa.Program("a", _lddw_map_value(0, 0), maps=maps)
    b = isa.Program("b", _lddw_map_value(0, 16), maps=maps)
    assert a.bytecode == b.bytecode
    _cached_is_own_code(a, b)


def test_code_cache_key_covers_the_lddw_map_index():
    # The generator reads the map index from imm, the bytecode from imm64.
    values = [Buffer(8), Buffer(8)]
    maps = [_MapRef(0x1000, values[0].addr), _MapRef(0x2000, values[1].addr)]
    second = _lddw_map_value(0, 0, 0)
    second[0].imm = 1
    a = isa.Program("a", _lddw_map_value(0, 0, 0), maps=maps)
    b = isa.Program("b", second, maps=maps)
    assert a.bytecode == b.bytecode
    _cached_is_own_code(a, b)


# --- entry tests in jitrt_gate, frame tests at each direct call ---------------------------
# Functions have no entry tests of their own (3 of a small function's 5 LLVM blocks): the
# thunk's gate refuses an abandoned run and an entry without room for a frame; direct
# calls (`call local`, callx to a subprogram) test the room at the call.

CALLX_RECURSION = """
    lddw %r2, func(f)
    callx %r2
    exit
f:
    mov %r0, 1
    jeq %r1, 0, +5
    sub %r1, 1
    lddw %r2, func(f)
    callx %r2
    add %r0, 1
    exit
"""


def test_callx_recursion_fails_at_the_callx_like_the_interpreter():
    # Before: the callee's own entry test failed with "callback exceeds ..." at its first
    # instruction; the interpreter (and now the JIT) fail at the callx.
    program = isa.Program("cx", assemble(CALLX_RECURSION))
    fn = jit.compile(program, Runtime())
    assert fn(jit.STACK_FRAMES - 2) == Interpreter(program, Runtime()).run(jit.STACK_FRAMES - 2)
    for depth in (jit.STACK_FRAMES - 1, 1000):
        with pytest.raises(BpfRuntimeError) as jit_err:
            fn(depth)
        with pytest.raises(BpfRuntimeError) as interp_err:
            Interpreter(program, Runtime()).run(depth)
        assert str(jit_err.value) == str(interp_err.value)
        assert f"call depth limit of {jit.STACK_FRAMES} frames exceeded" in str(jit_err.value)
    assert fn(3) == 4                      # the failed runs left nothing behind


STORE_AND_RETURN = """
    lddw %r3, func(g)
    mov %r0, 0
    exit
g:
    stxdw [%r1+0], %r2
    mov %r0, 7
    exit
"""


def _thunk_of_g(fn: jit.JitFunction):
    return jit.HelperFn(fn.function_address(4))


def test_thunk_entry_into_an_abandoned_run_does_nothing():
    fn = jit.compile(isa.Program("t", assemble(STORE_AND_RETURN)), Runtime())
    out = Buffer(8)
    g = _thunk_of_g(fn)
    assert g(out.addr, 5, 0, 0, 0) == 7 and out.read() == (5).to_bytes(8, "little")
    ctx = jit.JitContext.from_address(fn.context_address)
    ctx.error, ctx.err_pc = jit.ERR_CALLX, 99          # a failed run, not yet taken
    assert g(out.addr, 6, 0, 0, 0) == 0
    assert out.read() == (5).to_bytes(8, "little")    # g did not run
    assert (ctx.error, ctx.err_pc) == (jit.ERR_CALLX, 99)   # the first error stays
    fn.reset()
    assert g(out.addr, 6, 0, 0, 0) == 7 and out.read() == (6).to_bytes(8, "little")
    fn.close()


def test_thunk_entry_without_room_for_a_frame_is_refused():
    fn = jit.compile(isa.Program("t", assemble(STORE_AND_RETURN)), Runtime())
    out = Buffer(8)
    g = _thunk_of_g(fn)
    ctx = jit.JitContext.from_address(fn.context_address)
    for room in (0, 8, isa.STACK_SIZE - 1):
        ctx.sp = ctx.stack_lo + room                 # as if every frame but a sliver were live
        assert g(out.addr, 9, 0, 0, 0) == 0
        assert out.read() == bytes(8)                # nothing ran
        assert ctx.sp == ctx.stack_lo + room         # and the stack pointer is untouched
        with pytest.raises(BpfRuntimeError, match=r"insn 4: callback exceeds the call depth"):
            fn.raise_error()
        ctx.sp = ctx.stack_hi
    ctx.sp = ctx.stack_lo + isa.STACK_SIZE           # exactly one frame: runs
    assert g(out.addr, 9, 0, 0, 0) == 7 and out.read() == (9).to_bytes(8, "little")
    assert ctx.sp == ctx.stack_lo + isa.STACK_SIZE
    ctx.sp = ctx.stack_hi
    fn.close()


def test_every_opt_level_compiles_twice_in_one_process():
    # Regression: the reused pass managers included level 3's, which LLVM cannot run a
    # second time (an assertion inside LLVM aborted the process). In a child process, so
    # an abort is a failure here and not the end of the test run.
    script = (
        "from uringbpf.bpf import isa, jit\n"
        "from uringbpf.bpf.asm import assemble\n"
        "from uringbpf.bpf.helpers import Runtime\n"
        "from uringbpf.bpf.interp import Interpreter\n"
        f"prog = isa.Program('b', assemble({BRANCHY!r}))\n"
        "want = [Interpreter(prog, Runtime()).run(r1) for r1 in range(4)]\n"
        "for level in (0, 1, 2, 3, 3, 2, 1, 0, 3):\n"
        "    fn = jit.compile(prog, Runtime(), opt_level=level, cache=False)\n"
        "    assert [fn(r1) for r1 in range(4)] == want, level\n"
        "    fn.close()\n"
        "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
