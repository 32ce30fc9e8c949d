"""may_goto at run time: both engines keep a hidden counter per frame that starts at
``may_goto_loops`` (the kernel's BPF_MAX_LOOPS, 8M, unless a test injects a smaller one),
count it down at every may_goto that falls through, and jump once it is 0.

Every program here is verified first (the verifier must accept it), then run by the
interpreter and the JIT; the expected values follow from the counter rule stated above
(``expected_*`` helpers spell the arithmetic out)."""

from __future__ import annotations

import pathlib
import struct

import pytest

from uringbpf.bpf import asm, isa, jit
from uringbpf.bpf.cc import compile_c
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.object import BpfObject
from uringbpf.bpf.verifier import verify

CAPS = (0, 1, 2, 7, 100)


def program(text: str) -> isa.Program:
    """Assemble ``text`` as a socket filter and check that the verifier accepts it."""
    p = isa.Program("t", asm.assemble(text), prog_type="socket_filter")
    verify(p)
    return p


def both(p: isa.Program, cap: int | None, *args: int) -> tuple[int, int]:
    """r0 from the interpreter and from the JIT (LLVM tier: the direct tier leaves
    may_goto to it) with ``cap`` as the counter's start value (None: the default)."""
    kw = {} if cap is None else {"may_goto_loops": cap}
    a = Interpreter(p, **kw).run(*args)
    b = jit.compile(p, tier="llvm", **kw)(*args)
    return a, b


# r0 counts the fall-throughs of one may_goto: exactly the counter's start value
COUNT = """
    r0 = 0
loop:
    may_goto out
    r0 += 1
    goto loop
out:
    exit
"""


@pytest.mark.parametrize("cap", CAPS)
def test_counter_bounds_the_loop(cap):
    assert both(program(COUNT), cap) == (cap, cap)


def test_default_cap_is_bpf_max_loops():
    """The JIT runs the kernel's full 8M iterations quickly; the interpreter is checked on
    the small caps above (8M Python iterations would take too long for a unit test)."""
    assert isa.BPF_MAX_LOOPS == 8 * 1024 * 1024
    assert jit.compile(program(COUNT), tier="llvm")() == isa.BPF_MAX_LOOPS
    assert Interpreter(program(COUNT)).may_goto_loops == isa.BPF_MAX_LOOPS


# for (i = 0; i < n && can_loop; i++) sum += i;  n is r2, the data length (unknown to the
# verifier; nothing reads the data)
SUM_TO_N = """
    r0 = 0
    r6 = 0
loop:
    may_goto out
    if r6 >= r2 goto out
    r0 += r6
    r6 += 1
    goto loop
out:
    exit
"""


def expected_sum(n: int, cap: int) -> int:
    """sum(range(k)) where k = the iterations run: n, or fewer once the counter is spent."""
    k = min(n, cap)
    return k * (k - 1) // 2


@pytest.mark.parametrize("n,cap", [(0, 5), (4, 100), (10, 3), (50, 50), (50, 49)])
def test_unknown_bound_result_and_cap(n, cap):
    p = program(SUM_TO_N)
    want = expected_sum(n, cap)
    assert both(p, cap, 0, n) == (want, want)


def test_unknown_bound_default_cap():
    p = program(SUM_TO_N)
    assert both(p, None, 0, 1000) == (expected_sum(1000, 1000),) * 2


# two loops in one frame share its counter: the inner loop spends what the outer one
# would have had left
NESTED = """
    r0 = 0
    r6 = 0
outer:
    may_goto out
    r7 = 0
inner:
    may_goto inner_done
    r0 += 1
    r7 += 1
    if r7 < 3 goto inner
inner_done:
    r6 += 1
    r0 += 100
    goto outer
out:
    exit
"""


def expected_nested(cap: int) -> int:
    """Each outer pass takes one count, then up to three for the inner body (+1 each), then
    adds 100; the run ends at the first may_goto that finds the counter at 0."""
    counter, r0 = cap, 0
    while counter:
        counter -= 1                 # outer may_goto falls through
        for _ in range(3):
            if counter == 0:
                break                # inner may_goto jumps to inner_done
            counter -= 1
            r0 += 1
        r0 += 100
    return r0


@pytest.mark.parametrize("cap", CAPS + (11,))
def test_nested_loops_share_the_frame_counter(cap):
    want = expected_nested(cap)
    assert both(program(NESTED), cap) == (want, want)


# a subprogram's loop has its own counter, set anew at every call: each call of `count`
# runs `cap` iterations whatever the caller's counter says
SUBPROG = """
    r6 = 0
    r7 = 0
loop:
    may_goto out
    call local count
    r7 += r0
    r6 += 1
    if r6 < 3 goto loop
out:
    r0 = r7
    exit
count:
    r0 = 0
sub_loop:
    may_goto sub_out
    r0 += 1
    goto sub_loop
sub_out:
    exit
"""


@pytest.mark.parametrize("cap", CAPS)
def test_subprogram_counter_is_per_call(cap):
    calls = min(3, cap)               # the caller's loop: three passes or the cap
    want = calls * cap                # each call: a fresh counter of `cap`
    assert both(program(SUBPROG), cap) == (want, want)


