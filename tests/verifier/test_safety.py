"""Soundness regressions (issue #13 items 1-4 and 7): each program was accepted by the
verifier at 6142d5a and corrupts memory, hangs or makes the engines disagree when run.

Every case must be refused, for the reason given; the ``ok_*`` cases are the safe
neighbours that must keep passing (a fix must not refuse correct programs)."""

from __future__ import annotations

import pytest

import corpus_lib
from uringbpf.bpf import verifier

corpus_lib.register_test_env()


def _verify(src: str, prog_type: str = "socket_filter", maps: str = ""):
    case = corpus_lib.Case("t", "accept", "", prog_type,
                           corpus_lib.parse_maps(maps) if maps else [], src)
    return verifier.verify(case.program(), max_insns=200_000)


def _refused(src: str, reason: str, **kw) -> str:
    with pytest.raises(verifier.BpfVerifierError) as info:
        _verify(src, **kw)
    assert reason in info.value.message, info.value.log
    return info.value.log


# ---------------------------------------------------------------- 1. precision of compares

# The `r3 = 0` path joins the `r3 = 0x10000000` one; only r3 differs, and r3 is compared
# with the data length.  Pruning it lets `r6 + 0x10000000` through on a 16-byte buffer.
LEN_COMPARE = """
r6 = r1
r7 = r2
call get_prandom_u32
r3 = 0x10000000
if r0 != 0 goto other
goto join
other:
r3 = 0
join:
if r7 > r3 goto access
r0 = 0
exit
access:
r6 += 0x10000000
r0 = *(u8 *)(r6 + 0)
exit
"""


def test_len_register_compare_both_sides_precise():
    _refused(LEN_COMPARE, "invalid access to packet")


# r3 and r4 are linked (r4 = r3); r3 is compared with r5 (8 or 255), r4 indexes the stack.
LINKED_COMPARE = """
call get_prandom_u32
r3 = r0
r3 &= 0xff
r4 = r3
r5 = 8
if r0 != 0 goto other
goto join
other:
r5 = 255
join:
if r3 > r5 goto out
r1 = r10
r1 += -16
r1 += r4
*(u8 *)(r1 + 0) = 0x41
out:
r0 = 0
exit
"""


def test_linked_register_compare_precise():
    _refused(LINKED_COMPARE, "invalid variable-offset write to stack")


def test_linked_register_compare_through_spill():
    # the linked copy sits in a stack slot while r3 is compared
    src = LINKED_COMPARE.replace("r4 = r3\n", "r4 = r3\n*(u64 *)(r10 - 32) = r4\nr4 = 0\n") \
        .replace("r1 += r4\n", "r4 = *(u64 *)(r10 - 32)\nr1 += r4\n")
    _refused(src, "invalid variable-offset write to stack")


def test_ok_linked_compare_with_safe_bounds():
    # both joined values keep the index inside the 16 bytes: accepted
    _verify(LINKED_COMPARE.replace("r5 = 255", "r5 = 15"))


def test_data_controlled_offset_and_value():
    # write-what-where variant: the bound, offset and value come from the data buffer
    src = """
r6 = r1
r7 = r2
if r7 < 16 goto out
r8 = *(u32 *)(r6 + 4)
r9 = *(u8 *)(r6 + 8)
r5 = *(u8 *)(r6 + 9)
r3 = 0x1000000
if r5 != 0 goto other
goto join
other:
r3 = 16
join:
if r7 < r3 goto out
r8 &= 0xffffff
r6 += r8
*(u8 *)(r6 + 0) = r9
out:
r0 = 0
exit
"""
    _refused(src, "invalid access to packet")
