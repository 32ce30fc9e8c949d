"""Adversarial programs for the direct x86-64 tier (bpf/jit_x86.py, bpf/x86.py): the x86
registers with fixed roles (rax/rdx for div and mod while they hold r0/r3, cl for shift
counts while rcx holds r4, rax for cmpxchg), the translator's peepholes and short jumps,
the checked mode's budget and bounds, validation, calls, callx, LD_ABS/IND, helper errors,
the switch to LLVM's code during a run and an instance closed during its run. Each program
runs on the interpreter and the direct tier (unchecked and checked) and, where the
engines' contracts agree, on LLVM's code: the results must be the same."""

from __future__ import annotations

import ctypes
import gc
import random
import re
import threading
import time

import pytest

from uringbpf.bpf import isa, jit
from uringbpf.bpf.helpers import Arg, Helper, Proto, Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.isa import Insn
from uringbpf.bpf.memory import BpfRuntimeError, Buffer
from uringbpf.errors import JitError

U64 = isa.U64
EXIT = Insn(isa.OP_EXIT)


def k_op(op: int, dst: int, imm: int, w: bool = True, off: int = 0) -> Insn:
    return Insn((isa.ALU64 if w else isa.ALU) | op | isa.K, dst, 0, off, imm)


def x_op(op: int, dst: int, src: int, w: bool = True, off: int = 0) -> Insn:
    return Insn((isa.ALU64 if w else isa.ALU) | op | isa.X, dst, src, off)


def local_call(pc: int, target: int) -> Insn:
    return Insn(isa.OP_CALL, 0, isa.PSEUDO_CALL, 0, target - pc - 1)


def outcome(run) -> tuple:
    """("ok", r0) or (exception type, pc, message without addresses)."""
    try:
        return ("ok", run())
    except (BpfRuntimeError, JitError) as exc:
        # addresses differ per engine and run
        return (type(exc).__name__, exc.pc, re.sub("0x[0-9a-f]{9,}", "ADDR", str(exc)))


def run_engines(insns: list[Insn], engines=("interp", "direct", "direct-checked"),
                args=(), helpers=None, make_runtime=Runtime, limit: int | None = None) -> dict:
    program = isa.Program("adv", insns)
    results = {}
    for engine in engines:
        if engine == "interp":
            kw = {"helpers": helpers} if helpers else {}
            results[engine] = outcome(
                lambda: Interpreter(program, make_runtime(), **kw).run(*args))
            continue

        def go():
            fn = jit.compile(program, make_runtime(), checked=engine.endswith("checked"),
                             tier=engine.split("-")[0], cache=False, helpers=helpers)
            assert fn.tier == engine.split("-")[0]
            if limit:
                fn.insn_limit = limit
            try:
                return fn(*args)
            finally:
                fn.close()
        results[engine] = outcome(go)
    return results


def assert_same(insns: list[Insn], **kw) -> tuple:
    results = run_engines(insns, **kw)
    assert len(set(results.values())) == 1, results
    return next(iter(results.values()))


def fold_registers(extra_slots=(), acc_slot: int = -88) -> list[Insn]:
    """Store r0..r9 on the stack and fold them (and the words at ``extra_slots``) into the
    checksum at ``acc_slot``."""
    out = [Insn(isa.STX | isa.MEM | isa.DW, 10, r, -8 * (r + 1)) for r in range(10)]
    for slot in [-8 * (r + 1) for r in range(10)] + list(extra_slots):
        out += [Insn(isa.LDX | isa.MEM | isa.DW, 1, 10, acc_slot),
                k_op(isa.MUL, 1, 1000003),
                Insn(isa.LDX | isa.MEM | isa.DW, 2, 10, slot),
                x_op(isa.XOR, 1, 2),
                Insn(isa.STX | isa.MEM | isa.DW, 10, 1, acc_slot)]
    return out


def checksum_program(blocks: list[list[Insn]], extra_slots=()) -> list[Insn]:
    insns = [Insn(isa.ST | isa.MEM | isa.DW, 10, 0, -88, 0)]
    for block in blocks:
        insns += block + fold_registers(extra_slots)
    return insns + [Insn(isa.LDX | isa.MEM | isa.DW, 0, 10, -88), EXIT]


SPECIAL = [0, 1, 2, 31, 32, 63, 64, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000,
           0x8000000000000000, 0x7FFFFFFFFFFFFFFF, U64, U64 - 6, 0x1FF00000003]


