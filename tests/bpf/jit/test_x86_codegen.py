"""The direct tier's code-quality rules of issue #19 (bpf/jit_x86.py) against the
interpreter (and LLVM's code where the JIT contracts differ from the interpreter's):

* pinned constants: a map or map-value address that an ``lddw`` inside a loop loads is
  kept in a free register for the whole function (``_Translator.choose_pins``), and
  ``[rI <<= s;] rB = pinned + a; rB += rI`` followed by a load or an element update is one
  access through ``[pin + rI << s + a + off]`` (``pinned_access``): the value must survive
  helper calls, BPF-to-BPF calls (the callee pins its own), division and shifts by a
  register (which borrow rdx and rcx), checked mode and the instruction budget;
* byte compares: ``d = s; d &= 0xff; if d <op> K`` with d dead is ``cmp s8, K``
  (``byte_compare``).

Each program's results (r0 and every map byte) must be equal on every engine; where a
rule must not apply (a register read afterwards, a jump target inside the pattern) the
results prove the code kept the values."""

from __future__ import annotations

import itertools
import random
import re
import struct

import pytest

from uringbpf.bpf import isa, jit, jit_x86, maps
from uringbpf.bpf.helpers import Arg, Helper, Proto, Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.isa import Insn
from uringbpf.bpf.jit_codegen import Bindings, CallTarget
from uringbpf.bpf.maps import Map
from uringbpf.bpf.memory import AddressSpace, BpfRuntimeError, Buffer
from uringbpf.errors import JitError

U64 = isa.U64
EXIT = Insn(isa.OP_EXIT)
SIZES = {1: isa.B, 2: isa.H, 4: isa.W, 8: isa.DW}
ENGINES = ("interp", "direct", "direct-checked")


def k_op(op: int, dst: int, imm: int, w: bool = True) -> Insn:
    return Insn((isa.ALU64 if w else isa.ALU) | op | isa.K, dst, 0, 0, imm)


def x_op(op: int, dst: int, src: int, w: bool = True) -> Insn:
    return Insn((isa.ALU64 if w else isa.ALU) | op | isa.X, dst, src)


def map_value(dst: int, index: int, offset: int) -> list[Insn]:
    """``dst = &value of map index + offset`` (lddw MAP_IDX_VALUE)."""
    return [Insn(isa.OP_LDDW, dst, isa.PSEUDO_MAP_IDX_VALUE, 0, index),
            Insn(0, 0, 0, 0, offset)]


def map_ptr(dst: int, index: int) -> list[Insn]:
    """``dst = &map index`` (lddw MAP_IDX)."""
    return [Insn(isa.OP_LDDW, dst, isa.PSEUDO_MAP_IDX, 0, index), Insn(0, 0, 0, 0, 0)]


def jump(op: int, dst: int, imm: int, off: int, w: bool = True) -> Insn:
    return Insn((isa.JMP if w else isa.JMP32) | op | isa.K, dst, 0, off, imm)


def local_call(pc: int, target: int) -> Insn:
    return Insn(isa.OP_CALL, 0, isa.PSEUDO_CALL, 0, target - pc - 1)


def _maps(seed: int) -> list[Map]:
    """Two single-value arrays (4 KiB and 1 KiB) with the same pseudo-random bytes on
    every engine."""
    rng = random.Random(seed)
    out = []
    for name, size in (("a", 4096), ("b", 1024)):
        m = Map(name, maps.MAP_TYPE_ARRAY, 4, size, 1)
        m.update(struct.pack("<I", 0), bytes(rng.randrange(256) for _ in range(size)))
        out.append(m)
    return out


def _runtime(map_list: list[Map]) -> Runtime:
    rt = Runtime(mem=AddressSpace(), maps=list(map_list))
    for m in map_list:
        for r in m.regions():
            rt.mem.add(r.base, r.size, r.writable, r.name)
    return rt


def run(insns: list[Insn], engines=ENGINES, helpers=None, limit: int | None = None,
        seed: int = 1, packet: bytes | None = None) -> dict:
    """Each engine's (outcome, map bytes) for ``insns`` over fresh, equal maps; with
    ``packet``, r1 and r2 are its address and length (else 0)."""
    out = {}
    for engine in engines:
        map_list = _maps(seed)
        program = isa.Program("codegen", list(insns), maps=map_list)
        rt = _runtime(map_list)
        args = (0, 0)
        if packet is not None:
            data = Buffer(len(packet), packet)
            rt.mem.add(data.addr, data.size, False, "packet")
            args = (data.addr, len(packet))
        try:
            if engine == "interp":
                kw = {"helpers": helpers} if helpers else {}
                if limit is not None:
                    kw["max_insns"] = limit
                result = ("ok", Interpreter(program, rt, **kw).run(*args))
            else:
                tier = "llvm" if engine.startswith("llvm") else "direct"
                fn = jit.compile(program, rt, checked=engine.endswith("checked"), tier=tier,
                                 helpers=helpers, cache=False)
                assert fn.tier == tier
                if limit is not None:
                    fn.insn_limit = limit
                try:
                    result = ("ok", fn(*args))
                finally:
                    fn.close()
        except (BpfRuntimeError, JitError) as exc:
            result = (type(exc).__name__, exc.pc, re.sub("0x[0-9a-f]{9,}", "ADDR", str(exc)))
        out[engine] = (result, [m.lookup(struct.pack("<I", 0)) for m in map_list])
        for m in map_list:
            m.close()
    return out


