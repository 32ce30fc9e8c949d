"""The instruction budget of unverified runs bounds a tree of calls on every engine (the
interpreter's ``max_insns``, checked mode of LLVM's code and of the direct tier): a
program without backward jumps whose functions call each other (f0 calls f1 k times, f1
calls f2 k times, ...) or whose callbacks make a helper call them again does k**depth
work, and must stop with the same "instruction limit" error. Also: LLVM's IR for a
conditional jump as the last instruction of a function (its fall-through leaves the
function), and LD_ABS/LD_IND out of bounds inside a subprogram (that function returns 0
and its caller goes on, as the kernel's rewrite of LD_ABS does)."""

from __future__ import annotations

import ctypes
import re

import pytest

from uringbpf.bpf import isa, jit, verifier
from uringbpf.bpf.helpers import Arg, Helper, Proto, Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.isa import Insn
from uringbpf.bpf.memory import BpfRuntimeError, Buffer
from uringbpf.errors import JitError

EXIT = Insn(isa.OP_EXIT)
ENGINES = ("interp", "direct", "llvm")


def mov(dst: int, imm: int) -> Insn:
    return Insn(isa.ALU64 | isa.MOV | isa.K, dst, 0, 0, imm)


def add(dst: int, src: int) -> Insn:
    return Insn(isa.ALU64 | isa.ADD | isa.X, dst, src, 0)


def addi(dst: int, imm: int) -> Insn:
    return Insn(isa.ALU64 | isa.ADD | isa.K, dst, 0, 0, imm)


def call_at(pc: int, target: int) -> Insn:
    return Insn(isa.OP_CALL, 0, isa.PSEUDO_CALL, 0, target - pc - 1)


def run(insns: list[Insn], engine: str, *, limit: int | None = None, checked: bool = True,
        helpers=None, args=(), runtime=None) -> tuple:
    """("ok", r0) or (exception type, pc, message) of one engine; ``checked`` only for
    the JIT tiers (the interpreter always counts)."""
    program = isa.Program("tree", insns)
    runtime = runtime or Runtime()
    try:
        if engine == "interp":
            kw = {"max_insns": limit} if limit else {}
            if helpers:
                kw["helpers"] = helpers
            return ("ok", Interpreter(program, runtime, **kw).run(*args))
        fn = jit.compile(program, runtime, checked=checked, tier=engine, cache=False,
                         helpers=helpers)
        assert fn.tier == engine
        if limit:
            fn.insn_limit = limit
        try:
            return ("ok", fn(*args))
        finally:
            fn.close()
    except (BpfRuntimeError, JitError) as exc:
        return (type(exc).__name__, exc.pc, re.sub("0x[0-9a-f]{9,}", "ADDR", str(exc)))


def call_tree(levels: int, calls: int, pad: int = 0) -> list[Insn]:
    """Function i calls function i + 1 ``calls`` times (the last adds instead); each
    returns 1 + the sum of its callees' results; ``pad`` extra moves per function. No
    backward jump anywhere: calls**(levels - 1) leaf calls in all."""
    insns: list[Insn] = []
    size = 2 * calls + 3 + pad
    for level in range(levels):
        start = level * size
        insns.append(mov(6, 1))
        insns += [mov(7, level)] * pad
        for _ in range(calls):
            if level < levels - 1:
                insns += [call_at(len(insns), start + size), add(6, 0)]
            else:
                insns += [addi(6, 0), addi(6, 0)]
        insns += [Insn(isa.ALU64 | isa.MOV | isa.X, 0, 6, 0), EXIT]
        assert len(insns) == start + size
    return insns


def tree_total(levels: int, calls: int) -> int:
    return sum(calls ** i for i in range(levels))


@pytest.mark.parametrize("levels,calls,pad", [(6, 8, 0), (5, 12, 3), (8, 4, 7)])
def test_a_tree_of_local_calls_stops_at_the_limit_on_every_engine(levels, calls, pad):
    """Each engine stops with the same error; the JIT tiers at the same pc (a function's
    first instruction, where they charge the function's length), the interpreter too."""
    insns = call_tree(levels, calls, pad)
    starts = {level * (2 * calls + 3 + pad) for level in range(1, levels)}
    got = {engine: run(insns, engine, limit=5_000) for engine in ENGINES}
    for engine, result in got.items():
        assert result[0] == "BpfRuntimeError", (engine, result)
        assert "instruction limit of 5000 exceeded" in result[2], (engine, result)
        assert result[1] in starts, (engine, result)
    assert got["direct"] == got["llvm"]


def test_a_tree_of_calls_within_the_budget_runs_to_the_end():
    """Charging entries does not stop a program whose tree fits the budget."""
    insns = call_tree(4, 4)
    for engine in ENGINES:
        assert run(insns, engine, limit=1_000_000) == ("ok", tree_total(4, 4)), engine