@pytest.mark.parametrize("w", [True, False], ids=["alu64", "alu32"])
@pytest.mark.parametrize("op,off", [(isa.DIV, 0), (isa.DIV, 1), (isa.MOD, 0), (isa.MOD, 1),
                                    (isa.LSH, 0), (isa.RSH, 0), (isa.ARSH, 0), (isa.MUL, 0)],
                         ids=["div", "sdiv", "mod", "smod", "lsh", "rsh", "arsh", "mul"])
def test_every_register_pair_keeps_every_other_register(op, off, w):
    """dst, src over all of r0..r9 (dst == src included): the result and all ten
    registers after the operation, for random and edge values."""
    rnd = random.Random(op * 3 + off + w)
    blocks = []
    for dst in range(10):
        for src in range(10):
            values = [rnd.choice(SPECIAL + [rnd.getrandbits(64)]) for _ in range(10)]
            block = []
            for r in range(10):
                block += isa.lddw_pair(r, values[r])
            blocks.append(block + [x_op(op, dst, src, w, off)])
        imm = rnd.choice([0, -1, 1, 3, 31, 32, 63, -0x80000000, 0x7FFFFFFF])
        block = []
        for r in range(10):
            block += isa.lddw_pair(r, rnd.choice(SPECIAL))
        blocks.append(block + [k_op(op, dst, imm, w, off)])
    assert_same(checksum_program(blocks))


def test_alu32_shift_by_a_zero_count_still_zero_extends():
    """A 32-bit shift by cl = 0 (or 32: masked to 0) writes the register zero-extended."""
    blocks = []
    for op in (isa.LSH, isa.RSH, isa.ARSH):
        for dst, src in ((1, 4), (4, 1), (4, 4), (0, 3), (3, 0)):
            for count in (0, 32, 64):
                block = list(isa.lddw_pair(dst, U64)) + list(isa.lddw_pair(src, count))
                blocks.append(block + [x_op(op, dst, src, False)])
                blocks.append(list(isa.lddw_pair(dst, U64)) + [k_op(op, dst, 0, False)])
    assert_same(checksum_program(blocks))


ATOMIC_CODES = [isa.ATOMIC_ADD, isa.ATOMIC_OR, isa.ATOMIC_AND, isa.ATOMIC_XOR,
                isa.ATOMIC_ADD | isa.FETCH, isa.ATOMIC_OR | isa.FETCH,
                isa.ATOMIC_AND | isa.FETCH, isa.ATOMIC_XOR | isa.FETCH, isa.XCHG, isa.CMPXCHG]


@pytest.mark.parametrize("size", [isa.DW, isa.W], ids=["dw", "w"])
def test_atomics_every_base_and_source_register(size):
    """Every atomic with the base and the source in r0..r9 (rax is cmpxchg's comparand
    and the fetch loops' scratch), memory and all registers compared after it."""
    rnd = random.Random(size)
    blocks = []
    for code in ATOMIC_CODES:
        for base in range(10):
            for src in range(10):
                if src == base or (code == isa.CMPXCHG and base == 0):
                    continue       # the base register holds a stack address (differs per run)
                values = [rnd.getrandbits(64) for _ in range(10)]
                mem = rnd.getrandbits(64)
                if code == isa.CMPXCHG and rnd.random() < 0.5:
                    mem = values[0]            # the compare succeeds
                block = []
                for r in range(10):
                    block += isa.lddw_pair(r, values[r])
                block += [Insn(isa.ST | isa.MEM | isa.W, 10, 0, -128, mem & 0xFFFFFFFF),
                          Insn(isa.ST | isa.MEM | isa.W, 10, 0, -124, mem >> 32),
                          x_op(isa.MOV, base, 10), k_op(isa.ADD, base, -100),
                          Insn(isa.STX | isa.ATOMIC | size, base, src, -28, code),
                          x_op(isa.SUB, base, 10)]
                blocks.append(block)
    assert_same(checksum_program(blocks, extra_slots=(-128,)))