def assert_same(insns: list[Insn], **kw) -> tuple:
    got = run(insns, **kw)
    first = next(iter(got.values()))
    for engine, value in got.items():
        assert value == first, (engine, value[0], first[0])
    return first


def patches(insns: list[Insn], n_maps: int = 2) -> int:
    """How many instance constants the direct code of ``insns`` loads (one ``movabs``
    each): a pinned constant is loaded once per function, not once per ``lddw``."""
    program = isa.Program("codegen", list(insns))
    bindings = Bindings(helper=lambda i: CallTarget("native", address=1),
                        kfunc=lambda i: CallTarget("native", address=1))
    return len(jit_x86.translate(program, bindings, {}).patches)


def loop(body: list[Insn], n: int = 64, counter: int = 1) -> list[Insn]:
    """``for (counter = 0; counter != n; counter++) body`` (the back edge as compilers
    write it: ``if counter == n goto +1; goto head``), then r0 = a word of each map."""
    head = [k_op(isa.MOV, counter, 0)]
    tail = [k_op(isa.ADD, counter, 1), jump(isa.JEQ, counter, n, 1),
            Insn(isa.JMP | isa.JA, 0, 0, -(len(body) + 3))]
    end = map_value(1, 0, 0) + [Insn(isa.LDX | isa.MEM | isa.DW, 0, 1, 8)] + \
        map_value(1, 1, 0) + [Insn(isa.LDX | isa.MEM | isa.DW, 1, 1, 16),
                              x_op(isa.XOR, 0, 1), EXIT]
    return head + body + tail + end


# ------------------------------------------------------------------ pinned constants

def histogram(size: int, op: int, operand, index_live: bool = False,
              base_live: bool = False, signed: bool = False, data_off: int = 1024,
              hist_off: int = 0, load_off: int = 0) -> list[Insn]:
    """``hist[data[i]] op= operand`` over map a (data at ``data_off``, the counters of
    ``size`` bytes at ``hist_off``), as clang writes it: r2 = byte, r2 <<= log2(size),
    r3 = &hist, r3 += r2, load/op/store through r3."""
    scale = size.bit_length() - 1
    body = map_value(2, 0, data_off) + [
        x_op(isa.ADD, 2, 1),
        Insn(isa.LDX | (isa.MEMSX if signed else isa.MEM) | isa.B, 2, 2, load_off)]
    if signed:
        body.append(k_op(isa.AND, 2, 0x7F))      # keep the index inside the map
    if scale:
        body.append(k_op(isa.LSH, 2, scale))
    body += map_value(3, 0, hist_off) + [x_op(isa.ADD, 3, 2)]
    if index_live:
        body.append(Insn(isa.STX | isa.MEM | isa.DW, 10, 2, -8))   # the index, read later
    body.append(Insn(isa.LDX | isa.MEM | SIZES[size], 4, 3, 0))
    if operand == "reg":
        body += [k_op(isa.MOV, 5, 0x3F), x_op(op, 4, 5, size == 8)]
    else:
        body.append(k_op(op, 4, operand, size == 8))
    body.append(Insn(isa.STX | isa.MEM | SIZES[size], 3, 4, 0))
    if base_live:
        body += [Insn(isa.LDX | isa.MEM | isa.B, 5, 3, 1), x_op(isa.ADD, 0, 5)]
    if index_live:
        body += [Insn(isa.LDX | isa.MEM | isa.DW, 5, 10, -8), x_op(isa.ADD, 0, 5)]
    return [k_op(isa.MOV, 0, 0)] + loop(body, n=200)[:-1] + [
        Insn(isa.LDX | isa.MEM | isa.DW, 1, 10, -8) if index_live else k_op(isa.MOV, 1, 0),
        x_op(isa.ADD, 0, 1), EXIT]


@pytest.mark.parametrize("size", [1, 2, 4, 8])
@pytest.mark.parametrize("op,operand", [(isa.ADD, 1), (isa.SUB, -0x81), (isa.XOR, 0x7FFF),
                                        (isa.OR, "reg"), (isa.AND, -2)])
def test_pinned_histogram_update_is_one_scaled_access(size, op, operand):
    """The histogram loop of issue #19 for every counter size (scale 0-3) and update
    operation: the same counters on every engine, and the map-value constant is loaded
    once for the function instead of once per lddw in the loop."""
    if operand == "reg" and size < 4:
        operand = 3
    insns = histogram(size, op, operand)
    assert_same(insns)
    # two lddw of map a in the loop share one pinned register, loaded once (the lddw of
    # map a after the loop uses it too); map b, only after the loop, is loaded there
    assert patches(insns) == 2


@pytest.mark.parametrize("case", ["index live", "base live", "signed load", "negative",
                                  "load offset"])
def test_pinned_access_keeps_what_is_read_later(case):
    """Where a fused access must not change a register that is read later (the shifted
    index, the base) it is not fused (or the value is kept); sign-extending byte loads,
    a negative map-value offset and a load offset fold into the displacement."""
    kw = {"index live": {"index_live": True}, "base live": {"base_live": True},
          "signed load": {"signed": True}, "negative": {"data_off": 3072, "hist_off": 0,
                                                        "load_off": -2048},
          "load offset": {"data_off": 1000, "load_off": 24}}[case]
    assert_same(histogram(4, isa.ADD, 1, **kw))