# bpf_loop(4, cb, &ctx, 0): each callback invocation is a new frame with a fresh counter;
# the callback adds the iterations of its may_goto loop to a u64 on the caller's stack
CALLBACK = """
    r1 = 0
    *(u64 *)(r10 - 8) = r1
    r1 = 4
    r2 = func(cb) ll
    r3 = r10
    r3 += -8
    r4 = 0
    call 181
    r0 = *(u64 *)(r10 - 8)
    exit
cb:
    r6 = *(u64 *)(r2 + 0)
cb_loop:
    may_goto cb_out
    r6 += 1
    goto cb_loop
cb_out:
    *(u64 *)(r2 + 0) = r6
    r0 = 0
    exit
"""


@pytest.mark.parametrize("cap", CAPS)
def test_callback_counter_is_per_invocation(cap):
    want = 4 * cap
    assert both(program(CALLBACK), cap) == (want, want)


#: BPF C with can_loop / cond_break (uringbpf's bpf_experimental.h); the same object the
#: 7.2 guest loaded (tests/bpf/verifier/may_goto_c/, test_may_goto_verifier.py)
C_SOURCE = pathlib.Path(__file__).parent / "verifier" / "may_goto_c" / "loops.bpf.c"


@pytest.fixture(scope="module")
def c_object(tmp_path_factory):
    return compile_c(C_SOURCE, tmp_path_factory.mktemp("may_goto_c") / "loops.bpf.o")


def c_expected(name: str, v: list[int], cap: int) -> int:
    """What each program of loops.bpf.c returns with the map value ``v`` when every frame's
    counter starts at ``cap``; a can_loop that finds the counter at 0 is false."""
    def triangle(n: int) -> int:
        return expected_sum(n, cap)

    if name == "sum_to_n":
        return triangle(v[0])
    if name == "count_forever":
        return cap
    if name == "index_bounded":
        return sum(v[:min(v[0], 8, cap)])
    if name == "nested":             # both loops share the frame's counter
        left, total, i = cap, 0, 0
        while i < v[0] and left:
            left -= 1
            j = 0
            while j < v[1] and left:
                left -= 1
                total += i * j
                j += 1
            i += 1
        return total
    if name == "in_subprog":         # a fresh counter for each call
        return triangle(v[0]) + triangle(v[1])
    if name == "in_callback":        # and for each callback invocation
        return sum(min(index, cap) for index in range(5))
    raise AssertionError(name)


C_PROGRAMS = ("sum_to_n", "count_forever", "index_bounded", "nested", "in_subprog", "in_callback")


@pytest.mark.parametrize("cap", (0, 1, 3, 7, 1000))
def test_bpf_c_loops_on_both_engines(c_object, cap):
    """can_loop / cond_break compile to may_goto (zig's clang), verify, and give the same
    results on both engines for every program of loops.bpf.c, the counter cap injected."""
    obj = BpfObject.open(c_object)
    obj.load(engine="interp")
    v = [5, 4, 11, 12, 13, 14, 15, 16]
    obj.maps["vals"][struct.pack("<I", 0)] = struct.pack("<8Q", *v)
    for name in C_PROGRAMS:
        prog = obj.programs[name]
        assert any(i.is_may_goto for i in prog.insns)
        # the loader bound bpf_loop's callback calls to its own interpreter; these engines
        # are others: let bpf_loop call the callback's native address (each engine's own)
        prog.runtime.call_function = None
        a = Interpreter(prog.program, prog.runtime, may_goto_loops=cap).run()
        b = jit.compile(prog.program, prog.runtime, tier="llvm", may_goto_loops=cap)()
        assert (name, a, b) == (name, c_expected(name, v, cap), c_expected(name, v, cap))


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_bpf_c_default_counter(c_object, engine):
    """Loaded the ordinary way (BpfObject.load), with the kernel's 8M counter."""
    obj = BpfObject.open(c_object)
    obj.load(engine=engine)
    v = [300, 20, 1, 2, 3, 4, 5, 6]
    obj.maps["vals"][struct.pack("<I", 0)] = struct.pack("<8Q", *v)
    for name in ("sum_to_n", "nested", "in_subprog", "in_callback"):
        assert obj.programs[name]() == c_expected(name, v, isa.BPF_MAX_LOOPS)
    if engine == "jit":   # 8M iterations: native speed only
        assert obj.programs["count_forever"]() == isa.BPF_MAX_LOOPS


def test_jit_code_cache_does_not_fix_the_cap():
    """The cap is an instance value (a vars slot), not part of the cached machine code: two
    instances of the same program with different caps give different counts."""
    p = program(COUNT)
    first = jit.compile(p, tier="llvm", may_goto_loops=5)
    second = jit.compile(p, tier="llvm", may_goto_loops=9)
    assert (first(), second()) == (5, 9)


def test_invalid_may_goto_refused_by_both_engines():
    """Unverified programs: the engines refuse a may_goto with reserved fields set, as
    the verifier does (the kernel's message names imm)."""
    bad = [isa.Insn(isa.OP_MAY_GOTO, 0, 0, 0, 7), isa.Insn(isa.OP_EXIT)]
    with pytest.raises(Exception, match="invalid may_goto imm 7"):
        Interpreter(bad)
    with pytest.raises(Exception, match="invalid may_goto imm 7"):
        jit.compile(bad, tier="llvm")