def call_tree(levels: int, calls: int) -> list[Insn]:
    """Function i calls function i + 1 ``calls`` times and returns 1 + the sum of their
    results (the last returns 1): no backward jump anywhere, calls**(levels - 1) leaf
    calls in all; r0 counts the functions run."""
    insns, size = [], 2 * calls + 3
    for level in range(levels):
        start = level * size
        insns.append(k_op(isa.MOV, 6, 1))
        for _ in range(calls):
            if level < levels - 1:
                insns += [local_call(len(insns), start + size), x_op(isa.ADD, 6, 0)]
            else:
                insns += [k_op(isa.ADD, 6, 0), k_op(isa.ADD, 6, 0)]
        insns += [x_op(isa.MOV, 0, 6), EXIT]
    return insns


def test_checked_budget_bounds_a_tree_of_calls_without_loops():
    """Checked mode bounds every run: a tree of calls (8**5 calls, no backward jump) would
    otherwise never be charged; each entry of a function spends its length."""
    insns = call_tree(6, 8)
    results = run_engines(insns, engines=("direct-checked",), limit=10_000)
    kind, _pc, message = results["direct-checked"]
    assert kind == "BpfRuntimeError" and "instruction limit of 10000" in message
    # within the default budget, the result is the interpreter's
    assert assert_same(call_tree(4, 4)) == ("ok", 1 + 4 + 16 + 64)


def test_short_jump_to_an_aligned_loop_head():
    """A forward jump whose target is a loop head (maybe padded to 16 bytes) across code
    that is nearly as long as its upper bound: the 8-bit form must still reach (every
    alignment of the head, through a prefix of 0..15 five-byte moves)."""
    for prefix in range(16):
        insns = [k_op(isa.MOV, 1, 0)] + [k_op(isa.MOV, 3, 1)] * prefix
        head = len(insns) + 1 + 9
        end = head + 20
        insns.append(Insn(isa.JMP | isa.JEQ | isa.K, 1, 0, head - len(insns) - 1, 0))
        for _ in range(9):      # compare imm32 + jcc rel32: 13 bytes each, near the bound
            insns.append(Insn(isa.JMP | isa.JGT | isa.K, 2, 0, end - len(insns) - 1, 0x12345))
        insns += [k_op(isa.ADD, 0, 1), Insn(isa.JMP | isa.JLT | isa.K, 0, 0, -2, 3), EXIT,
                  Insn(isa.OP_JA, 0, 0, 16)]
        for _ in range(8):
            insns += isa.lddw_pair(5, 1 << 40)
        insns.append(EXIT)
        assert len(insns) == end + 1
        assert assert_same(insns) == ("ok", 3), prefix


def test_translator_peepholes_against_the_interpreter():
    """`d = s; d &= 0xff/0xffff` (every width pair, every register) and `rX += rY;
    rX = *(rX + off)` (every register pair, size and sign): same as the interpreter."""
    rnd = random.Random(9)
    blocks = []
    for dst in range(10):
        for src in range(11):
            for w1, w2, imm in ((True, True, 0xFF), (False, True, 0xFFFF),
                                (True, False, 0xFFFF), (False, False, 0xFF)):
                block = list(isa.lddw_pair(dst, rnd.getrandbits(64)))
                if src < 10:
                    block += isa.lddw_pair(src, rnd.getrandbits(64))
                block += [x_op(isa.MOV, dst, src, w1), k_op(isa.AND, dst, imm, w2)]
                if src == 10:
                    block += [k_op(isa.AND, dst, 0x0F)]   # the stack address's low bits
                blocks.append(block)
    for dst in range(10):
        for src in range(10):
            if src == dst:
                continue
            for size, mode in ((isa.B, isa.MEM), (isa.H, isa.MEMSX), (isa.W, isa.MEMSX),
                               (isa.DW, isa.MEM)):
                blocks.append([
                    Insn(isa.ST | isa.MEM | isa.DW, 10, 0, -96, -0x12345678),
                    x_op(isa.MOV, dst, 10), k_op(isa.ADD, dst, -96 + 200 - 8),
                    k_op(isa.MOV, src, 8), x_op(isa.ADD, dst, src),
                    Insn(isa.LDX | mode | size, dst, dst, -200)])
    assert_same(checksum_program(blocks))