def test_pinned_array_loads_sum():
    """``sum += a[i]`` (``rB = pinned + a; rB += rI; rB = *(rB + off)``: one indexed load)
    over both maps, both pinned, with scales and a 64-bit sign-extending load."""
    body = [x_op(isa.MOV, 2, 1), k_op(isa.LSH, 2, 3)] + map_value(3, 0, 8) + [
        x_op(isa.ADD, 3, 2), Insn(isa.LDX | isa.MEM | isa.DW, 3, 3, -8), x_op(isa.ADD, 6, 3),
        x_op(isa.MOV, 2, 1)] + map_value(4, 1, 0) + [
        x_op(isa.ADD, 4, 2), Insn(isa.LDX | isa.MEMSX | isa.W, 4, 4, 4), x_op(isa.XOR, 6, 4)]
    insns = [k_op(isa.MOV, 6, 0)] + loop(body, n=120)[:-1] + [x_op(isa.ADD, 0, 6), EXIT]
    assert_same(insns)
    assert patches(insns) == 2          # each map's value once, for 4 lddw


def _gather(body_call: list[Insn], n: int = 40) -> list[Insn]:
    """A loop (counter r6) that calls something, then reads both maps through pinned
    constants (the lddw of map a before the call, of map b after it), into r7."""
    body = map_value(2, 0, 64) + [x_op(isa.ADD, 2, 6), Insn(isa.LDX | isa.MEM | isa.B, 2, 2, 0),
                                  x_op(isa.ADD, 7, 2)]
    body += body_call + [x_op(isa.ADD, 7, 0)]
    body += map_value(3, 1, 0) + [x_op(isa.ADD, 3, 6), Insn(isa.LDX | isa.MEM | isa.B, 3, 3, 0),
                                  x_op(isa.XOR, 7, 3)]
    return [k_op(isa.MOV, 7, 0)] + loop(body, n=n, counter=6)[:-1] + [x_op(isa.ADD, 0, 7), EXIT]


def test_pinned_constants_survive_native_helper_calls():
    """A loop calling bpf_map_lookup_elem (native C) with the map pointer (itself a
    pinned constant) and a key on the stack: the pins live in callee-saved registers
    (r1-r5 are the calls' arguments: never pinned in a function with calls) and keep
    their values over every call."""
    call = [Insn(isa.ST | isa.MEM | isa.W, 10, 0, -4, 0)] + map_ptr(1, 1) + [
        x_op(isa.MOV, 2, 10), k_op(isa.ADD, 2, -4), Insn(isa.OP_CALL, 0, 0, 0, 1),
        Insn(isa.LDX | isa.MEM | isa.B, 0, 0, 5)]
    insns = _gather(call)
    assert_same(insns)
    # three constants in the loop, two free callee-saved registers (BPF r8 and r9 are
    # not named): two pinned, the third loaded at its lddw (one patch per lddw: 2)
    assert patches(insns) == 4


def test_pinned_constants_survive_python_helper_calls_and_errors():
    """The same with a helper implemented in Python (a ctypes callback: every
    caller-saved register is clobbered for real), then a helper that raises on its
    30th call: the same error and pc on every engine. The helper also returns the r4
    and r5 it is given, which the program never names (their entry values, 0): a pin
    in rcx or r8 would show there."""
    count = [0]

    def helper(rt, r1, r2, r3, r4, r5):
        count[0] += 1
        if count[0] == 30 and r1 == 7:
            raise ValueError("thirtieth")
        return (r1 * 31 + count[0] + r4 + r5) & U64

    helpers = {1000: Helper(Proto("h", (Arg.ANYTHING,) * 5), helper, 1000, None)}
    for r1 in (5, 7):
        call = [k_op(isa.MOV, 1, r1), Insn(isa.OP_CALL, 0, 0, 0, 1000)]
        results = {}
        for engine in ENGINES + ("llvm",):
            count[0] = 0
            results.update(run(_gather(call), engines=(engine,), helpers=helpers))
        first = results["interp"]
        assert all(v == first for v in results.values()), results
        assert (first[0][0] == "ok") == (r1 == 5), first[0]


def test_pinned_constants_in_a_caller_and_its_callee():
    """Both functions of a BPF-to-BPF call pin the same map value in the same register
    (the callee's prologue saves it, its epilogue restores the caller's), and the call
    sits inside the caller's loop."""
    # callee (r1 = i): a loop of its own summing map b[i .. i+7] through a pinned lddw
    callee = [k_op(isa.MOV, 0, 0), k_op(isa.MOV, 2, 0)]
    body = map_value(3, 1, 0) + [x_op(isa.ADD, 3, 1), x_op(isa.ADD, 3, 2),
                                 Insn(isa.LDX | isa.MEM | isa.B, 3, 3, 0), x_op(isa.ADD, 0, 3)]
    callee += body + [k_op(isa.ADD, 2, 1), jump(isa.JNE, 2, 8, -(len(body) + 2)), EXIT]
    call = [x_op(isa.MOV, 1, 6), None]
    caller = _gather(call)
    at = caller.index(None)
    caller[at] = local_call(at, len(caller))
    insns = caller + callee
    assert_same(insns, engines=ENGINES + ("llvm",))


