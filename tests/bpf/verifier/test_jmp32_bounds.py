"""32-bit subregister bounds (#20, "Signed 32-bit bounds"): JMP32 compares, signed and
unsigned, with immediates and registers, on both branches, and ALU32 add/sub/arsh (and a
JSET on two non-constants, which the kernel never decides), each
followed by an access into an array map value indexed by the register.  Each case has
an off-by-one twin that must stay refused.

The verdicts are the host kernel's (Linux 6.18, socket filters loaded with bpf(2) by
kernel_bpf.py; test_host_kernel_agrees re-checks them whenever bpf(2) works here), and
Linux 7.2.13's gives the same 53 (loaded in the tools/kernel-vm guest, 2026-12-05).
"""

from __future__ import annotations

import pytest

import corpus_lib
import kernel_bpf
from uringbpf.bpf import isa, verifier
from uringbpf.bpf.verifier import scalar as sc
from uringbpf.bpf.verifier import transfer

corpus_lib.register_test_env()

_TAIL = {
    # what follows the case's own lines: an access at map_value + reg, then the exit
    "out": "r1 = map_value[0] ll\nr1 += {reg}\nr0 = *(u8 *)(r1 + 0)\nout:\nr0 = 0\nexit\n",
    "exit": "r1 = map_value[0] ll\nr1 += {reg}\nr0 = *(u8 *)(r1 + 0)\nexit\n",
    "same": "same:\nr1 = map_value[0] ll\nr1 += {reg}\nr0 = *(u8 *)(r1 + 0)\nr0 = 0\nexit\n",
}


def _one(name: str, ok: bool, size: int, lines: str, reg: str = "r0", tail: str = "out"):
    """A case: (name, the kernel accepts, map value size, program)."""
    return (name, ok, size, lines.lstrip("\n") + _TAIL[tail].format(reg=reg))


def _size_pair(name: str, size: int, lines: str, **kw):
    """An accepted program and its twin on a map value one byte too small."""
    return _one(name, True, size, lines, **kw), _one(name + "_off1", False, size - 1, lines, **kw)


def _line_pair(name: str, size: int, lines: str, change: tuple[str, str], **kw):
    """An accepted program and its twin with one line changed by one (``change``)."""
    old, new = change
    assert lines.count(old + "\n") == 1, old
    return (_one(name, True, size, lines, **kw),
            _one(name + "_off1", False, size, lines.replace(old + "\n", new + "\n"), **kw))