def test_r10_overwritten_then_stack_accesses_and_calls():
    """An unverified program that writes r10: checked accesses through it are refused,
    a copy taken before still reaches the frame, calls still get their own frames."""
    assert assert_same([x_op(isa.MOV, 10, 1), Insn(isa.STX | isa.MEM | isa.DW, 10, 1, -8),
                        EXIT], engines=("interp", "direct-checked", "llvm-checked"))[0] \
        == "BpfMemoryError"
    insns = [x_op(isa.MOV, 2, 10), k_op(isa.MOV, 10, 5), local_call(2, 7),
             Insn(isa.STX | isa.MEM | isa.DW, 2, 0, -8), Insn(isa.LDX | isa.MEM | isa.DW, 0, 2, -8),
             x_op(isa.ADD, 0, 10), EXIT,
             x_op(isa.MOV, 0, 10), k_op(isa.MOV, 10, 0), x_op(isa.SUB, 0, 2), EXIT]
    # the callee's fp is its caller's frame - 512 whatever the caller's r10 holds (the
    # interpreter derives it from the caller's r10 register: 5 - 512, a known difference)
    assert assert_same(insns, engines=("direct-checked", "llvm-checked")) == \
        ("ok", (5 - 512) & U64)


def test_checked_stack_bounds_and_the_frame_edge():
    """-512 is the frame's last byte (all engines); -513 and 0 are outside it on both
    JIT tiers (checked) (the interpreter's stack is one buffer: it does not refuse -513)."""
    assert assert_same([Insn(isa.ST | isa.MEM | isa.DW, 10, 0, -512, 7),
                        Insn(isa.LDX | isa.MEM | isa.DW, 0, 10, -512), EXIT],
                       engines=("interp", "direct-checked", "llvm-checked")) == ("ok", 7)
    for off in (-513, 0, -520):
        got = assert_same([Insn(isa.ST | isa.MEM | isa.B, 10, 0, off, 7), k_op(isa.MOV, 0, 1),
                           EXIT], engines=("direct-checked", "llvm-checked"))
        assert got[0] == "BpfMemoryError", (off, got)


@pytest.mark.parametrize("insns", [
    [Insn(isa.OP_JA, 0, 0, 1), *isa.lddw_pair(0, 5), EXIT],
    [Insn(isa.OP_JA, 0, 0, 5), EXIT],
    [Insn(isa.OP_JA, 0, 0, -2), EXIT],
    [k_op(isa.MOV, 0, 3), Insn(isa.JMP32 | isa.EXIT)],
    [k_op(isa.MOV, 0, 3), Insn(isa.JMP32 | isa.CALL, 0, 0, 0, 5), EXIT],
    [*isa.lddw_pair(1, 0, isa.PSEUDO_FUNC), Insn(isa.OP_CALL | isa.X, 1), EXIT],
    [Insn(isa.OP_CALL, 0, isa.PSEUDO_CALL, 0, 1), EXIT, isa.lddw_pair(0, 1)[0]],
], ids=["into-lddw", "past-end", "before-start", "jmp32-exit", "jmp32-call", "func-into-lddw",
        "lddw-last"])
def test_invalid_control_flow_is_refused_up_front(insns):
    results = run_engines(insns, engines=("interp", "direct", "llvm"))
    assert results["direct"][0] == results["llvm"][0] == "JitError", results
    assert results["interp"][0] == "BpfRuntimeError"
    assert results["direct"][1:] == results["llvm"][1:] == results["interp"][1:], results


def test_jumps_to_the_last_instruction_and_falling_off():
    assert assert_same([k_op(isa.MOV, 0, 3), Insn(isa.OP_JA, 0, 0, 0), EXIT]) == ("ok", 3)
    got = assert_same([k_op(isa.MOV, 0, 3), Insn(isa.JMP | isa.JEQ | isa.K, 0, 0, 1, 3), EXIT,
                       k_op(isa.MOV, 0, 9)])
    assert "fell off" in got[2] and got[1] == 3


@pytest.mark.parametrize("insns,message", [
    ([k_op(isa.ADD, 0, 1), Insn(isa.OP_CALL, 0, isa.PSEUDO_CALL, 0, -2), EXIT], "depth"),
    ([k_op(isa.MOV, 0, 1), local_call(1, 3), EXIT, k_op(isa.ADD, 0, 1), local_call(4, 3),
      EXIT], "depth"),
    ([*isa.lddw_pair(6, 0, isa.PSEUDO_FUNC), Insn(isa.OP_CALL | isa.X, 6), EXIT], "depth"),
    ([k_op(isa.MOV, 1, 123456), Insn(isa.OP_CALL | isa.X, 1), EXIT], "callx"),
    ([k_op(isa.MOV, 1, 0), Insn(isa.OP_CALL | isa.X, 1), EXIT], "callx"),
    ([*isa.lddw_pair(1, 1 << 63), Insn(isa.OP_CALL | isa.X, 1), EXIT], "callx"),
    ([*isa.lddw_pair(1, (1 << 32) + 1), Insn(isa.OP_CALL | isa.X, 1), EXIT], "callx"),
    ([Insn(isa.OP_CALL | isa.X, 10), EXIT], "callx"),
], ids=["self", "sub-self", "callx-self", "callx-number", "callx-0", "callx-2**63",
        "callx-2**32+1", "callx-r10"])