def test_pinned_constants_with_callx_and_packet_loads():
    """A loop with LD_IND (r6 the packet: never pinned), a pinned map value, and a
    ``callx`` of a subprogram's address (a call: r1-r5 are not pinned; the pin in r9's
    callee-saved register survives it) on every engine."""
    body = [Insn(isa.LD | isa.IND | isa.B, 0, 8, 0, 0), x_op(isa.ADD, 7, 0)]
    body += map_value(3, 0, 64) + [x_op(isa.ADD, 3, 8), Insn(isa.LDX | isa.MEM | isa.B, 3, 3, 0),
                                   x_op(isa.XOR, 7, 3), x_op(isa.MOV, 1, 8)]
    func_at = len(body)
    body += [None, None, Insn(isa.OP_CALL | isa.X, 2), x_op(isa.ADD, 7, 0)]
    insns = [x_op(isa.MOV, 6, 1), k_op(isa.MOV, 7, 0)] + loop(body, n=40, counter=8)[:-1] + [
        x_op(isa.MOV, 0, 7), EXIT]
    at = 2 + 1 + func_at                        # the lddw of the function's address
    sub = len(insns)
    insns[at:at + 2] = isa.lddw_pair(2, sub - at - 1, isa.PSEUDO_FUNC)
    insns += [x_op(isa.MOV, 0, 1), k_op(isa.MUL, 0, 3), k_op(isa.ADD, 0, 1), EXIT]
    packet = bytes((i * 7 + 3) & 0xFF for i in range(64))
    got = run(insns, engines=ENGINES + ("llvm",), packet=packet)
    first = got["interp"]
    assert first[0][0] == "ok"
    assert all(v == first for v in got.values()), got


def test_pinned_argument_registers_survive_division_and_shifts():
    """A function without calls that names only r0-r2 pins its constants in rdx and rcx
    (BPF r3 and r4, unnamed), which the code borrows for division (rdx) and shifts by a
    register (rcx): both are given back."""
    body = map_value(2, 0, 0) + [x_op(isa.ADD, 2, 1), Insn(isa.LDX | isa.MEM | isa.B, 2, 2, 0),
                                 k_op(isa.ADD, 2, 1), x_op(isa.DIV, 0, 2),
                                 x_op(isa.MOD, 0, 2, False), x_op(isa.LSH, 0, 2),
                                 x_op(isa.ARSH, 0, 2, False), k_op(isa.ADD, 0, 0x12345)]
    body += map_value(2, 1, 0) + [x_op(isa.ADD, 2, 1), Insn(isa.LDX | isa.MEM | isa.B, 2, 2, 3),
                                  x_op(isa.XOR, 0, 2)] + map_value(2, 0, 2000) + [
        x_op(isa.ADD, 2, 1), Insn(isa.STX | isa.MEM | isa.B, 2, 0, 0)]
    insns = [k_op(isa.MOV, 0, 77)] + loop(body, n=100)[:-1] + [EXIT]
    assert_same(insns, engines=ENGINES + ("llvm",))
    assert patches(insns) == 2


def test_pinned_constants_with_the_checked_budget():
    """Checked mode with the budget running out inside the loop (its last iterations),
    and with just enough: the direct code and LLVM's stop at the same back jump with the
    same error, and the map bytes written before are the same."""
    insns = histogram(4, isa.ADD, 1)
    full = run(insns, engines=("direct-checked",))["direct-checked"]
    assert full[0][0] == "ok"
    for limit in (50, 2000, 2701, 2702, 3000, 10 ** 6):
        got = run(insns, engines=("direct-checked", "llvm-checked"), limit=limit)
        assert got["direct-checked"] == got["llvm-checked"], (limit, got)
    assert got["direct-checked"] == full


@pytest.mark.parametrize("seed", range(4))
def test_pinned_access_fuzz(seed):
    """Random loops over the two maps built from the fused forms and their near misses
    (scales 0-3 and 4, sizes, sign-extending loads, update operations, the index, base
    or value read afterwards, an instruction of the pattern as a jump target), against
    the interpreter."""
    rng = random.Random(seed)
    for _ in range(12):
        body = []
        for _ in range(rng.randrange(1, 4)):
            body += _random_access(rng)
        insns = [k_op(isa.MOV, 0, 0), k_op(isa.MOV, 7, 0)] + loop(body, n=rng.choice(
            [1, 2, 33]))[:-1] + [x_op(isa.ADD, 0, 7), EXIT]
        assert_same(insns, seed=seed)