# every program reads one byte at map_value + r0 (or the register named) after its lines
CASES = [
    *_size_pair("arsh32_add", 8, """
call get_prandom_u32
w0 s>>= 29
w0 += 4
""", tail="exit"),
    _one("arsh32_add3_off1", False, 8, """
call get_prandom_u32
w0 s>>= 29
w0 += 3
""", tail="exit"),
    *_line_pair("jmp32_s_imm", 8, """
call get_prandom_u32
w0 = w0
if w0 s< 0 goto out
if w0 s> 7 goto out
""", ('if w0 s> 7 goto out', 'if w0 s> 8 goto out')),
    _one("jmp32_s_imm_nozext", False, 8, """
call get_prandom_u32
if w0 s< 0 goto out
if w0 s> 7 goto out
"""),
    _one("jmp32_s_imm_ktime", False, 8, """
call ktime_get_ns
if w0 s< 0 goto out
if w0 s> 7 goto out
"""),
    _one("jmp32_s_imm_ktime_zext_after", True, 8, """
call ktime_get_ns
if w0 s< 0 goto out
if w0 s> 7 goto out
w0 = w0
"""),
    *_line_pair("jmp32_s_reg", 8, """
call get_prandom_u32
w0 = w0
r2 = 8
r3 = 0
if w0 s>= w2 goto out
if w3 s> w0 goto out
""", ('r3 = 0', 'r3 = -1')),
    *_line_pair("jmp32_neg_range_add", 8, """
call get_prandom_u32
w0 = w0
if w0 s> -1 goto out
if w0 s< -8 goto out
w0 += 8
""", ('if w0 s< -8 goto out', 'if w0 s< -9 goto out')),
    _one("jmp32_neg_branch_taken_side", True, 8, """
call get_prandom_u32
w0 = w0
if w0 s< -8 goto out
if w0 s< 0 goto neg
goto out
neg:
w0 += 8
"""),
    _one("alu32_sub_add", True, 8, """
call get_prandom_u32
w0 &= 7
w0 -= 4
w0 += 4
""", tail="exit"),
    *_line_pair("alu32_sub_signed_cmp", 8, """
call get_prandom_u32
w0 &= 15
w0 -= 8
if w0 s< 0 goto out
""", ('w0 -= 8', 'w0 -= 7')),
    _one("jmp32_u_imm_ktime", False, 8, """
call ktime_get_ns
if w0 > 7 goto out
"""),
    _one("jmp32_u_imm", True, 8, """
call get_prandom_u32
w0 = w0
if w0 > 7 goto out
"""),
    *_size_pair("arsh32_cmp_neg", 8, """
call get_prandom_u32
w0 s>>= 28
if w0 s< 0 goto out
"""),
    _one("arsh32_negate_side", True, 8, """
call get_prandom_u32
w0 s>>= 29
if w0 s>= 0 goto out
w0 += 4
"""),
    _one("jmp32_u_reg", True, 8, """
call get_prandom_u32
w0 = w0
r2 = 7
if w0 > w2 goto out
"""),
    *_size_pair("jmp32_u_ktime_zext_5", 6, """
call ktime_get_ns
if w0 > 5 goto out
w0 = w0
"""),
    *_size_pair("jmp32_ne_zero_edge", 7, """
call get_prandom_u32
w0 &= 7
if w0 == 0 goto out
w0 -= 1
"""),
    _one("movsx32_jmp32_signed", True, 8, """
call get_prandom_u32
r0 = (s32)r0
if w0 s< 0 goto out
if w0 s> 7 goto out
"""),
    *_size_pair("alu32_sub_arsh_add", 16, """
call get_prandom_u32
w0 &= 255
w0 -= 128
w0 s>>= 4
w0 += 8
""", tail="exit"),
    *_size_pair("arsh32_then_jmp64", 4, """
call get_prandom_u32
w0 s>>= 29
if r0 > 7 goto out
"""),
    _one("jmp32_big_side_unsafe", False, 8, """
call get_prandom_u32
w0 = w0
if w0 s< 0 goto out
if w0 s> 7 goto big
r1 = map_value[0] ll
r1 += r0
r0 = *(u8 *)(r1 + 0)
goto out
big:
if w0 s> 8 goto out
"""),
    *_size_pair("jset32_sign_bit", 8, """
call get_prandom_u32
if w0 & 0x80000000 goto out
w0 s>>= 28
"""),
    *_line_pair("alu32_add_wraps_u32", 8, """
call get_prandom_u32
w0 = w0
if w0 < 0xfffffff8 goto out
w0 += 8
""", ('if w0 < 0xfffffff8 goto out', 'if w0 < 0xfffffff7 goto out')),
    _one("jmp32_sle_reg_both", True, 8, """
call get_prandom_u32
r6 = r0
call get_prandom_u32
w6 &= 7
w0 s>>= 24
if w0 s<= w6 goto le
r0 = 0
exit
le:
if w0 s< 0 goto out
"""),
    _one("jmp32_upper_unknown_no_narrow64", False, 8, """
call get_prandom_u32
r6 = r0
call get_prandom_u32
r0 <<= 32
r0 |= r6
if w0 s< 0 goto out
if w0 s> 7 goto out
"""),
    _one("jmp32_s_gt_neg_window", True, 8, """
call get_prandom_u32
w0 = w0
if w0 s> -5 goto out
if w0 s< -12 goto out
w0 += 12
"""),
    _one("jmp32_upper_unknown_zext_after", True, 8, """
call get_prandom_u32
r6 = r0
call get_prandom_u32
r0 <<= 32
r0 |= r6
if w0 s< 0 goto out
if w0 s> 7 goto out
w0 = w0
"""),
    _one("jmp32_upper_const_one", True, 8, """
call get_prandom_u32
w0 = w0
r1 = 1
r1 <<= 32
r0 |= r1
if w0 s< 0 goto out
if w0 s> 7 goto out
r1 = 1
r1 <<= 32
r0 -= r1
"""),
    _one("mul32_neg", False, 8, """
call get_prandom_u32
w0 s>>= 29
w0 *= -1
w0 += 4
""", tail="exit"),
    _one("mul32_pos", True, 16, """
call get_prandom_u32
w0 s>>= 29
w0 += 4
w0 *= 2
""", tail="exit"),
    _one("or32_neg", False, 8, """
call get_prandom_u32
w0 s>>= 29
w0 |= 1
w0 += 4
""", tail="exit"),
    _one("neg32", False, 8, """
call get_prandom_u32
w0 s>>= 29
w0 = -w0
w0 += 4
""", tail="exit"),
    _one("arsh32_twice", True, 8, """
call get_prandom_u32
w0 s>>= 20
w0 s>>= 9
w0 += 4
""", tail="exit"),
    _one("lsh32_then_arsh", True, 8, """
call get_prandom_u32
w0 <<= 29
w0 s>>= 29
w0 += 4
""", tail="exit"),
    *_size_pair("jeq32_meets_s32", 2, """
call get_prandom_u32
r6 = r0
call get_prandom_u32
w6 s>>= 30
w0 >>= 24
if w0 != w6 goto out
"""),
    _one("jeq32_meets_other_side", True, 2, """
call get_prandom_u32
r6 = r0
call get_prandom_u32
w6 s>>= 30
w0 >>= 24
if w6 == w0 goto same
r0 = 0
exit
""", reg="r6", tail="same"),
    _one("jeq64_meets_through_64bit", True, 2, """
call get_prandom_u32
r6 = r0
call get_prandom_u32
w6 s>>= 30
w0 >>= 24
if r6 == r0 goto same
r0 = 0
exit
""", reg="r6", tail="same"),
    _one("jset_two_unknowns_not_decided", False, 8, """
call get_prandom_u32
r6 = r0
call get_prandom_u32
w6 |= -2147483648
w0 |= -2147483648
if r6 & r0 goto out
""", reg="r6"),
    _one("jset_const_decided", True, 8, """
call get_prandom_u32
r6 = r0
w6 |= -2147483648
if r6 & 0x80000000 goto out
""", reg="r6"),
]