def test_recursion_depth_and_callx_to_non_functions(insns, message):
    if insns[0].is_lddw and insns[0].src == isa.PSEUDO_FUNC:
        insns[0].imm = -1                 # the main function's own address
    for checked in ("", "-checked"):
        got = assert_same(insns, engines=("interp", "direct" + checked, "llvm" + checked))
        assert got[0] == "BpfRuntimeError" and message in got[2], got


@pytest.mark.parametrize("size", [isa.B, isa.H, isa.W], ids=["b", "h", "w"])
def test_ld_abs_ind_offsets_near_the_int_limits(size):
    data = Buffer(64, bytes(range(1, 65)))

    def runtime():
        rt = Runtime()
        rt.mem.add(data.addr, data.size, False, "packet")
        return rt
    r6 = x_op(isa.MOV, 6, 1)
    cases = [[r6, Insn(isa.LD | isa.ABS | size, 0, 0, 0, imm), EXIT]
             for imm in (0, 60, 61, 62, 63, 64, -1, -4, 0x7FFFFFFF, -0x80000000, 0x7FFFFFFC)]
    for value, imm in ((0x7FFFFFFF, 1), (0xFFFFFFFF, 1), (0x100000000, 2), (1 << 63, 3),
                       (U64, 5), (0x80000000, -0x80000000), (60, 2), (2, -1), (0xFFFFFFFE, 3)):
        cases.append([r6, *isa.lddw_pair(3, value), Insn(isa.LD | isa.IND | size, 0, 3, 0, imm),
                      k_op(isa.ADD, 0, 1), EXIT])
    for insns in cases:
        assert_same(insns, args=(data.addr, 64), make_runtime=runtime,
                    engines=("interp", "direct", "direct-checked", "llvm-checked"))


def _helper(fn, hid: int = 1000) -> dict:
    return {hid: Helper(Proto("h", (Arg.ANYTHING,) * 5), fn, hid, None)}


def test_helper_failure_inside_a_subprogram_loop_and_the_next_run():
    """A helper that raises on its third call, from a loop in a subprogram: the same error
    and pc on every engine, twice in a row (the error word is cleared between runs)."""
    count = [0]

    def sometimes(rt, *args):
        count[0] += 1
        if count[0] % 3 == 0:
            raise ValueError("boom")
        return count[0]
    insns = [k_op(isa.MOV, 6, 0), local_call(1, 3), EXIT,
             k_op(isa.ADD, 6, 1), Insn(isa.OP_CALL, 0, 0, 0, 1000),
             Insn(isa.JMP | isa.JLT | isa.K, 6, 0, -3, 5), EXIT]
    program = isa.Program("adv", insns)
    for tier in ("direct", "llvm"):
        for checked in (False, True):
            count[0] = 0
            fn = jit.compile(program, Runtime(), tier=tier, checked=checked,
                             helpers=_helper(sometimes), cache=False)
            for _ in range(2):
                with pytest.raises(BpfRuntimeError, match="boom") as info:
                    fn()
                assert info.value.pc == 4
            assert count[0] == 6
    count[0] = 0
    with pytest.raises(BpfRuntimeError, match="boom"):
        Interpreter(program, Runtime(), helpers=_helper(sometimes)).run()


