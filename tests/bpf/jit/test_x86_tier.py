"""The JIT's tiers (#19): which tier a program gets (jit.tier_for, recorded in
JitFunction.tier), the switch from direct code to LLVM's in the background, the runtime
contract of the direct code (errors, checked accesses, budget, calls, LD_ABS), and the
direct tier against the interpreter on fuzzer-generated programs the verifier accepts."""

from __future__ import annotations

import ctypes
import gc
import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from uringbpf import native
from uringbpf.bpf import conformance, isa, jit, verifier
from uringbpf.bpf.asm import assemble
from uringbpf.bpf.helpers import Arg, Helper, Proto, Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.isa import Insn
from uringbpf.bpf.memory import BpfMemoryError, BpfRuntimeError, Buffer, guard_check
from uringbpf.errors import JitError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "verifier"))
import fuzzgen  # noqa: E402


def prog(text: str) -> isa.Program:
    return isa.Program("t", assemble(text))


def test_tier_decision_is_recorded():
    plain = prog("mov %r0, 7\nexit")
    assert jit.tier_for(plain, "auto") == ("direct", "")
    assert jit.tier_for(plain, "tiered") == ("tiered", "")
    assert jit.tier_for(plain, "direct") == ("direct", "")
    assert jit.tier_for(plain, "llvm") == ("llvm", "asked for")
    cast = isa.Program("t", [Insn(isa.ALU64 | isa.MOV | isa.X, 1, 1, isa.ADDR_SPACE_CAST, 1),
                             Insn(isa.ALU64 | isa.MOV | isa.K, 0), Insn(isa.OP_EXIT)])
    for tier in ("auto", "tiered"):
        plan, reason = jit.tier_for(cast, tier)
        assert plan == "llvm" and "arena" in reason
    with pytest.raises(JitError, match="direct tier does not translate"):
        jit.tier_for(cast, "direct")
    fn = jit.compile(plain, Runtime(), tier="direct", cache=False)
    assert fn.tier == "direct" and fn.tier_reason == "" and fn() == 7
    fn = jit.compile(plain, Runtime(), tier="llvm", cache=False)
    assert fn.tier == "llvm" and fn.tier_reason == "asked for" and fn() == 7


def test_invalid_programs_get_the_validation_message_on_every_tier():
    for tier in ("auto", "direct", "llvm", "tiered"):
        with pytest.raises(JitError, match="unknown ALU opcode"):
            jit.compile(isa.Program("bad", [Insn(0xFF), Insn(isa.OP_EXIT)]), tier=tier)
        with pytest.raises(JitError, match="leaves its function"):
            jit.compile(isa.Program("bad", [Insn(isa.OP_CALL, 0, isa.PSEUDO_CALL, 0, 1),
                                            Insn(isa.OP_EXIT), Insn(isa.OP_JA, 0, 0, -3),
                                            Insn(isa.OP_EXIT)]), tier=tier)


def test_unknown_jump_opcode_goes_to_llvm():
    """An opcode the direct tier does not know (may_goto is JMP | 0xe0) is LLVM's."""
    insns = [Insn(isa.JMP | 0xE0, 0, 0, 0, 0), Insn(isa.ALU64 | isa.MOV | isa.K, 0),
             Insn(isa.OP_EXIT)]
    plan, reason = jit.tier_for(isa.Program("t", insns), "auto")
    assert plan == "llvm" and "0xe5" in reason


def test_tiering_switches_every_instance_to_llvm(monkeypatch):
    monkeypatch.setenv("URINGBPF_JIT_CACHE", "0")
    text = "mov %r0, %r1\nmul %r0, 3\nadd %r0, {}\nexit".format(random.randrange(1 << 20))
    with jit._llvm_lock:          # the background compile waits until both run direct code
        a = jit.compile(prog(text), Runtime(), tier="tiered")
        b = jit.compile(prog(text), Runtime(), tier="tiered")
        assert a.tier == b.tier == "direct"
        before = (a(5), b(6))
    jit.tiering_wait()
    assert a.tier == b.tier == "llvm"
    assert (a(5), b(6)) == before
    c = jit.compile(prog(text), Runtime(), tier="tiered")        # LLVM's code is cached now
    assert c.tier == "llvm" and c(5) == before[0]