def test_verified_call_tree_results_unchanged():
    """A verified program runs unchecked on the JITs, with the same result as before."""
    insns = call_tree(4, 5, 2)
    verifier.verify(isa.Program("tree", insns, section="socket"))
    for engine in ENGINES:
        assert run(insns, engine, checked=False) == ("ok", tree_total(4, 5)), engine


_CB = ctypes.CFUNCTYPE(ctypes.c_uint64, *([ctypes.c_uint64] * 5))


def fan_out(runtime, count, cb, level, *rest):
    """A bpf_loop-like helper: calls the callback at ``cb`` ``count`` times with
    (level, count, cb); returns the sum of its results."""
    f = _CB(cb)
    return sum(f(level, count, cb, 0, 0) for _ in range(count))


FAN_OUT = {1000: Helper(Proto("fan_out", (Arg.ANYTHING,) * 5), fan_out, 1000)}


def callback_tree(depth: int, count: int) -> list[Insn]:
    """main: fan_out(count, &cb, 1); cb(level, count, cb): 1 when level == depth, else
    1 + fan_out(count, cb, level + 1). No backward jump; count**depth callbacks."""
    cb_at = 6
    main = [mov(1, count), *isa.lddw_pair(2, cb_at - 2, isa.PSEUDO_FUNC), mov(3, 1),
            Insn(isa.OP_CALL, 0, 0, 0, 1000), EXIT]
    assert len(main) == cb_at
    cb = [Insn(isa.JMP | isa.JNE | isa.K, 1, 0, 2, depth), mov(0, 1), EXIT,
          Insn(isa.ALU64 | isa.MOV | isa.X, 6, 1, 0),
          Insn(isa.ALU64 | isa.MOV | isa.X, 1, 2, 0),
          Insn(isa.ALU64 | isa.MOV | isa.X, 2, 3, 0),
          Insn(isa.ALU64 | isa.MOV | isa.X, 3, 6, 0), addi(3, 1),
          Insn(isa.OP_CALL, 0, 0, 0, 1000), addi(0, 1), EXIT]
    return main + cb


def test_a_tree_of_callbacks_stops_at_the_limit_on_every_engine():
    """Callbacks called by a helper that the callback calls again: count**depth runs of
    one short function; the run's budget covers all of them on every engine."""
    insns = callback_tree(5, 10)
    for engine in ENGINES:
        result = run(insns, engine, limit=2_000, helpers=FAN_OUT)
        assert result[0] == "BpfRuntimeError", (engine, result)
        assert "instruction limit of 2000 exceeded" in result[2], (engine, result)
    small = callback_tree(3, 3)
    for engine in ENGINES:
        assert run(small, engine, limit=1_000_000, helpers=FAN_OUT) == (
            "ok", tree_total(4, 3) - 1), engine


# --- a conditional jump as a function's last instruction ---------------------------------

def cond_last(op: int, cls: int, then_g: bool) -> list[Insn]:
    """main: r0 = f(r1); if r0 == 3, r0 = g(). f ends with ``if r0 <op> 0 goto exit``:
    its fall-through (r0 = -1000 after adding 1000 to r1) leaves f. g (r0 = 77) follows f
    (``then_g``) or is placed before f, so that f is the last function."""
    f_len, g_len = 5, 2
    f_at, g_at = (4, 9) if then_g else (6, 4)
    main = [call_at(0, f_at), Insn(isa.JMP | isa.JNE | isa.K, 0, 0, 1, 3),
            call_at(2, g_at), EXIT]
    f = [Insn(isa.ALU64 | isa.MOV | isa.X, 0, 1, 0),
         Insn(isa.JMP | isa.JGT | isa.K, 0, 0, 1, 5), EXIT, addi(0, 1000),
         Insn(cls | op | isa.K, 0, 0, -3, 0)]
    g = [mov(0, 77), EXIT]
    insns = main + (f + g if then_g else g + f)
    assert len(f) == f_len and len(g) == g_len and insns[f_at] == f[0]
    return insns