def test_switch_to_llvm_while_a_run_is_inside_the_direct_code(monkeypatch):
    """The helper waits for the background compile and switch; the run then continues in
    the direct code: callx through a function address, a local call, a loop and the stack,
    with the interpreter's result; the next run is LLVM's code with the same result."""
    monkeypatch.setenv("URINGBPF_JIT_CACHE", "0")
    k = random.randrange(1, 1 << 20)
    insns = [*isa.lddw_pair(7, 0, isa.PSEUDO_FUNC), Insn(isa.ST | isa.MEM | isa.DW, 10, 0, -8, k),
             Insn(isa.OP_CALL, 0, 0, 0, 1000),
             x_op(isa.MOV, 6, 0), k_op(isa.MOV, 1, 3), Insn(isa.OP_CALL | isa.X, 7),
             x_op(isa.ADD, 6, 0), local_call(8, 16), x_op(isa.ADD, 6, 0),
             Insn(isa.LDX | isa.MEM | isa.DW, 0, 10, -8), x_op(isa.ADD, 0, 6), EXIT,
             x_op(isa.MOV, 0, 1), k_op(isa.MUL, 0, 3), EXIT,
             k_op(isa.MOV, 0, 0), k_op(isa.ADD, 0, 2), Insn(isa.JMP | isa.JLT | isa.K, 0, 0, -2, 1000),
             EXIT]
    insns[0].imm = 13 - 1
    program = isa.Program("adv%d" % k, insns)
    expected = Interpreter(program, Runtime(), helpers=_helper(lambda rt, *a: 7)).run()
    seen = []
    box = []

    def waiter(rt, *args):
        seen.append(box[0].tier)
        jit.tiering_wait()
        seen.append(box[0].tier)
        return 7
    for checked in (False, True):
        with jit._llvm_lock:      # the background compile waits until the run has started
            fn = jit.compile(program, Runtime(), tier="tiered", checked=checked,
                             helpers=_helper(waiter))
            box[:] = [fn]
            assert fn.tier == "direct"
        seen.clear()
        assert fn() == expected
        assert seen == ["direct", "llvm"] and fn.tier == "llvm"
        assert fn() == expected


@pytest.mark.parametrize("tier", ["direct", "llvm"])
@pytest.mark.parametrize("checked", [False, True], ids=["unchecked", "checked"])
def test_closed_and_dropped_during_the_run(tier, checked):
    """A helper closes the instance and drops the last reference during the run; the run
    finishes (stack, another helper call) with the interpreter's result."""
    box = []

    def closer(rt, *args):
        if box:
            fn = box.pop()
            fn.close()
            del fn
            gc.collect()
        return 5
    text = [Insn(isa.ST | isa.MEM | isa.DW, 10, 0, -8, 3), Insn(isa.OP_CALL, 0, 0, 0, 1000),
            Insn(isa.LDX | isa.MEM | isa.DW, 1, 10, -8), x_op(isa.ADD, 0, 1),
            x_op(isa.MOV, 6, 0), Insn(isa.OP_CALL, 0, 0, 0, 1000), x_op(isa.ADD, 0, 6), EXIT]
    program = isa.Program("adv", text)
    fn = jit.compile(program, Runtime(), tier=tier, checked=checked, helpers=_helper(closer),
                     cache=False)
    box.append(fn)
    call = fn.__call__
    del fn
    assert call() == 13
    with pytest.raises(BpfRuntimeError, match="closed"):
        call()


_REGS = [0, 1, 2, 3, 4, 5, 7, 8]        # r9 = r6 = the buffer; r10 untouched