def _random_access(rng: random.Random) -> list[Insn]:
    """One access of map ``m`` at a bounded index derived from r1 (the loop counter)."""
    m = rng.randrange(2)
    size = rng.choice([1, 2, 4, 8])
    scale = rng.choice([0, 0, 1, 2, 3, 4])
    idx, base, val = rng.sample([2, 3, 4, 5, 8, 9], 3)
    out = [x_op(isa.MOV, idx, 1), k_op(isa.AND, idx, 15)]
    if scale:
        out.append(k_op(isa.LSH, idx, scale))
    out += map_value(base, m, rng.choice([0, 8, 100]))
    if rng.random() < 0.15:                 # the add is a jump target
        out.append(Insn(isa.JMP | isa.JA, 0, 0, 0))
    out.append(x_op(isa.ADD, base, idx))
    off = rng.choice([0, 3, -8 if m else 0])
    kind = rng.choice(["load", "loadsx", "update", "update-reg"])
    if kind.startswith("load"):
        mode = isa.MEMSX if kind == "loadsx" and size < 8 else isa.MEM
        out.append(Insn(isa.LDX | mode | SIZES[size], base, base, off + 8))
        out.append(x_op(isa.ADD, 7, base))
    else:
        a = val
        out.append(Insn(isa.LDX | isa.MEM | SIZES[size], a, base, off + 8))
        if kind == "update-reg" and size >= 4:
            out += [x_op(isa.MOV, 0, 7), x_op(isa.ADD, a, 0, size == 8)]
        else:
            out.append(k_op(rng.choice([isa.ADD, isa.SUB, isa.XOR, isa.OR]), a,
                            rng.choice([1, -1, 0x80, 0x7FFF]), size == 8 or rng.random() < 0.5))
        out.append(Insn(isa.STX | isa.MEM | SIZES[size], base, a, off + 8))
        if rng.random() < 0.3:
            out.append(x_op(isa.ADD, 7, a))
    tail = rng.random()
    if tail < 0.2:
        out.append(x_op(isa.ADD, 7, idx))    # the (shifted) index is read afterwards
    elif tail < 0.3:
        out.append(x_op(isa.XOR, 7, base))   # the base (an address) is read afterwards
        out.append(k_op(isa.AND, 7, 0xFFF))
    return out


# ------------------------------------------------------------------ byte compares

BYTE_VALUES = [0, 1, 0x7F, 0x80, 0xFE, 0xFF, 0x1FF, 0xAB00, U64 - 0x7F]
BYTE_IMMS = [0, 1, 0x7F, 0x80, 0xFE, 0xFF, 0x100, -1]


@pytest.mark.parametrize("op", [isa.JEQ, isa.JNE, isa.JGT, isa.JGE, isa.JLT, isa.JLE],
                         ids=lambda op: isa.JMP_OP_NAMES[op])
def test_masked_byte_compare(op):
    """``d = s; d &= 0xff; if d <op> K`` (both widths for the move, the mask and the
    jump) with d dead is one byte compare: every unsigned condition, K at the byte's
    edges and outside it (not fused), values with bits above the byte, sources whose low
    byte needs a REX prefix (sil, dil) or is r8-r15's, d == s; and d read afterwards on
    the taken side, on the fall-through side (not dead: the mask must stay), or the jump
    a jump target (not fused)."""
    insns = [k_op(isa.MOV, 7, 0)]
    for (d, s), (w_mov, w_and, w_jmp), imm in itertools.product(
            ((4, 3), (0, 1), (2, 2), (9, 5), (1, 8)),
            ((True, True, True), (False, False, False), (True, False, True),
             (False, True, False)), BYTE_IMMS):
        for value in BYTE_VALUES:
            insns += isa.lddw_pair(s, value) + [
                k_op(isa.MUL, 7, 3), x_op(isa.MOV, d, s, w_mov), k_op(isa.AND, d, 0xFF, w_and),
                jump(op, d, imm, 1, w_jmp), k_op(isa.ADD, 7, 1)]
    for tail in ("taken", "fall", "target"):
        for value in BYTE_VALUES:
            insns += isa.lddw_pair(2, value) + [k_op(isa.MUL, 7, 3)]
            if tail == "target":
                insns += [x_op(isa.MOV, 3, 2), Insn(isa.JMP | isa.JA, 0, 0, 1)]
            else:
                insns += [x_op(isa.MOV, 3, 2), k_op(isa.AND, 3, 0xFF)]
            insns += [jump(op, 3, 0x80, 2)]
            insns += [k_op(isa.ADD, 7, 1)] + ([x_op(isa.ADD, 7, 3)] if tail == "fall" else [
                Insn(isa.JMP | isa.JA, 0, 0, 0)])
            if tail == "taken":
                insns += [Insn(isa.JMP | isa.JA, 0, 0, 1), k_op(isa.ADD, 7, 5),
                          x_op(isa.ADD, 7, 3)]
            else:
                insns += [k_op(isa.ADD, 7, 5)]
    insns += [x_op(isa.MOV, 0, 7), EXIT]
    assert_same(insns, engines=("interp", "direct", "direct-checked"))


# ------------------------------------------------------------------ block layout

def _layout_of(insns: list[Insn], checked: bool = False) -> list[int]:
    """The first pcs of the blocks in the order the direct code writes them."""
    t = jit_x86._Translator(isa.Program("codegen", list(insns)),
                            Bindings(helper=lambda i: CallTarget("native", address=1),
                                     kfunc=lambda i: CallTarget("native", address=1),
                                     checked=checked), {})
    t.run()
    return sorted(t.where, key=t.where.get)