def test_direct_compile_does_not_wait_for_llvm():
    """While LLVM is busy (another thread holds its lock, as a background compile does),
    an auto compile still returns at once with the direct code, disk cache on or off."""
    busy, release = threading.Event(), threading.Event()

    def hold():
        with jit._llvm_lock:
            busy.set()
            release.wait(30)
    holder = threading.Thread(target=hold)
    holder.start()
    assert busy.wait(10)
    out = []
    text = "mov %r0, {}\nexit".format(random.randrange(1 << 30))
    worker = threading.Thread(target=lambda: out.append(
        jit.compile(prog(text), Runtime(), tier="tiered")))
    worker.start()
    worker.join(20)
    done = not worker.is_alive()
    release.set()
    holder.join()
    worker.join()
    assert done and out[0].tier == "direct" and out[0]() >= 0


def test_no_background_compile_for_instances_already_gone(monkeypatch):
    monkeypatch.setenv("URINGBPF_JIT_CACHE", "0")
    text = "mov %r0, {}\nexit".format(random.randrange(1 << 30))
    jit.tiering_wait()            # earlier tests' background compiles must not count
    with jit._llvm_lock:
        fn = jit.compile(prog(text), Runtime(), tier="tiered")
        assert fn.tier == "direct" and fn() >= 0
        compiles = jit.cache_info()["misses"]
        del fn
        gc.collect()
    jit.tiering_wait()
    assert jit.cache_info()["misses"] == compiles
    fn = jit.compile(prog(text), Runtime(), tier="tiered")      # queued again, and done
    jit.tiering_wait()
    assert fn.tier == "llvm" and jit.cache_info()["misses"] == compiles + 1   # direct: a hit


def test_switch_keeps_thunks_callx_and_callbacks(monkeypatch):
    """A function address taken in the direct code (lddw func + callx), a subprogram's
    thunk called from Python: the same before and after the switch to LLVM's code."""
    monkeypatch.setenv("URINGBPF_JIT_CACHE", "0")
    k = random.randrange(1, 1 << 20)
    insns = [*isa.lddw_pair(6, 0, isa.PSEUDO_FUNC), Insn(isa.ALU64 | isa.MOV | isa.K, 1, 0, 0, k),
             Insn(isa.OP_CALL | isa.X, 6), Insn(isa.ALU64 | isa.ADD | isa.K, 0, 0, 0, 1),
             Insn(isa.OP_EXIT),
             Insn(isa.ALU64 | isa.MOV | isa.X, 0, 1), Insn(isa.ALU64 | isa.MUL | isa.K, 0, 0, 0, 3),
             Insn(isa.OP_EXIT)]
    insns[0].imm = 5                  # lddw func: the subprogram at 0 + 5 + 1
    program = isa.Program("t", insns)
    with jit._llvm_lock:
        fn = jit.compile(program, Runtime(), tier="tiered")
        assert fn.tier == "direct"
        sub = ctypes.CFUNCTYPE(ctypes.c_uint64, *[ctypes.c_uint64] * 5)(fn.function_address(6))
        before = (fn(), sub(7, 0, 0, 0, 0))
    jit.tiering_wait()
    assert fn.tier == "llvm"
    assert before == (3 * k + 1, 21) == (fn(), sub(7, 0, 0, 0, 0))


_DISK_SCRIPT = r"""
import json
from uringbpf.bpf import isa, jit
from uringbpf.bpf.asm import assemble
from uringbpf.bpf.helpers import Runtime
fn = jit.compile(isa.Program("t", assemble("mov %r0, %r1\nmul %r0, 7\nexit")), Runtime())
first = fn.tier
jit.tiering_wait()
print(json.dumps([first, fn.tier, fn(3), jit.cache_info()["disk_hits"]]))
"""