def _peephole_program(rnd: random.Random) -> list[Insn]:
    """A loop (3 rounds) over random items built around the translator's peepholes:
    ``b = base + i; a = *(b + off); a op= v; *(b + off) = a`` (update in memory, with and
    without the index), ``b += i; b = *(b + off)`` (indexed load), ``a = s; a &= 0xff``,
    arithmetic and forward jumps over whole items (so liveness sees branches); then a
    checksum of the registers and the 256-byte buffer."""
    insns = [x_op(isa.MOV, 9, 1)]
    insns += [Insn(isa.ST | isa.MEM | isa.DW, 9, 0, 8 * i, rnd.getrandbits(31)) for i in range(32)]
    insns.append(x_op(isa.MOV, 6, 9))
    insns += [k_op(isa.MOV, r, rnd.randrange(31)) for r in _REGS]
    insns.append(Insn(isa.ST | isa.MEM | isa.DW, 10, 0, -16, 0))
    items = []
    for _ in range(rnd.randrange(5, 25)):
        kind = rnd.random()
        a, b, c = rnd.sample(_REGS, 3)
        size = rnd.choice([isa.B, isa.H, isa.W, isa.DW])
        off = isa.SIZE_BYTES[size] * rnd.randrange(8)
        w = rnd.random() < 0.7
        op = rnd.choice([isa.ADD, isa.SUB, isa.AND, isa.OR, isa.XOR])
        value = (k_op(op, a, rnd.choice([1, -1, 0xFF, 0x7FFFFFFF, -0x80000000, 3]), w)
                 if rnd.random() < 0.5 else x_op(op, a, rnd.choice([c, b, a]), w))
        if kind < 0.35:
            items.append([x_op(isa.MOV, b, 9), k_op(isa.AND, c, 7), k_op(isa.LSH, c, 3),
                          x_op(isa.ADD, b, c) if rnd.random() < 0.5 else k_op(isa.ADD, b, 0),
                          Insn(isa.LDX | isa.MEM | size, a, b, off), value,
                          Insn(isa.STX | isa.MEM | size, b, a, off)])
        elif kind < 0.55:
            items.append([x_op(isa.MOV, b, 9), k_op(isa.AND, c, 15), k_op(isa.LSH, c, 3),
                          x_op(isa.ADD, b, c), Insn(isa.LDX | isa.MEM | size, b, b, off)])
        elif kind < 0.7:
            items.append([x_op(isa.MOV, a, rnd.choice(_REGS), rnd.random() < 0.5),
                          k_op(isa.AND, a, rnd.choice([0xFF, 0xFFFF]), rnd.random() < 0.5)])
        elif kind < 0.85:
            items.append([x_op(rnd.choice([isa.ADD, isa.XOR, isa.MUL]), a, b),
                          k_op(isa.MOV, rnd.choice(_REGS), rnd.getrandbits(16))])
        else:
            items.append(None)                # a forward jump over the next item
    body = []
    for i, item in enumerate(items):
        if item is None:
            nxt = items[i + 1] if i + 1 < len(items) and items[i + 1] is not None else []
            op = rnd.choice([isa.JGT, isa.JEQ, isa.JSET])
            body.append(Insn(isa.JMP | op | isa.K, rnd.choice(_REGS), 0, len(nxt),
                             rnd.randrange(16)))
        else:
            body += item
    body += [Insn(isa.LDX | isa.MEM | isa.DW, 1, 10, -16), k_op(isa.ADD, 1, 1),
             Insn(isa.STX | isa.MEM | isa.DW, 10, 1, -16)]
    body.append(Insn(isa.JMP | isa.JLT | isa.K, 1, 0, -(len(body) + 1), 3))
    insns += body
    insns.append(Insn(isa.ST | isa.MEM | isa.DW, 10, 0, -8, 0))
    for r in range(9):
        insns += [Insn(isa.LDX | isa.MEM | isa.DW, 9, 10, -8), k_op(isa.MUL, 9, 1000003),
                  x_op(isa.XOR, 9, r), Insn(isa.STX | isa.MEM | isa.DW, 10, 9, -8)]
    insns += [x_op(isa.MOV, 9, 6), k_op(isa.MOV, 0, 0)]
    for i in range(32):
        insns += [Insn(isa.LDX | isa.MEM | isa.DW, 1, 9, 8 * i), k_op(isa.MUL, 0, 1000003),
                  x_op(isa.XOR, 0, 1)]
    return insns + [Insn(isa.LDX | isa.MEM | isa.DW, 1, 10, -8), x_op(isa.XOR, 0, 1), EXIT]


def test_peephole_fuzz_against_the_interpreter():
    """200 random programs around the unchecked-only peepholes (liveness-based update in
    memory, indexed loads, movzx): the direct tier's r0 (a checksum of every register and
    of the buffer, whose address both engines share) is the interpreter's."""
    data = Buffer(256)

    def runtime():
        rt = Runtime()
        rt.mem.add(data.addr, data.size, True, "buffer")
        return rt
    for seed in range(200):
        insns = _peephole_program(random.Random(seed))
        assert_same(insns, args=(data.addr,), make_runtime=runtime,
                    engines=("interp", "direct")), seed