def _rules(n: int) -> list[Insn]:
    """branchy.bpf.c's shape (clang's BPF layout): per rule, load a byte, `if b != K
    goto other` (the equal arm falls through and jumps to the next rule), `if v < L goto
    third`, the second arm jumps to the next rule, the third falls into it; every arm
    first tests that the length allows the next rule (else to the exit)."""
    out = [x_op(isa.MOV, 0, 2), jump(isa.JLT, 2, 4, 0)]        # patched: to the exit
    fixups = [1]
    for k in range(n):
        out += [Insn(isa.LDX | isa.MEM | isa.W, 3, 1, 0 if k == 0 else 4 * k),
                x_op(isa.MOV, 4, 3, False), k_op(isa.AND, 4, 0xFF, False),
                jump(isa.JNE, 4, (k * 37) & 0xFF, 3, False),
                x_op(isa.ADD, 0, 3), jump(isa.JLT, 2, 4 * k + 8, 0),
                Insn(isa.JMP | isa.JA, 0, 0, 7)]
        fixups += [len(out) - 2]
        out += [jump(isa.JLT, 3, 256 * (k + 1), 3), x_op(isa.XOR, 0, 3),
                jump(isa.JLT, 2, 4 * k + 8, 0), Insn(isa.JMP | isa.JA, 0, 0, 3)]
        fixups += [len(out) - 2]
        out += [x_op(isa.SUB, 0, 3), k_op(isa.ADD, 0, k), jump(isa.JLT, 2, 4 * k + 8, 0)]
        fixups += [len(out) - 1]
    exit_pc = len(out)
    out += [x_op(isa.MOV, 1, 0), k_op(isa.RSH, 1, 32), x_op(isa.XOR, 0, 1), EXIT]
    for pc in fixups:
        j = out[pc]
        out[pc] = Insn(j.opcode, j.dst, j.src, exit_pc - pc - 1, j.imm)
    return out


def test_layout_of_rules_takes_one_jump_on_either_arm():
    """On branchy's shape, the layout writes the `!=` target after the test (equality
    predicted false), then the diamond of the second and third arms hedged as LLVM does:
    the third arm (the `<` target), the second, then the next rule, so that either arm
    takes one jump (the first arm, `==`, is out of line); the results equal the
    interpreter's on many inputs, and checked code keeps the program order."""
    insns = _rules(6)
    order = _layout_of(insns)
    rule = 2                                   # rule 0 starts at pc 2 (11 insns + 3 each)
    for k in range(6):
        first = rule + 14 * k
        other, second, third = first + 7, first + 8, first + 11
        at = order.index(first)
        assert order[at + 1:at + 5] == [other, third, second, first + 14], (k, order)
        assert order.index(first + 4) > order.index(first + 14)      # the == arm
    assert _layout_of(insns, checked=True) == sorted(_layout_of(insns, checked=True))
    rng = random.Random(5)
    for _ in range(40):
        data = bytes(rng.randrange(256) for _ in range(28))
        if rng.random() < 0.5:
            data = bytes(b if i % 4 else (k * 37) & 0xFF for k, b in enumerate(data)
                         for i in [k])
        _same_on_data(insns, data)


def _same_on_data(insns: list[Insn], data: bytes) -> None:
    from uringbpf.bpf.memory import Buffer
    program = isa.Program("codegen", list(insns))
    got = []
    for engine in ENGINES:
        buf = Buffer(len(data) + 8, data)
        rt = Runtime()
        rt.mem.add(buf.addr, buf.size, True, "data")
        for length in (len(data), 9, 3):
            if engine == "interp":
                got.append((engine, Interpreter(program, rt).run(buf.addr, length)))
            else:
                fn = jit.compile(program, rt, checked=engine.endswith("checked"),
                                 tier="direct", cache=False)
                got.append((engine, fn(buf.addr, length)))
                fn.close()
    by_engine = {}
    for engine, r0 in got:
        by_engine.setdefault(engine, []).append(r0)
    assert len({tuple(v) for v in by_engine.values()}) == 1, by_engine


def _random_cfg(rng: random.Random, n: int) -> list[Insn]:
    """A random control-flow graph: ALU steps on r0-r5, forward conditional jumps of
    every kind (JMP and JMP32, register and immediate), forward gotos (often to other
    gotos: chains to thread), exits, lddw before jump targets (blocks ending in their
    second slot), and bounded loops (a back edge taken while its own counter, r6-r9,
    stays under a limit: counters only grow, so every run ends)."""
    slots: list[list] = []
    for i in range(n):
        kind = rng.choices(["alu", "cond", "goto", "exit", "lddw", "loop"],
                           [5, 5, 3, 1, 1, 1])[0]
        slots.append([kind, rng.random(), rng.random()])
    # lay the slots out into instructions, then resolve the jumps by slot index
    out, starts, pending = [], [], []
    for i, (kind, u, v) in enumerate(slots):
        starts.append(len(out))
        d, s = rng.randrange(6), rng.randrange(6)
        if kind == "alu":
            op = rng.choice([isa.ADD, isa.SUB, isa.XOR, isa.OR, isa.AND, isa.MUL, isa.LSH,
                             isa.RSH, isa.MOV])
            if rng.random() < 0.5:
                out.append(x_op(op, d, s, rng.random() < 0.7))
            else:
                imm = rng.choice([0, 1, 3, 0xFF, -1, 0x7FFF]) if op not in (
                    isa.LSH, isa.RSH) else rng.randrange(32)
                out.append(k_op(op, d, imm, rng.random() < 0.7))
        elif kind == "cond":
            op = rng.choice(list(jit_x86._JCC))
            w = rng.random() < 0.6
            target = rng.randrange(i + 1, n + 1)
            if rng.random() < 0.4:
                out.append(Insn((isa.JMP if w else isa.JMP32) | op | isa.X, d, s, 0))
            else:
                out.append(Insn((isa.JMP if w else isa.JMP32) | op | isa.K, d, 0, 0,
                                rng.choice([0, 1, 0x80, 0xFF, -1, 7])))
            pending.append((len(out) - 1, target))
        elif kind == "goto":
            target = rng.randrange(i + 1, n + 1)
            out.append(Insn(isa.JMP | isa.JA, 0, 0, 0))
            pending.append((len(out) - 1, target))
        elif kind == "exit":
            out += [x_op(isa.XOR, 0, 1), x_op(isa.ADD, 0, 3), EXIT]
        elif kind == "lddw":
            out += isa.lddw_pair(d, rng.getrandbits(64))
        else:
            counter = 6 + rng.randrange(4)
            back = rng.randrange(max(0, i - 6), i + 1)
            out += [k_op(isa.ADD, counter, 1),
                    Insn(isa.JMP | isa.JLT | isa.K, counter, 0, 0, rng.choice([3, 8, 20]))]
            pending.append((len(out) - 1, ("back", back)))
    starts.append(len(out))
    out += [x_op(isa.XOR, 0, 2), x_op(isa.ADD, 0, 4), x_op(isa.XOR, 0, 5), EXIT]
    for pc, target in pending:
        to = starts[target[1]] if isinstance(target, tuple) else starts[target]
        j = out[pc]
        out[pc] = Insn(j.opcode, j.dst, j.src, to - pc - 1, j.imm)
    head = [k_op(isa.MOV, r, 0) for r in (6, 7, 8, 9)] + [
        k_op(isa.MOV, 3, 11), k_op(isa.MOV, 4, -5), k_op(isa.MOV, 5, 0x80)]
    return head + out


