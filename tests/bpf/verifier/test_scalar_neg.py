"""BPF_NEG keeps the known bits (#20, held-out corpus 3): the kernel computes ``-x`` as
``0 - x`` (scalar_min_max_sub, tnum_neg), so ``-(x & 8)`` is 0 or -8 and an 8-byte stack
access at a variable offset made of it stays aligned.  Verdicts from the kernel (6.18 host
and the 7.2 guest: ho3_stack_var_off_neg_add_512 in heldout/03_ho3_socket.txt)."""

from __future__ import annotations

import pytest

import corpus_lib
from uringbpf.bpf import verifier
from uringbpf.bpf.verifier import scalar as sc

corpus_lib.register_test_env()


def test_neg_keeps_known_bits():
    v = sc.alu_neg(sc.alu_and(sc.UNKNOWN, sc.const(8)))
    assert (v[4], v[5]) == (0, sc.U64 ^ 7)      # low three bits known zero
    assert (v[2], v[3]) == (-8, 0)
    assert sc.alu_neg(sc.const(5)) == sc.const(-5 & sc.U64)


def test_neg_ranges_unchanged():
    # what the range-only negation gave, and the full-range edge
    v = sc.alu_neg(sc.srange(-5, 9))
    assert (v[2], v[3]) == (-9, 5)
    assert sc.alu_neg(sc.UNKNOWN)[:4] == sc.UNKNOWN[:4]


STORE = ("*(u64 *)(r10 - 512) = 0\ncall get_prandom_u32\nr0 &= {mask}\nr0 = -r0\nr1 = r10\n"
         "r1 += r0\n*(u64 *)(r1 - {off}) = 1\nr0 = 0\nexit\n")


# (mask, offset, the kernel's verdict on the 6.18 host): misaligned (12, 9) and past the
# 512-byte stack (24) are refused there too
@pytest.mark.parametrize("mask, off, expect", [(8, 504, "accept"), (16, 496, "accept"),
                                               (12, 504, "reject"), (9, 504, "reject"),
                                               (24, 496, "reject")])
def test_negated_stack_offset(mask, off, expect):
    case = corpus_lib.Case("neg", "accept", "", "socket_filter", [], STORE.format(mask=mask, off=off))
    try:
        verifier.verify(case.program())
        got = "accept"
    except verifier.BpfVerifierError:
        got = "reject"
    assert got == expect