def test_switch_while_another_thread_spins_in_the_direct_code(monkeypatch):
    """One thread runs the direct code (a loop polling a flag word, no helper: native code
    only, the GIL released); the background compile switches the instance meanwhile; the
    flag is set after the switch and the run finishes with the right result; the next run
    is LLVM's code."""
    monkeypatch.setenv("URINGBPF_JIT_CACHE", "0")
    flag = Buffer(16)
    k = random.randrange(1, 1 << 20)
    insns = [k_op(isa.MOV, 0, k), k_op(isa.ADD, 0, 1),           # r0 counts the polls
             Insn(isa.STX | isa.MEM | isa.DW, 1, 0, 8),
             Insn(isa.LDX | isa.MEM | isa.DW, 2, 1, 0),
             Insn(isa.JMP | isa.JEQ | isa.K, 2, 0, -4, 0),
             k_op(isa.MOV, 0, 0), x_op(isa.ADD, 0, 2), EXIT]
    program = isa.Program("spin%d" % k, insns)
    rt = Runtime()
    rt.mem.add(flag.addr, flag.size, True, "flag")
    with jit._llvm_lock:
        fn = jit.compile(program, rt, tier="tiered")
        assert fn.tier == "direct"
        out = []
        worker = threading.Thread(target=lambda: out.append(fn(flag.addr)))
        worker.start()
        for _ in range(100_000):        # inside the direct code before the switch starts
            if int.from_bytes(flag.read(8, 8), "little") > k:
                break
            time.sleep(0.001)
        assert int.from_bytes(flag.read(8, 8), "little") > k
    jit.tiering_wait()
    assert fn.tier == "llvm" and worker.is_alive()
    flag.write(0, (5).to_bytes(8, "little"))
    worker.join(30)
    assert out == [5] and int.from_bytes(flag.read(8, 8), "little") > k
    flag.write(0, (6).to_bytes(8, "little"))
    assert fn(flag.addr) == 6 and fn.tier == "llvm"


@pytest.mark.parametrize("tier", ["direct", "llvm"])
@pytest.mark.parametrize("checked", [False, True], ids=["unchecked", "checked"])
def test_closed_by_another_thread_during_the_run(tier, checked):
    """The main thread closes the instance and drops it while a worker thread spins in its
    code; released, the run finishes in that code (stack, flag) with the right result."""
    flag = Buffer(16)
    k = random.randrange(1, 1 << 20)
    insns = [k_op(isa.MOV, 0, k), k_op(isa.ADD, 0, 1), Insn(isa.STX | isa.MEM | isa.DW, 1, 0, 8),
             Insn(isa.LDX | isa.MEM | isa.DW, 2, 1, 0), Insn(isa.JMP | isa.JEQ | isa.K, 2, 0, -4, 0),
             Insn(isa.STX | isa.MEM | isa.DW, 10, 2, -8), Insn(isa.LDX | isa.MEM | isa.DW, 0, 10, -8),
             EXIT]
    rt = Runtime()
    rt.mem.add(flag.addr, flag.size, True, "flag")
    fn = jit.compile(isa.Program("close%d" % k, insns), rt, tier=tier, checked=checked,
                     cache=False)
    fn.insn_limit = 1 << 62                      # the spin must not run out of budget
    out = []
    call = fn.__call__
    worker = threading.Thread(target=lambda: out.append(call(flag.addr)))
    worker.start()
    for _ in range(100_000):
        if int.from_bytes(flag.read(8, 8), "little") > k:
            break
        time.sleep(0.001)
    fn.close()
    del fn
    gc.collect()
    flag.write(0, (7).to_bytes(8, "little"))
    worker.join(30)
    assert out == [7]


def test_callback_recursion_through_a_helper_stops_at_the_depth_limit():
    """A helper that calls the callback whose address it is given, the callback calling
    the helper again (writing its frame's last byte each time): every tier and mode stops
    at the depth limit with an error, never past the stack."""
    proto = ctypes.CFUNCTYPE(ctypes.c_uint64, *([ctypes.c_uint64] * 5))

    def again(rt, cb, depth, *rest):
        return proto(cb)(cb, depth + 1, 0, 0, 0)
    insns = [*isa.lddw_pair(1, 0, isa.PSEUDO_FUNC), k_op(isa.MOV, 2, 0),
             Insn(isa.OP_CALL, 0, 0, 0, 1000), EXIT,
             Insn(isa.ST | isa.MEM | isa.B, 10, 0, -512, 1), Insn(isa.OP_CALL, 0, 0, 0, 1000),
             k_op(isa.ADD, 0, 1), EXIT]
    insns[0].imm = 5 - 1
    results = run_engines(insns, engines=("interp", "direct", "direct-checked", "llvm",
                                          "llvm-checked"), helpers=_helper(again))
    for engine, got in results.items():
        assert got[0] == "BpfRuntimeError" and "call depth limit of 16" in got[2], (engine, got)