def _case(name: str, ok: bool, size: int, body: str) -> corpus_lib.Case:
    maps = corpus_lib.parse_maps(f"0=array:4:{size}:1")
    return corpus_lib.Case(name, "accept" if ok else "reject", "", "socket_filter", maps, body)


def _ours(case: corpus_lib.Case) -> bool:
    try:
        verifier.verify(case.program(), max_insns=case.budget)
    except verifier.BpfVerifierError:
        return False
    return True


def test_the_class_is_covered():
    assert len(CASES) >= 50
    assert len({c[0] for c in CASES}) == len(CASES)
    assert sum(c[1] for c in CASES) >= 20 and sum(not c[1] for c in CASES) >= 15


@pytest.mark.parametrize("name,ok,size,body", CASES, ids=[c[0] for c in CASES])
def test_verdict_is_the_kernels(name, ok, size, body):
    assert _ours(_case(name, ok, size, body)) == ok


@pytest.mark.parametrize("name,ok,size,body", CASES, ids=[c[0] for c in CASES])
def test_host_kernel_agrees(name, ok, size, body):
    why = kernel_bpf.available()
    if why:
        pytest.skip(f"bpf(2) unusable here: {why}")
    fd, log = kernel_bpf.load_case(_case(name, ok, size, body))
    assert (fd >= 0) == ok, log[-600:]


def test_arsh32_keeps_the_signed_range():
    """`w0 s>>= 29` is [-4, 3] as s32 and [0, 7] after `w0 += 4`, as in the kernel's
    log (held-out ho3b_arsh32_bounds)."""
    v = transfer.scalar_alu(isa.ALU | isa.ARSH, 0, sc.urange(0, sc.U32), sc.const(29))
    assert (v[0], v[1], v[8], v[9]) == (0, sc.U32, -4, 3)
    v = transfer.scalar_alu(isa.ALU | isa.ADD, 0, v, sc.const(4))
    assert v[:4] == (0, 7, 0, 7)