def test_next_process_gets_llvm_code_from_the_disk_cache(tmp_path):
    """auto: the first process runs the direct code and writes LLVM's to the disk cache in
    the background; the next process loads LLVM's code at once."""
    built = tmp_path / "uringbpf"          # this process's native libraries: no rebuild
    built.mkdir()
    for lib in native.cache_dir().glob("*.so"):
        (built / lib.name).symlink_to(lib)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    env.pop("URINGBPF_JIT_CACHE", None)
    env["URINGBPF_JIT_TIER"] = "tiered"   # the direct code first, LLVM's in the background
    out = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", _DISK_SCRIPT], capture_output=True,
                              text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert out == [["direct", "llvm", 21, 0], ["llvm", "llvm", 21, 1]]


def _helper(fn, hid=1000) -> dict:
    return {hid: Helper(Proto("h", (Arg.ANYTHING,) * 5), fn, hid, None)}


def test_registers_kept_over_calls_and_python_helper_error():
    """r1-r5 keep their values over a helper call (as the interpreter and LLVM code);
    a raising Python helper stops the run with the error naming its pc."""
    text = """
        mov %r1, 11
        mov %r2, 22
        mov %r5, 55
        call 1000
        add %r0, %r1
        add %r0, %r2
        add %r0, %r5
        exit
    """
    helpers = _helper(lambda rt, *a: 100)
    fn = jit.compile(prog(text), Runtime(), tier="direct", helpers=helpers)
    ref = Interpreter(prog(text), Runtime(), helpers=helpers).run()
    assert fn() == ref == 188

    def boom(rt, *a):
        raise ValueError("boom")
    fn = jit.compile(prog(text), Runtime(), tier="direct", helpers=_helper(boom))
    with pytest.raises(BpfRuntimeError, match="boom") as info:
        fn()
    assert info.value.pc == 3


@pytest.mark.parametrize("tier", ["direct", "llvm"])
def test_close_from_a_helper_during_the_run(tier):
    """A helper that closes the function while it runs: the run returns into its code,
    which stays mapped until nothing refers to it; later calls raise."""
    box = []

    def closer(rt, *args):
        box[0].close()
        return 5
    fn = jit.compile(prog("call 1000\nadd %r0, 1\nexit"), Runtime(), tier=tier,
                     helpers=_helper(closer))
    box.append(fn)
    assert fn() == 6
    with pytest.raises(BpfRuntimeError, match="closed"):
        fn()


def test_direct_instance_memory_is_runtime_owned():
    """The context, vars table, thunk descriptors and stack of a direct-tier instance are
    the engine's memory (issue #13 item 5), as an LLVM instance's."""
    fn = jit.compile(prog("mov %r0, 1\nexit"), Runtime(), tier="direct")
    state = fn._state
    for addr in (state.stack.addr + 100, ctypes.addressof(state.ctx),
                 ctypes.addressof(state.vars), ctypes.addressof(state.descs)):
        assert guard_check(addr, 8)


def test_checked_mode_refuses_out_of_bounds_and_spends_the_budget():
    fn = jit.compile(prog("ldxdw %r0, [%r1+8]\nexit"), Runtime(), checked=True, tier="direct")
    buf = Buffer(8)
    fn.runtime.mem.add(buf.addr, 8, True, "small")
    with pytest.raises(BpfMemoryError, match="load of 8 bytes"):
        fn(buf.addr)
    loop = jit.compile(prog("mov %r0, 0\nadd %r0, 1\nja -2\nexit"), Runtime(), checked=True,
                       tier="direct")
    loop.insn_limit = 1000
    with pytest.raises(BpfRuntimeError, match="instruction limit of 1000"):
        loop()
    assert loop.tier == "direct"


def test_call_depth_and_fall_off():
    recurse = isa.Program("t", [Insn(isa.OP_CALL, 0, isa.PSEUDO_CALL, 0, -1),
                                Insn(isa.OP_EXIT)])
    fn = jit.compile(recurse, Runtime(), tier="direct")
    with pytest.raises(BpfRuntimeError, match="call depth limit"):
        fn()
    fell = jit.compile(isa.Program("t", [Insn(isa.ALU64 | isa.MOV | isa.K, 0)]), Runtime(),
                       tier="direct")
    with pytest.raises(BpfRuntimeError, match="fell off"):
        fell()