@pytest.mark.parametrize("seed", range(6))
def test_layout_random_control_flow(seed):
    """Random control-flow graphs (see _random_cfg) on the interpreter and the direct
    code, unchecked (laid out, gotos threaded) and checked (program order), with
    several arguments: the same r0."""
    rng = random.Random(1000 + seed)
    for _ in range(25):
        insns = _random_cfg(rng, rng.randrange(3, 40))
        program = isa.Program("cfg", insns)
        for args in ((0, 0), (1, 2), (0xFF, 0x80), (U64, 7)):
            want = Interpreter(program, Runtime()).run(*args)
            for checked in (False, True):
                fn = jit.compile(program, Runtime(), checked=checked, tier="direct",
                                 cache=False)
                assert fn(*args) == want, (checked, args, insns)
                fn.close()


def test_goto_chains_and_cycles():
    """Gotos to gotos are threaded (unchecked), a cycle of gotos compiles (and runs out
    of budget in checked mode with LLVM's error and pc), a function that starts with a
    goto, a goto as the last instruction of a block that ends in an lddw's second slot,
    and a conditional jump ending the function (falls off: the same error as LLVM)."""
    chain = [Insn(isa.JMP | isa.JA, 0, 0, 1), k_op(isa.MOV, 0, 9), Insn(isa.JMP | isa.JA, 0, 0, 1),
             EXIT, Insn(isa.JMP | isa.JA, 0, 0, 1), EXIT, k_op(isa.ADD, 0, 5),
             jump(isa.JEQ, 1, 0, -6), Insn(isa.JMP | isa.JA, 0, 0, -4)]
    # r1 == 0: 0 -> 2 -> 4 -> 6 (r0 += 5) -> 7 taken -> 2 -> ... loops: use r1 != 0
    assert _same(chain, (1, 0)) == ("ok", 5)
    cycle = [k_op(isa.MOV, 0, 1), jump(isa.JNE, 1, 0, 1), EXIT,
             Insn(isa.JMP | isa.JA, 0, 0, 1), Insn(isa.JMP | isa.JA, 0, 0, -2),
             Insn(isa.JMP | isa.JA, 0, 0, -2)]           # 3 -> 5 -> 4 -> 3 when r1 != 0
    assert _same(cycle, (0, 0)) == ("ok", 1)
    got = run(cycle, engines=("direct-checked", "llvm-checked"), limit=1000)
    assert got["direct-checked"][0] == ("ok", 1)
    program = isa.Program("cycle", cycle)
    for tier in ("direct", "llvm"):
        fn = jit.compile(program, Runtime(), checked=True, tier=tier, cache=False)
        fn.insn_limit = 1000
        with pytest.raises(BpfRuntimeError) as info:
            fn(1, 0)
        assert "instruction limit" in str(info.value)
        fn.close()
    jit.compile(program, Runtime(), tier="direct", cache=False).close()
    lddw_end = [jump(isa.JEQ, 1, 0, 2)] + isa.lddw_pair(0, 0x1234_5678_9ABC) + [
        k_op(isa.ADD, 0, 1), EXIT]
    assert _same(lddw_end, (0, 0)) == ("ok", 1)
    assert _same(lddw_end, (1, 0)) == ("ok", 0x1234_5678_9ABD)
    fall_off = [k_op(isa.MOV, 0, 3), jump(isa.JNE, 1, 0, -2)]     # r1 = 0: falls off
    got = run(fall_off, engines=("direct", "direct-checked", "llvm"))
    assert len({repr(v[0]) for v in got.values()}) == 1, got


def _same(insns: list[Insn], args: tuple) -> tuple:
    program = isa.Program("codegen", list(insns))
    want = ("ok", Interpreter(program, Runtime()).run(*args))
    for checked in (False, True):
        fn = jit.compile(program, Runtime(), checked=checked, tier="direct", cache=False)
        assert ("ok", fn(*args)) == want, checked
        fn.close()
    return want


