"""Executable memory of JIT instances (jit._Arena, issue #19): pooled page runs that are
never writable and executable at once (read from /proc/self/maps), each followed by a
no-access guard page, handed back when an instance goes (int3-filled, not executable)
and reused, so loading and closing programs does not grow the process; and the
instance's one guarded block (context, descriptors, vars table, stack)."""

from __future__ import annotations

import ctypes
import gc
import mmap
import os
import subprocess
import sys
from pathlib import Path

import pytest

from uringbpf.bpf import isa, jit
from uringbpf.bpf.asm import assemble
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.isa import Insn
from uringbpf.bpf.memory import guard_check

PAGE = mmap.PAGESIZE
SRC = Path(__file__).resolve().parents[3] / "src"


def prog(text: str) -> isa.Program:
    return isa.Program("t", assemble(text))


def mappings() -> list[tuple[int, int, str]]:
    """(start, end, permissions) of every mapping of this process."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            span, perms = line.split()[:2]
            lo, hi = span.split("-")
            out.append((int(lo, 16), int(hi, 16), perms))
    return out


def perms_at(addr: int) -> str:
    for lo, hi, perms in mappings():
        if lo <= addr < hi:
            return perms
    return ""


def run_of(fn: jit.JitFunction) -> tuple[int, int]:
    return fn._state.memory.run


def test_no_page_of_the_arena_is_writable_and_executable():
    """(Other code may map rwx pages, libffi's closures for ctypes callbacks on some
    systems: only the arena's pages are checked.)"""
    fns = [jit.compile(prog(f"mov %r0, {i}\nexit"), Runtime(), tier="direct", cache=False)
           for i in range(40)]
    assert [fn() for fn in fns] == list(range(40))
    for fn in fns[::2]:
        fn.close()
    del fns[::2]
    gc.collect()
    live = [run_of(fn) for fn in fns]
    pooled = [(addr, pages) for pages, runs in jit._arena._free.items() for addr in runs]
    assert len(pooled) >= 20
    for (addr, pages), want in [(run, "r-x") for run in live] + [(run, "rw-") for run in pooled]:
        for page in range(pages):
            assert perms_at(addr + page * PAGE).startswith(want), (hex(addr), want)


def test_each_run_is_followed_by_a_guard_page_and_is_a_mapping_of_its_own():
    fn = jit.compile(prog("mov %r0, 1\nexit"), Runtime(), tier="direct", cache=False)
    addr, pages = run_of(fn)
    assert perms_at(addr + pages * PAGE).startswith("---")
    span = [m for m in mappings() if m[0] <= addr < m[1]]
    assert span == [(addr, addr + pages * PAGE, span[0][2])]


def test_a_freed_run_is_int3_filled_not_executable_and_reused():
    fn = jit.compile(prog("mov %r0, 3\nexit"), Runtime(), tier="direct", cache=False)
    assert fn() == 3
    addr, pages = run_of(fn)
    fn.close()
    del fn
    gc.collect()
    assert perms_at(addr).startswith("rw-")          # pooled: writable, never executable
    assert ctypes.string_at(addr, pages * PAGE) == b"\xcc" * (pages * PAGE)
    again = jit.compile(prog("mov %r0, 4\nexit"), Runtime(), tier="direct", cache=False)
    assert run_of(again) == (addr, pages)            # the last run given back comes first
    assert again() == 4 and perms_at(addr).startswith("r-x")


def test_a_program_larger_than_a_page_gets_a_run_of_pages_and_is_right():
    body = "\n".join("add %r0, 1" for _ in range(1500))       # ~4.5 KiB of code
    program = prog(f"mov %r0, 0\n{body}\nexit")
    fn = jit.compile(program, Runtime(), tier="direct", cache=False)
    addr, pages = run_of(fn)
    assert pages >= 2 and fn() == 1500
    assert perms_at(addr + (pages - 1) * PAGE).startswith("r-x")
    assert perms_at(addr + pages * PAGE).startswith("---")
    fn.close()
    del fn
    gc.collect()
    again = jit.compile(program, Runtime(), tier="direct", cache=False)
    assert run_of(again) == (addr, pages) and again() == 1500


def test_loading_and_closing_10000_times_does_not_grow_the_process():
    program = prog("mov %r0, 1\nexit")
    for _ in range(50):
        jit.compile(program, Runtime(), tier="direct", cache=False).close()
    gc.collect()
    before, maps_before = jit._arena.stats(), len(mappings())
    for i in range(10_000):
        fn = jit.compile(program, Runtime(), tier="direct", cache=False)
        if i % 1000 == 0:
            assert fn() == 1
        fn.close()
    del fn
    gc.collect()
    after = jit._arena.stats()
    assert after["mapped"] == before["mapped"] and after["in_use"] == before["in_use"]
    assert len(mappings()) <= maps_before


def test_llvm_instances_take_their_thunks_from_the_arena_too():
    program = prog("mov %r0, 9\nexit")
    jit.compile(program, Runtime(), tier="llvm").close()          # now in the memory cache
    gc.collect()
    before = jit._arena.stats()
    for _ in range(300):
        fn = jit.compile(program, Runtime(), tier="llvm")
        assert fn.tier == "llvm" and fn() == 9
        assert perms_at(fn.address).startswith("r-x")
        fn.close()
    del fn
    gc.collect()
    assert jit._arena.stats()["mapped"] == before["mapped"]


def test_the_pool_is_bounded_and_beyond_it_runs_are_unmapped():
    arena = jit._Arena()
    runs = [arena.take(100) for _ in range(arena.POOL_PAGES + 40)]
    assert arena.stats()["in_use"] == len(runs)
    mapped = arena.stats()["mapped"]
    for run in runs:
        arena.give(*run)
    stats = arena.stats()
    assert stats["in_use"] == 0 and stats["pooled"] == arena.POOL_PAGES
    assert stats["mapped"] == arena.POOL_PAGES < mapped
    gone = [addr for addr, _ in runs if perms_at(addr) == ""]
    assert len(gone) == mapped - arena.POOL_PAGES        # (batches: some were pooled unused)


def test_seal_makes_a_run_read_execute_only():
    arena = jit._Arena()
    addr, pages = arena.take(10)
    assert perms_at(addr).startswith("rw-")
    ctypes.memmove(addr, b"\xc3", 1)
    arena.seal(addr, pages)
    assert perms_at(addr).startswith("r-x")
    arena.give(addr, pages)
    assert perms_at(addr).startswith("rw-")


def test_instance_memory_is_guarded_while_it_lives_and_released_after():
    fn = jit.compile(prog("mov %r0, 1\nexit"), Runtime(), tier="direct", cache=False)
    state = fn._state
    spots = [state.stack.addr, state.stack.addr + state.stack.size - 8,
             ctypes.addressof(state.ctx), ctypes.addressof(state.descs),
             ctypes.addressof(state.vars)]
    assert all(guard_check(addr, 8) for addr in spots)
    assert fn.context_address == spots[2]
    run = run_of(fn)
    fn.close()
    assert all(guard_check(addr, 8) for addr in spots)      # closed, but still referenced
    del fn, state
    gc.collect()
    assert not any(guard_check(addr, 8) for addr in spots)
    assert perms_at(run[0]).startswith("rw-")


@pytest.mark.parametrize("tier", ["direct", "llvm"])
def test_functions_of_a_program_run_from_pooled_code(tier):
    """A program with BPF-to-BPF calls: one thunk per function, the calls through them."""
    program = isa.Program("t", [
        Insn(isa.ALU64 | isa.MOV, 1, imm=5), Insn(isa.OP_CALL, 0, isa.PSEUDO_CALL, 0, 2),
        Insn(isa.ALU64 | isa.ADD, 0, imm=1), Insn(isa.OP_EXIT),
        Insn(isa.ALU64 | isa.MOV | isa.X, 0, 1), Insn(isa.ALU64 | isa.MUL, 0, imm=3),
        Insn(isa.OP_EXIT)])
    for _ in range(3):
        fn = jit.compile(program, Runtime(), tier=tier, cache=False)
        assert fn() == 16
        assert fn.function_address(4) == fn.address + jit._THUNK_SIZE
        fn.close()


def test_the_stack_leaves_the_address_space_at_close_or_when_the_instance_goes():
    rt = Runtime()
    closed = jit.compile(prog("mov %r0, 1\nexit"), rt, tier="direct", cache=False)
    dropped = jit.compile(prog("mov %r0, 2\nexit"), rt, tier="direct", cache=False)
    stacks = [r for r in rt.mem.regions() if r.name.startswith("jit-stack")]
    assert len(stacks) == 2
    closed.close()
    closed.close()                                         # twice: no error
    left = [r for r in rt.mem.regions() if r.name.startswith("jit-stack")]
    assert len(left) == 1 and left[0].base == dropped._state.stack.addr
    del dropped
    gc.collect()
    assert not [r for r in rt.mem.regions() if r.name.startswith("jit-stack")]


def test_exit_with_live_instances_is_quiet():
    """Instances alive at the interpreter's end (globals, a cycle) release nothing and
    report nothing (their memory is released by ``__del__``, off after the exit
    handlers)."""
    child = (
        "from uringbpf.bpf import isa, jit\n"
        "from uringbpf.bpf.asm import assemble\n"
        "from uringbpf.bpf.helpers import Runtime\n"
        "p = isa.Program('t', assemble('mov %r0, 1\\nexit'))\n"
        "keep = [jit.compile(p, Runtime(), cache=False) for _ in range(3)]\n"
        "cycle = [jit.compile(p, Runtime(), cache=False)]\n"
        "cycle.append(cycle)\n"
        "assert keep[0]() == 1\n")
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("tier", ["direct", "llvm"])
def test_cached_code_does_not_keep_an_instance_alive(tier):
    """The memory cache's code regenerates its IR from the calls' resolutions, not from
    the first instance's binder (which holds that instance's memory, code pages and
    runtime): with every instance gone, nothing of theirs stays in use."""
    program = isa.Program("t", assemble("mov %r0, 0\ncall 7\nadd %r0, 1\nexit"))
    jit.cache_clear()
    gc.collect()
    before = jit._arena.stats()["in_use"]
    first = jit.compile(program, Runtime(), tier=tier, cache=True)
    assert not first.cached
    del first
    gc.collect()
    assert jit._arena.stats()["in_use"] == before
    again = jit.compile(program, Runtime(), tier=tier, cache=True)
    assert again.cached and "call" in again.ir          # regenerated (direct) or kept
    del again
    gc.collect()
    assert jit._arena.stats()["in_use"] == before


class _Values:
    """A loaded map as the JIT sees it (Program.maps): its addresses only."""

    def __init__(self, addr: int, value_addr: int):
        self.addr, self.value_addr = addr, value_addr


def _functions_and_slots(nfuncs: int) -> isa.Program:
    """``nfuncs`` functions (each calls the next) that load a map value's address and a
    map's address: the direct code has patches (map value + offset, map) and, with
    BPF-to-BPF calls, one thunk and one descriptor per function."""
    insns = []
    for k in range(nfuncs):
        insns += [Insn(isa.OP_LDDW, 1, isa.PSEUDO_MAP_IDX_VALUE, 0, 0), Insn(0, imm=8 * k),
                  Insn(isa.OP_LDDW, 2, isa.PSEUDO_MAP_IDX, 0, 1), Insn(0),
                  Insn(isa.ALU64 | isa.MOV | isa.X, 0, 1)]
        if k + 1 < nfuncs:
            insns += [Insn(isa.OP_CALL, 0, isa.PSEUDO_CALL, 0, 1)]
        insns += [Insn(isa.OP_EXIT)]
    return isa.Program("t", insns, maps=[_Values(0x5000, 0x7000), _Values(0x9000, 0)])


@pytest.mark.parametrize("nfuncs", [1, 2, 3])
def test_the_instance_image_is_the_thunks_then_the_filled_in_template(nfuncs):
    """An instance's pages hold, as written in one image (issue #19), exactly what the
    parts give built one by one: each function's thunk (``_thunk_bytes`` of its
    descriptor and ``jitrt_gate``), int3 up to the code's 16-byte start, the template
    with this instance's values (``X86Code.instantiate``), int3 to the end of the page;
    and each descriptor names the context, its function's entry, pc and frame size."""
    program = _functions_and_slots(nfuncs)
    fn = jit.compile(program, Runtime(), tier="direct", cache=False)
    assert fn() == 0x7000 + 8 * (nfuncs - 1)       # r0: the last function's map value
    code = fn._code
    template = code.template
    assert len(code.starts) == nfuncs and len(template.patches) == 2 * nfuncs
    state, (page, pages) = fn._state, run_of(fn)
    first_desc = fn.context_address + ctypes.sizeof(jit.JitContext)
    gate = jit._jitrt_symbols()["gate"]
    thunks = b"".join(jit._thunk_bytes(first_desc + i * ctypes.sizeof(jit.JitThunk), gate)
                      for i in range(nfuncs))
    room = -(-len(thunks) // 16) * 16
    values = [{"map_value": 0x7000, "map": 0x9000}[kind] for kind, _ in template.slots]
    want = thunks + b"\xcc" * (room - len(thunks)) + template.instantiate(values)
    assert ctypes.string_at(page, pages * PAGE) == want.ljust(pages * PAGE, b"\xcc")
    for i, desc in enumerate(state.descs):
        assert (desc.ctx, desc.fn, desc.pc, desc.frame) == (
            fn.context_address, page + room + template.offsets[i], code.starts[i],
            isa.STACK_SIZE)
    assert [fn.function_address(start) for start in code.starts] == [
        page + i * jit._THUNK_SIZE for i in range(nfuncs)]
    fn.close()


def test_patching_in_place_is_instantiating():
    """``X86Code.patch`` into a larger image at an offset writes what ``instantiate``
    gives (the values wrap at 64 bits with their addends, as the add they replace)."""
    program = _functions_and_slots(2)
    fn = jit.compile(program, Runtime(), tier="direct", cache=False)
    template = fn._code.template
    fn.close()
    for values in ([0x7000, 0x9000], [isa.U64, 1 << 63], [0, 0]):
        image = bytearray(b"\xaa" * 40) + bytearray(template.code) + bytearray(b"\xbb" * 8)
        template.patch(image, 40, values)
        assert bytes(image) == b"\xaa" * 40 + template.instantiate(values) + b"\xbb" * 8
    assert template.instantiate([0x7000, 0x9000]) != template.code


def test_the_state_views_are_made_when_asked_and_name_the_block():
    """The descriptors, vars table and stack of an instance are views of its one block
    (made on demand); the vars view is the one the context names until it is replaced."""
    fn = jit.compile(prog("mov %r0, 1\nexit"), Runtime(), tier="direct", cache=False)
    state = fn._state
    base = state.memory.base
    assert ctypes.addressof(state.descs) == base + ctypes.sizeof(jit.JitContext)
    assert ctypes.addressof(state.vars) == state.ctx.vars == state.vars_addr
    assert state.vars is state.vars                 # one view, kept
    assert state.stack.addr == state.ctx.stack_lo and (
        state.stack.addr + state.stack.size == state.ctx.stack_hi)
    table = (ctypes.c_uint64 * 2)()
    state.vars = table
    assert state.vars is table
    fn.close()