def test_ld_abs_ind_bounds():
    """LD_ABS/IND read big-endian at r6 + offset and end the program with r0 = 0 outside
    [0, entry r2)."""
    data = bytes(range(1, 17))
    buf = Buffer(len(data), data)
    for mode, size, imm, idx in [(isa.ABS, isa.H, 2, 0), (isa.ABS, isa.W, 12, 0),
                                 (isa.ABS, isa.W, 13, 0), (isa.IND, isa.B, -1, 3),
                                 (isa.IND, isa.W, 4, -5), (isa.ABS, isa.B, -1, 0)]:
        insns = [Insn(isa.ALU64 | isa.MOV | isa.X, 6, 1), Insn(isa.ALU64 | isa.MOV | isa.K, 3, 0, 0, idx),
                 Insn(isa.LD | mode | size, 0, 3, 0, imm), Insn(isa.ALU64 | isa.ADD | isa.K, 0, 0, 0, 1),
                 Insn(isa.OP_EXIT)]
        program = isa.Program("t", insns)
        rt = Runtime()
        rt.mem.add(buf.addr, buf.size, False, "pkt")
        ref = Interpreter(program, rt).run(buf.addr, len(data))
        for checked in (False, True):
            fn = jit.compile(program, rt, checked=checked, tier="direct")
            assert fn(buf.addr, len(data)) == ref, (mode, size, imm, idx, checked)


DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.mark.parametrize("path", sorted(DATA.glob("*.data")), ids=lambda p: p.stem)
def test_conformance_data_on_the_direct_tier(path, monkeypatch):
    """tests/bpf/data (bpf_conformance's format) as the plugin runs it with ``--jit``
    (checked mode), on the direct tier only."""
    monkeypatch.setenv("URINGBPF_JIT_TIER", "direct")
    test = conformance.parse_data_file(path)
    if test.skip:
        pytest.skip(test.skip)
    rc, out = conformance.execute(test.bytecode(), test.mem, "jit")
    ok, message = conformance.judge(test, rc, out, out if rc else "")
    assert ok, message


def _candidates(rng: random.Random, i: int) -> list[list[Insn]]:
    """The programs bench/fuzz_verifier.py makes in round ``i`` (both of its modes)."""
    if i % 2:
        return [fuzzgen.pruning_program(rng)]
    prog = (fuzzgen.grown_program(rng, n=rng.randrange(4, 30)) if i % 4 == 1
            else fuzzgen.random_program(rng, n=rng.randrange(4, 30)))
    if i % 3 == 0:
        prog = fuzzgen.as_subprog(prog)
    return [prog, fuzzgen.mutate(rng, prog)]


def fuzz(rounds: int, seed: int) -> tuple[int, int, int]:
    """Run the verifier fuzzer's accepted programs on the interpreter, the direct tier and
    LLVM's code of the same instance; (accepted, compared with the interpreter, compared
    direct with LLVM). Raises AssertionError with the program on a difference."""
    rng = random.Random(seed)
    arena = fuzzgen.Arena()
    accepted = with_interp = with_llvm = 0
    for i in range(rounds):
        for insns in _candidates(rng, i):
            m = fuzzgen.RunMap("fuzz", 2, 4, fuzzgen.VALUE_SIZE, 1, value_addr=arena.value_addr)
            program = isa.Program("fuzz", insns, section="socket", maps=[m])
            try:
                verifier.verify(program, max_insns=20_000)
            except verifier.BpfVerifierError:
                continue
            accepted += 1
            compared = _agree(program, rng, arena)
            with_llvm += compared is not None
            with_interp += bool(compared)
    return accepted, with_interp, with_llvm


