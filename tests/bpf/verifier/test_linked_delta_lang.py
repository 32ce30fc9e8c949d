"""The program that found the missing delta links (#20): a Python ``fact(x & 7)`` that
LLVM turns into a loop moving a copy of the counter by -1 and testing the original.  The
6.18 and 7.2 kernels load it; before the links our verifier ran into the 1M budget."""

from __future__ import annotations

import math

import pytest

from uringbpf.lang import Module, u64

m = Module("linked_delta_fact")


@m.function
def fact(n: u64) -> u64:
    if n < 2:
        return 1
    return n * fact(n - 1)


@m.socket_filter
def kfact(data, n) -> u64:
    return fact(u64(n) & 7)


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_fact_loop_loads_and_runs(engine):
    for n in (0, 1, 2, 5, 7, 8, 15):
        assert kfact.run(bytes(n), engine=engine) == math.factorial(n & 7)
