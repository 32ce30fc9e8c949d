"""Differential testing: the JIT and the reference interpreter agree on random programs.

Programs come from :mod:`progen` (well-defined by construction); each is run by both
engines with the same arguments and must give the same r0 (which folds in every register
and the stack window) or fail the same way.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings, strategies as st

from uringbpf.bpf import isa, jit
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.memory import BpfRuntimeError, Buffer

from progen import DATA_SIZE, FAULTY_HELPER, faulty_programs, programs  # noqa: E402

#: In CI the examples are the same every run (a rare new failure must not block a
#: submission); locally hypothesis explores new ones each time.
CI = bool(os.environ.get("CI"))


def run_both(program: isa.Program, args: tuple[int, ...]) -> tuple:
    interp = Interpreter(program, Runtime())
    jitted = jit.compile(program, Runtime())
    try:
        return interp.run(*args), jitted(*args)
    finally:
        jitted.close()


@settings(derandomize=CI, max_examples=180, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(program=programs(), args=st.tuples(*[st.integers(0, isa.U64)] * 5))
def test_jit_matches_interpreter(program, args):
    expect, got = run_both(program, args)
    assert got == expect, isa.encode(program.insns).hex()


@settings(derandomize=CI, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(program=programs(max_funcs=1))
def test_checked_jit_matches_interpreter(program):
    """Checked mode must not change results (every access of these programs is valid)."""
    interp = Interpreter(program, Runtime())
    jitted = jit.compile(program, Runtime(), checked=True)
    try:
        assert jitted() == interp.run()
    finally:
        jitted.close()


def _faulty_helper(runtime, r1, *rest):
    if r1 % 5 == 0:
        raise ValueError(f"refusing {r1}")
    return (r1 * 3) & isa.U64


def _outcome(engine: str, program: isa.Program, data: Buffer, initial: bytes):
    data.write(0, initial)
    rt = Runtime()
    rt.mem.add_buffer(data, True, "data")
    helpers = {FAULTY_HELPER: _faulty_helper}
    try:
        if engine == "interp":
            r0 = Interpreter(program, rt, helpers=helpers).run(data.addr)
        else:
            fn = jit.compile(program, rt, checked=True, helpers=helpers)
            try:
                r0 = fn(data.addr)
            finally:
                fn.close()
        return ("ok", r0, data.read())
    except BpfRuntimeError as exc:
        return ("error", type(exc).__name__, str(exc), data.read())


@settings(derandomize=CI, max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(program=faulty_programs(), initial=st.binary(min_size=DATA_SIZE, max_size=DATA_SIZE))
def test_checked_jit_fails_like_the_interpreter(program, initial):
    """Out-of-bounds accesses and raising helpers: same error, same message, same memory."""
    data = Buffer(DATA_SIZE)
    assert _outcome("jit", program, data, initial) == _outcome("interp", program, data, initial)