# ------------------------------------------------------------------ reassociation

@pytest.mark.parametrize("op", [isa.ADD, isa.OR, isa.AND, isa.XOR, isa.SUB],
                         ids=lambda op: isa.ALU_OP_NAMES[op])
def test_reassociated_pairs(op):
    """``a op= b; c op= a`` with a dead: computed as ``c op= x; c op= y`` when c's value
    is ready before a's or b's (each of a, b, c made the latest by a chain of operations
    before the pair), both widths (values with carries across bit 31), a read afterwards
    (not dead: kept), the second instruction a jump target, and sub (not associative:
    never)."""
    insns = [k_op(isa.MOV, 7, 0)]
    values = [0x8000_0000_FFFF_FFFF, 0x1234_5678_9ABC_DEF0, U64, 0x7FFF_FFFF]
    for (a, b, c), latest, w, tail, (va, vb, vc) in itertools.product(
            ((1, 2, 3), (0, 5, 4), (4, 3, 0), (8, 9, 2)), ("a", "b", "c", "none"),
            (True, False), ("dead", "live", "target"),
            list(itertools.permutations(values, 3))[::7]):
        insns += isa.lddw_pair(a, va) + isa.lddw_pair(b, vb) + isa.lddw_pair(c, vc)
        reg = {"a": a, "b": b, "c": c}.get(latest)
        if reg is not None:                  # a chain makes this one's value the latest
            insns += [k_op(isa.MUL, reg, 3), k_op(isa.ADD, reg, 1), k_op(isa.XOR, reg, 5)]
        insns.append(x_op(op, a, b, w))
        if tail == "target":
            insns.append(Insn(isa.JMP | isa.JA, 0, 0, 0))
        insns.append(x_op(op, c, a, w))
        if tail == "live":
            insns += [k_op(isa.MUL, 7, 7), x_op(isa.ADD, 7, a)]
        insns += [k_op(isa.MUL, 7, 31), x_op(isa.ADD, 7, c), k_op(isa.MOV, a, 0)]
    insns += [x_op(isa.MOV, 0, 7), EXIT]
    assert_same(insns)


def test_layout_keeps_a_loop_body_after_a_not_equal_exit_test():
    """A `!=` test that leaves a loop is predicted not taken (a loop's exit), unlike
    other `!=` tests: the loop body stays the fall-through; the results are the
    interpreter's."""
    insns = [k_op(isa.MOV, 0, 0), k_op(isa.MOV, 3, 0),
             x_op(isa.MOV, 6, 3), k_op(isa.AND, 6, 0x100),      # 2: head
             jump(isa.JNE, 6, 0, 4),                             # 4: leaves the loop
             k_op(isa.ADD, 3, 1), x_op(isa.ADD, 0, 3),           # 5: body
             jump(isa.JLT, 3, 100, -6),                          # 7: back to 2
             k_op(isa.ADD, 0, 0),                                # 8
             EXIT]                                               # 9
    order = _layout_of(insns)
    assert order.index(5) == order.index(2) + 1, order
    assert _same(insns, (0, 0)) == ("ok", sum(range(1, 101)))
    # the same test outside a loop: its target comes first
    flat = [k_op(isa.MOV, 0, 1), jump(isa.JNE, 1, 0, 2), k_op(isa.ADD, 0, 2), EXIT,
            k_op(isa.ADD, 0, 3), EXIT]
    order = _layout_of(flat)
    assert order[:2] == [0, 4], order
    assert _same(flat, (1, 0)) == ("ok", 4) and _same(flat, (0, 0)) == ("ok", 3)


@pytest.mark.parametrize("then", ["counter", "index", "operand", "target", "alu32", "sub"])
def test_counter_step_after_an_update_goes_first_only_when_independent(then):
    """``hist[x]++; i++``: the add of a constant after a fused update is written before
    it when the update does not use that register; never when it is the update's index
    or operand register, or a jump target."""
    body = [x_op(isa.MOV, 2, 1), k_op(isa.AND, 2, 63), k_op(isa.LSH, 2, 2)] + map_value(3, 0, 0) + [
        x_op(isa.ADD, 3, 2), Insn(isa.LDX | isa.MEM | isa.W, 4, 3, 0)]
    body.append(x_op(isa.ADD, 4, 5, False) if then == "operand" else k_op(isa.ADD, 4, 3))
    body.append(Insn(isa.STX | isa.MEM | isa.W, 3, 4, 0))
    step = {"counter": [k_op(isa.ADD, 7, 5)], "index": [k_op(isa.ADD, 2, 4)],
            "operand": [k_op(isa.ADD, 5, 1)], "alu32": [k_op(isa.ADD, 7, -1, False)],
            "sub": [k_op(isa.SUB, 7, 3)],
            "target": [Insn(isa.JMP | isa.JA, 0, 0, 0), k_op(isa.ADD, 7, 5)]}[then]
    body += step + [x_op(isa.ADD, 0, 7), x_op(isa.XOR, 0, 2), x_op(isa.ADD, 0, 5)]
    insns = [k_op(isa.MOV, 0, 0)] + isa.lddw_pair(7, 1 << 40) + [k_op(isa.MOV, 5, 7)] + \
        loop(body, n=150)[:-1] + [EXIT]
    assert_same(insns, engines=ENGINES + ("llvm",))