@pytest.mark.parametrize("then_g", [True, False], ids=["f-then-g", "f-last"])
@pytest.mark.parametrize("op", [isa.JNE, isa.JSGT, isa.JSET, isa.JLT])
@pytest.mark.parametrize("cls", [isa.JMP, isa.JMP32], ids=["jmp", "jmp32"])
def test_a_conditional_jump_ending_a_function(cls, op, then_g):
    """LLVM's IR is valid; the fall-through past f's end is ERR_FELL_OFF at f's last
    instruction on both JIT tiers; the other paths give the same results everywhere (the
    interpreter, which knows no function ends, agrees when f is the last function)."""
    insns = cond_last(op, cls, then_g)
    last = (8 if then_g else 10)
    taken = {isa.JNE: lambda v: v != 0, isa.JSGT: lambda v: v > 0,
             isa.JSET: lambda v: False, isa.JLT: lambda v: False}[op]
    for r1 in (3, 9, 6, 40, (-1000) & isa.U64, (-1001) & isa.U64):
        r0 = r1 if r1 <= 5 else (r1 + 1000) & isa.U64
        signed = r0 - (1 << 64) if r0 >> 63 else r0
        if cls == isa.JMP32:
            low = r0 & 0xFFFFFFFF
            signed = low - (1 << 32) if low >> 31 else low
        got = {engine: run(insns, engine, args=(r1,)) for engine in ENGINES}
        assert got["direct"] == got["llvm"], (r1, got)
        if r1 <= 5 or taken(signed):
            want = ("ok", 77 if r0 == 3 else r0)
            assert got["llvm"] == want == got["interp"], (r1, got)
        else:
            kind, pc, message = got["llvm"]
            assert kind == "BpfRuntimeError" and pc == last and "fell off" in message
            if not then_g:
                assert got["interp"] == got["llvm"]
    with pytest.raises(verifier.BpfVerifierError):
        verifier.verify(isa.Program("t", insns, section="socket"))


# --- LD_ABS / LD_IND out of bounds in a subprogram ----------------------------------------

DATA = bytes(range(0x80, 0xC0))


def packet_program(size: int, mode: int, off: int, nested: bool) -> list[Insn]:
    """main: r0 = sub(data, length) + 5. sub: r0 = packet[off (+ r7 = 3 for IND)] + 100,
    or (``nested``) sub2() + 100 where sub2 does the load. The loading function sets r6
    (the context, as the kernel's verifier wants it there) and r7 itself. An out-of-bounds
    load makes the function holding it return 0 (the kernel's bpf_gen_ld_abs: r0 = 0;
    exit); its callers go on."""
    load = [Insn(isa.ALU64 | isa.MOV | isa.X, 6, 1, 0), mov(7, 3),
            Insn(isa.LD | mode | size, 0, 7 if mode == isa.IND else 0, 0, off)]
    main = [call_at(0, 3), addi(0, 5), EXIT]
    if not nested:
        return main + load + [addi(0, 100), EXIT]
    return main + [call_at(3, 6), addi(0, 100), EXIT] + load + [addi(0, 1000), EXIT]


@pytest.mark.parametrize("nested", [False, True], ids=["sub", "sub-of-sub"])
@pytest.mark.parametrize("mode", [isa.ABS, isa.IND], ids=["abs", "ind"])
@pytest.mark.parametrize("size", [isa.B, isa.H, isa.W], ids=["b", "h", "w"])
def test_packet_load_out_of_bounds_returns_from_the_subprogram(size, mode, nested):
    """In bounds the value is loaded; out of bounds (before the data, past its end, at
    the last bytes) only the loading function returns 0 and its callers go on: the same
    on the interpreter and both JIT tiers, checked or not."""
    width = isa.SIZE_BYTES[size]
    base = 3 if mode == isa.IND else 0
    for length in (len(DATA), 7):
        for off in (-1, 0, 1, length - width - base, length - width - base + 1, 1 << 20,
                    -(1 << 31)):
            insns = packet_program(size, mode, off, nested)
            at = base + off
            if 0 <= at and at + width <= length:
                loaded = int.from_bytes(DATA[at:at + width], "big")
                want = loaded + (1000 if nested else 0) + 100 + 5
            else:
                want = (100 if nested else 0) + 5
            for engine in ENGINES:
                for checked in (False, True):
                    rt = Runtime()
                    buf = Buffer(len(DATA), DATA)
                    rt.mem.add_buffer(buf, False, "data")
                    got = run(insns, engine, checked=checked, runtime=rt,
                              args=(buf.addr, length))
                    assert got == ("ok", want), (engine, checked, length, off, got)


@pytest.mark.parametrize("checked", [False, True], ids=["unchecked", "checked"])
def test_may_goto_ending_a_function_on_llvm(checked):
    """``may_goto`` as a function's last instruction (the direct tier leaves may_goto to
    LLVM): its fall-through, taken while the frame's counter lasts, is ERR_FELL_OFF at it;
    a later function exists (its first instruction used to be the branch target)."""
    main = [call_at(0, 3), EXIT, call_at(2, 7)]
    f = [mov(0, 5), Insn(isa.OP_JA, 0, 0, 1), EXIT, Insn(isa.OP_MAY_GOTO, 0, 0, -2)]
    g = [mov(0, 77), EXIT]
    kind, pc, message = run(main + f + g, "llvm", checked=checked)
    assert kind == "BpfRuntimeError" and pc == 6 and "fell off" in message