def _agree(program: isa.Program, rng: random.Random, arena) -> bool | None:
    """Run one accepted program on the three engines: True when compared with all of
    them, False when only direct against LLVM (its results depend on the stack's
    address), None when not at all (they differ from one run to the next)."""
    length = rng.choice([0, 4, 16, 64, rng.randrange(0, 200)])
    data = bytes(rng.randrange(256) for _ in range(length))
    value = bytes(rng.randrange(256) for _ in range(fuzzgen.VALUE_SIZE))
    runs = []
    for _ in range(2):       # two interpreters: two stacks at different addresses
        rt, addr = arena.runtime(data, value)
        runs.append((Interpreter(program, rt, max_insns=100_000).run(addr, length),
                     arena.buf.read(0, arena.buf.size)))
    rt, addr = arena.runtime(data, value)
    with jit._llvm_lock:          # LLVM's compile waits until the direct code ran
        fn = jit.compile(program, rt, tier="tiered", cache=False)
        assert fn.tier == "direct"
        direct = (fn(addr, length), arena.buf.read(0, arena.buf.size))
        arena.runtime(data, value)
        again = (fn(addr, length), arena.buf.read(0, arena.buf.size))
    jit.tiering_wait()
    assert fn.tier == "llvm"
    arena.runtime(data, value)
    llvm = (fn(addr, length), arena.buf.read(0, arena.buf.size))
    fn.close()
    text = "\n".join(verifier.insn_text(x) for x in program.insns if x.opcode)
    random_calls = any(i.opcode == isa.OP_CALL and i.src == isa.CALL_HELPER and i.imm == 7
                       for i in program.insns)          # bpf_get_prandom_u32
    if direct != again or random_calls:   # results that differ from one run to the next
        return None
    assert direct == llvm, f"direct tier and LLVM differ (len {length}):\n{text}"
    if runs[0] != runs[1]:        # the results depend on where the stack is
        return False
    assert direct == runs[0], f"direct tier and interpreter differ (len {length}):\n{text}"
    return True


def test_fuzzed_programs_agree_with_the_interpreter(monkeypatch):
    """Programs of the verifier fuzzer (bench/fuzz_verifier.py's generators, both modes)
    that the verifier accepts: same r0 and same memory afterwards on the direct tier as on
    the interpreter (when two interpreter runs with their stacks at different addresses
    agree: some programs compute with stack addresses) and as LLVM's code of the same
    instance (the same stack: always). Larger runs: ``python
    tests/bpf/jit/test_x86_tier.py ROUNDS SEED``."""
    monkeypatch.setenv("URINGBPF_JIT_CACHE", "0")
    accepted, with_interp, _ = fuzz(300, 19)
    assert accepted > 40 and with_interp > 25


if __name__ == "__main__":
    os.environ["URINGBPF_JIT_CACHE"] = "0"
    count, seed = int(sys.argv[1]), int(sys.argv[2])
    print("accepted %d, compared with the interpreter %d, direct vs LLVM %d"
          % fuzz(count, seed))


def test_background_llvm_thread_blocks_signals(monkeypatch):
    """The background LLVM thread must not take process-directed signals: a Ctrl-C
    delivered to it, mid-compile, never interrupted the main thread's io_uring_enter
    (the requests and loop Ctrl-C tests hung in a cold-cache run). Its mask in /proc says
    SIGINT is blocked there."""
    import signal

    monkeypatch.setenv("URINGBPF_JIT_CACHE", "0")
    fn = jit.compile(prog("mov %r0, {}\nexit".format(random.randrange(1 << 30))), Runtime(),
                     tier="tiered")
    jit.tiering_wait()
    workers = [t for t in threading.enumerate() if t.name == "uringbpf-jit-llvm"]
    assert workers, "the background compile ran on its worker thread"
    status = Path(f"/proc/self/task/{workers[0].native_id}/status").read_text()
    blocked = int(next(line.split()[1] for line in status.splitlines()
                       if line.startswith("SigBlk:")), 16)
    assert blocked >> (signal.SIGINT - 1) & 1 and blocked >> (signal.SIGTERM - 1) & 1
    assert fn() >= 0
