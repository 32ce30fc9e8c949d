"""Checkpoint bookkeeping as the kernel's (#20): the processed-instruction and stored-state
counts of programs whose exploration depends on where and how often states are stored.

The expected numbers are the kernel's own (``processed N insns ... total_states M`` of
``bpf(BPF_PROG_LOAD)``, root), the same on the 6.18 host and in the Linux 7.2.13 guest
(tools/kernel-vm, measured once for every case here); the crc32c case's 8-byte form is
refused by both (kernel72_socket.json).  test_kernel_crosscheck.py compares every
corpus socket filter's count live where bpf(2) works; these run everywhere.
"""

from __future__ import annotations

import dataclasses

import pytest

import corpus_lib
from uringbpf.bpf import progtypes, verifier
from uringbpf.bpf.verifier.explore import Verifier

corpus_lib.register_test_env()


def _case(src: str) -> corpus_lib.Case:
    return corpus_lib.Case("t", "accept", "", "socket_filter", [], src)


# twelve diamonds one after the other: a state is stored only every 2 jumps and 8
# instructions, so the kernel keeps 9 states (not one per join) and processes 111
DIAMONDS = "call get_prandom_u32\nr6 = r0\nr7 = 0\n" + "".join(
    f"r1 = r6\nr1 &= {1 << i}\nif r1 == 0 goto +1\nr7 += {i + 1}\nr7 += 1\n" for i in range(12)
) + "r0 = r7\nr0 &= 1\nexit\n"

# a bounded loop with a branch in it: inside a loop a state is stored only every 20 jumps
# or 100 instructions, and states that keep missing are evicted
LOOP = """r6 = 0
r7 = 0
loop:
call get_prandom_u32
r0 &= 3
if r0 != 0 goto +1
r7 += 1
r7 &= 7
r6 += 1
if r6 < 60 goto loop
r0 = r7
exit
"""


@pytest.mark.parametrize("src, processed, states", [
    (DIAMONDS, 111, 9),
    (LOOP, 1345, 77),
], ids=["diamonds", "loop"])
def test_counts_equal_kernel(src, processed, states):
    res = verifier.verify(_case(src).program(), max_insns=1_000_000)
    assert (res.processed_insns, res.total_states) == (processed, states)


def _crc32c_bytes(n: int) -> corpus_lib.Case:
    case = next(c for c in corpus_lib.load_corpus() if c.name == "crc32c_bitwise_8_bytes")
    assert "if r1 == 8 goto" in case.source
    return dataclasses.replace(case, source=case.source.replace("if r1 == 8 goto",
                                                                f"if r1 == {n} goto"))


@pytest.mark.parametrize("n, processed, states", [
    (1, 3143, 1),
    (2, 6283, 3),
    # a stored state at the loop test misses 4 times (while the next byte's forks are
    # pruned further on) and is evicted before it can prune this byte's other forks
    (3, 809_609, 258),
    (4, 15_707, 7),
])
def test_bitwise_crc32c_counts_equal_kernel(n, processed, states):
    """The corpus's bitwise crc32c over n bytes (scalar forks in a loop): the kernel's
    counts for each n; over 5, 7 and 8 bytes both run out of the 1M budget (the
    8-byte one is the corpus case)."""
    res = verifier.verify(_crc32c_bytes(n).program(), max_insns=1_000_000)
    assert (res.processed_insns, res.total_states) == (processed, states)


def test_prune_points_are_the_kernels():
    """The kernel's check_cfg marks: each conditional jump itself, every jump target and
    the instruction after a call; not the fall-through of a conditional jump."""
    src = """call get_prandom_u32
r6 = r0
if r6 > 5 goto +1
r6 = 0
if r6 > 3 goto +2
r0 = 1
goto +1
r0 = 0
exit
"""
    program = _case(src).program()
    v = Verifier(program, progtypes.prog_type_for(program))
    v.run()
    # 1: after the call; 2, 4: the jumps; 4, 7: their targets; 8: the goto's target
    assert v.prune_points == {1, 2, 4, 7, 8}
