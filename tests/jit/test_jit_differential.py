"""Differential testing: the JIT and the reference interpreter agree on random programs.

Programs come from :mod:`progen` (well-defined by construction); each is run by both
engines with the same arguments and must give the same r0 (which folds in every register
and the stack window) or fail the same way.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from uringbpf.bpf import isa, jit
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.interp import Interpreter

from progen import programs  # noqa: E402  (tests/jit is on sys.path via rootdir conftest)


def run_both(program: isa.Program, args: tuple[int, ...]) -> tuple:
    interp = Interpreter(program, Runtime())
    jitted = jit.compile(program, Runtime())
    try:
        return interp.run(*args), jitted(*args)
    finally:
        jitted.close()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(program=programs(), args=st.tuples(*[st.integers(0, isa.U64)] * 5))
def test_jit_matches_interpreter(program, args):
    expect, got = run_both(program, args)
    assert got == expect, isa.encode(program.insns).hex()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
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
