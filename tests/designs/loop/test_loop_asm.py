"""A hand-assembled loop_step on the native driver, through each BPF engine available."""

from __future__ import annotations

import errno

import pytest

from loop_support import make_ring, nops_asm_program
from uringbpf.bpf.helpers import Runtime
from uringbpf.designs import loop
from uringbpf.uring import uapi


def compile_jit(prog, checked=False):
    from uringbpf.bpf import jit
    return jit.compile(prog, Runtime(), checked=checked)


class InterpStep:
    """The interpreter behind the LoadedProgram-like face the loop design accepts."""

    engine = "interp"

    def __init__(self, prog):
        from uringbpf.bpf.interp import Interpreter
        self.runtime = Runtime()
        self.interp = Interpreter(prog, self.runtime)

    def __call__(self, r1):
        return self.interp.run(r1)


def build(prog, engine):
    return compile_jit(prog) if engine == "jit" else InterpStep(prog)


@pytest.fixture
def ring():
    r = make_ring()
    yield r
    att = loop.attachment_of(r)
    if att is not None:
        att.destroy()
    r.close()


@pytest.mark.parametrize("engine", ["interp", "jit"])
@pytest.mark.parametrize("total,cap", [(1000, 8), (500, 3), (1, 8)])
def test_nops_state_in_param_region(ring, total, cap, engine):
    region = loop.register_region(ring, 8)
    state = region.view().cast("I")
    state[0], state[1] = total, 0
    fn = build(nops_asm_program(ring, cap), engine)
    link = loop.attach_loop(ring, fn)
    assert link.engine == engine
    assert ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS) == 0
    assert (state[0], state[1]) == (0, 0)
    assert link.stats()["sqes_submitted"] == total
    # run it again on the same attachment: the ring is reusable
    state[0] = 10
    assert ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS) == 0
    assert state[0] == 0
    link.destroy()


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_without_param_region_stops_at_once(ring, engine):
    """get_region(IOU_REGION_MEM) is NULL without a registered region: the program stops."""
    fn = build(nops_asm_program(ring), engine)
    link = loop.attach_loop(ring, fn)
    assert ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS) == 0
    assert link.stats() == {"steps": 1, "waits": 0, "submit_calls": 0, "sqes_submitted": 0,
                            "sqes_denied": 0, "sqes_faulted": 0}
    link.destroy()


def test_jit_checked_mode_fault_is_raised_not_crashed(ring):
    """A checked JIT program that touches memory nobody allowed stops the loop with an error."""
    from uringbpf.bpf import asm, isa
    prog = isa.Program("bad", asm.assemble("r1 = 16\nr0 = *(u64 *)(r1 + 0)\nr0 = 0\nexit"),
                       section="struct_ops.s/bad")
    fn = compile_jit(prog, checked=True)
    link = loop.attach_loop(ring, fn)
    with pytest.raises(loop.LoopError):
        ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS)
    link.destroy()


def test_interp_memory_fault_is_raised_not_crashed(ring):
    from uringbpf.bpf import asm, isa
    from uringbpf.bpf.memory import BpfMemoryError
    prog = isa.Program("bad", asm.assemble("r1 = *(u64 *)(r1 + 0)\nr0 = *(u64 *)(r1 + 0)\n"
                                            "r0 = 0\nexit"), section="struct_ops.s/bad")
    link = loop.attach_loop(ring, InterpStep(prog))
    with pytest.raises(loop.LoopError) as exc:   # the ctx is opaque: reading it faults
        ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS)
    assert isinstance(exc.value.__cause__, BpfMemoryError)
    link.destroy()


def test_interp_can_write_only_cq_wait_idx_and_regions(ring):
    from uringbpf.bpf import asm, isa
    from uringbpf.bpf.memory import BpfMemoryError
    ok = isa.Program("ok", asm.assemble(
        "r2 = *(u64 *)(r1 + 8)\nr3 = 77\n*(u32 *)(r2 + 0) = r3\nr0 = 1\nexit"))
    link = loop.attach_loop(ring, InterpStep(ok))
    assert ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS) == 0
    assert link.ctx.params.cq_wait_idx == 77
    link.destroy()
    bad = isa.Program("bad", asm.assemble(
        "r3 = 77\n*(u64 *)(r1 + 0) = r3\nr0 = 1\nexit"))   # the args array is read-only
    link = loop.attach_loop(ring, InterpStep(bad))
    with pytest.raises(loop.LoopError) as exc:
        ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS)
    assert isinstance(exc.value.__cause__, BpfMemoryError)
    link.destroy()


def _python_calls_during_enter(ring, state, total, fn):
    import sys
    calls = []
    state[0], state[1] = total, 0

    def prof(frame, event, arg):
        if event in ("call", "c_call"):
            calls.append(event)

    sys.setprofile(prof)
    try:
        ret = ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS)
    finally:
        sys.setprofile(None)
    assert ret == 0 and state[0] == 0
    return len(calls)


def test_jit_path_runs_no_python_per_completion(ring):
    """The Python calls of one enter do not grow with the number of NOPs (JIT engine)."""
    region = loop.register_region(ring, 8)
    state = region.view().cast("I")
    link = loop.attach_loop(ring, compile_jit(nops_asm_program(ring)))
    _python_calls_during_enter(ring, state, 8, link)   # warm-up: first-run imports
    few = _python_calls_during_enter(ring, state, 16, link)
    many = _python_calls_during_enter(ring, state, 4000, link)
    assert few == many and many < 300
    link.destroy()
    # the interpreter, by contrast, calls into Python for every step
    link = loop.attach_loop(ring, InterpStep(nops_asm_program(ring)))
    few = _python_calls_during_enter(ring, state, 16, link)
    many = _python_calls_during_enter(ring, state, 400, link)
    assert many > few + 40
    link.destroy()


def test_jit_busy_loop_is_interrupted_by_a_signal(ring):
    """A JIT step that never stops: a signal with a Python handler ends the run (-EINTR)."""
    import signal
    fired = []
    old = signal.signal(signal.SIGALRM, lambda s, f: fired.append(s))
    try:
        from uringbpf.bpf import asm, isa
        spin = isa.Program("spin", asm.assemble("r0 = 0\nexit"), section="struct_ops.s/spin")
        link = loop.attach_loop(ring, compile_jit(spin))
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        assert ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS) == -errno.EINTR
        assert fired == [signal.SIGALRM] and link.stats()["steps"] > 1
        link.destroy()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
