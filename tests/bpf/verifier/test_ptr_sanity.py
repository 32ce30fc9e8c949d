"""Limits on pointer arithmetic and on variable offsets into memory (#20, held-out corpus 4's
classes _SANE and _NEGVAR), each at its edge with a twin one step inside or outside.

* check_reg_sane_offset (Linux 6.18 and 7.2 alike): ``ptr +/-= x`` is refused by itself,
  access or not, when the scalar x is a constant 2**29 or more away from 0 ("math between
  map_value pointer and 536870912 is not allowed"), has an unbounded signed minimum, or a
  signed minimum 2**29 or more away ("value ... makes ... pointer be out of bounds"); and
  when the result's fixed offset, or its variable part's signed minimum, is 2**29 or more
  away ("map_value pointer offset ... is not allowed").  Map values, the stack ("fp"),
  ring buffer records ("ringbuf_mem"); constants as immediates and in registers; add and
  sub; 64-bit operands, zero- and sign-extended 32-bit ones, and the 32-bit ALU (refused
  for any operand first).
* check_mem_region_access in 7.2: a pointer's constant offset is folded into its variable
  range, and an access through a range that may be negative is "unbounded memory access"
  even when the instruction's offset brings it back inside (map values, ring buffer
  records; not the stack).

Each case: (name, map specs, program, None or the first line of our refusal, which is
7.2's last log line, and 6.18's verdict where it differs from 7.2's).  The verdicts are
Linux 6.18's (the host, through bpf(2): test_host_kernel_agrees re-checks them whenever
bpf(2) works); where 6.18 and 7.2 differ (the _NEGVAR rule, whose 6.18 form checks the
fixed and variable offsets apart) 7.2's are those the guest recorded for the same
shapes in held-out corpus 4 (h4_ptr_var_then_negative_const: 7.2 refuses, 6.18 accepts;
map value + 32 + [-32, 31]: 7.2 accepts, 6.18 refuses).
"""

from __future__ import annotations

import pytest

import corpus_lib
import kernel_bpf
from uringbpf.bpf import verifier

corpus_lib.register_test_env()

CASES: list[tuple[str, str, str, str | None, bool | None]] = []


def c(name: str, maps: str, body: str, msg: str | None, k618: bool | None = None) -> None:
    """Add a case; ``k618`` is 6.18's verdict where it is not 7.2's (None: the same)."""
    CASES.append((name, maps, body.strip("\n") + "\n", msg, k618))


M = "0=array:4:64:1"
R = "0=ringbuf:0:0:4096"
UNB = "math between {} pointer and register with unbounded min value is not allowed"
c("map_const_below_2_29", M, "r1 = map_value[0] ll\nr1 += 0x1fffffff\nr0 = 0\nexit", None)
c("map_const_2_29", M, "r1 = map_value[0] ll\nr1 += 0x20000000\nr0 = 0\nexit", "math between map_value pointer and 536870912 is not allowed")
c("map_const_neg_below_2_29", M, "r1 = map_value[0] ll\nr1 += -536870911\nr0 = 0\nexit", None)
c("map_const_neg_2_29", M, "r1 = map_value[0] ll\nr1 += -536870912\nr0 = 0\nexit", "math between map_value pointer and -536870912 is not allowed")
c("map_sub_const_below_2_29", M, "r1 = map_value[0] ll\nr1 -= 0x1fffffff\nr0 = 0\nexit", None)
c("map_sub_const_2_29", M, "r1 = map_value[0] ll\nr1 -= 0x20000000\nr0 = 0\nexit", "math between map_value pointer and 536870912 is not allowed")
c("map_const_reg_below_2_29", M, "r2 = 0x1fffffff\nr1 = map_value[0] ll\nr1 += r2\nr0 = 0\nexit", None)
c("map_const_reg_2_29", M, "r2 = 0x20000000\nr1 = map_value[0] ll\nr1 += r2\nr0 = 0\nexit", "math between map_value pointer and 536870912 is not allowed")
c("map_fixed_off_below_2_29", M, "r1 = map_value[0] ll\nr1 += 0x1ffffffe\nr1 += 1\nr0 = 0\nexit", None)
c("map_fixed_off_2_29", M, "r1 = map_value[0] ll\nr1 += 0x1fffffff\nr1 += 1\nr0 = 0\nexit", "map_value pointer offset 536870912 is not allowed")
c("map_fixed_off_2_29_then_var", M, "call get_prandom_u32\nr0 &= 7\nr1 = map_value[0] ll\nr1 += 0x1fffffff\nr1 += 1\nr1 += r0\nr0 = 0\nexit", "map_value pointer offset 536870912 is not allowed")
c("map_range_below_2_29", M, "call get_prandom_u32\nr0 &= 7\nr0 += 0x1fffffff\nr1 = map_value[0] ll\nr1 += r0\nr0 = 0\nexit", None)
c("map_range_2_29", M, "call get_prandom_u32\nr0 &= 7\nr0 += 0x20000000\nr1 = map_value[0] ll\nr1 += r0\nr0 = 0\nexit", "value 536870912 makes map_value pointer be out of bounds")
c("map_range_neg_below_2_29", M, "call get_prandom_u32\nr0 &= 7\nr0 -= 0x1fffffff\nr1 = map_value[0] ll\nr1 += r0\nr0 = 0\nexit", None)
c("map_range_neg_2_29", M, "call get_prandom_u32\nr0 &= 7\nr0 -= 0x20000000\nr1 = map_value[0] ll\nr1 += r0\nr0 = 0\nexit", "value -536870912 makes map_value pointer be out of bounds")
c("map_sub_range_below_2_29", M, "call get_prandom_u32\nr0 &= 7\nr0 += 0x1ffffff8\nr1 = map_value[0] ll\nr1 -= r0\nr0 = 0\nexit", None)
c("map_sub_range_result_2_29", M, "call get_prandom_u32\nr0 &= 7\nr0 += 0x1ffffff9\nr1 = map_value[0] ll\nr1 -= r0\nr0 = 0\nexit", "map_value pointer offset -536870912 is not allowed")
c("map_sub_range_2_29", M, "call get_prandom_u32\nr0 &= 7\nr0 += 0x20000000\nr1 = map_value[0] ll\nr1 -= r0\nr0 = 0\nexit", "value 536870912 makes map_value pointer be out of bounds")
_res = "call get_prandom_u32\nr6 = r0\nr6 &= 7\nr6 += 0x1ffffffc\ncall get_prandom_u32\nr0 &= 7\nr0 += {}\nr1 = map_value[0] ll\nr1 += r6\nr1 += r0\nr0 = 0\nexit"
c("map_result_below_2_29", M, _res.format(3), None)
c("map_result_2_29", M, _res.format(4), "map_value pointer offset 536870912 is not allowed")
c("map_unbounded", M, "call ktime_get_ns\nr1 = map_value[0] ll\nr1 += r0\nr0 = 0\nexit", UNB.format("map_value"))
c("map_unbounded_sub", M, "call ktime_get_ns\nr1 = map_value[0] ll\nr1 -= r0\nr0 = 0\nexit", UNB.format("map_value"))
c("map_half_bounded", M, "call ktime_get_ns\nr0 s>>= 1\nr1 = map_value[0] ll\nr1 += r0\nr0 = 0\nexit", "value -4611686018427387904 makes map_value pointer be out of bounds")
c("map_unbounded_32bit_add", M, "call ktime_get_ns\nr1 = map_value[0] ll\nw1 += w0\nr0 = 0\nexit", "R1 32-bit pointer arithmetic prohibited")
c("map_u32_add", M, "call get_prandom_u32\nw0 = w0\nr1 = map_value[0] ll\nr1 += r0\nr0 = 0\nexit", None)
c("map_s32_add", M, "call get_prandom_u32\nr0 = (s32)r0\nr1 = map_value[0] ll\nr1 += r0\nr0 = 0\nexit", "value -2147483648 makes map_value pointer be out of bounds")
c("map_s32_add_nonneg", M, "call get_prandom_u32\nw0 &= 0x7fffffff\nr0 = (s32)r0\nr1 = map_value[0] ll\nr1 += r0\nr0 = 0\nexit", None)
c("fp_unbounded", "", "call ktime_get_ns\nr1 = r10\nr1 += r0\nr0 = 0\nexit", UNB.format("fp"))
c("fp_unbounded_sub", "", "call ktime_get_ns\nr1 = r10\nr1 -= r0\nr0 = 0\nexit", UNB.format("fp"))
c("fp_bounded_sub", "", "call get_prandom_u32\nr0 &= 7\nr1 = r10\nr1 -= r0\nr0 = 0\nexit", "R1 subtraction from stack pointer prohibited")
c("fp_const_neg_below_2_29", "", "r1 = r10\nr1 += -536870911\nr0 = 0\nexit", None)
c("fp_const_neg_2_29", "", "r1 = r10\nr1 += -536870912\nr0 = 0\nexit", "math between fp pointer and -536870912 is not allowed")
c("fp_range_neg_2_29", "", "call get_prandom_u32\nr0 &= 7\nr0 -= 0x20000000\nr1 = r10\nr1 += r0\nr0 = 0\nexit", "value -536870912 makes fp pointer be out of bounds")
_rb = "r1 = map[0] ll\nr2 = 8\nr3 = 0\ncall ringbuf_reserve\nif r0 == 0 goto out\nr6 = r0\n{}\nr1 = r6\nr2 = 0\ncall ringbuf_discard\nout:\nr0 = 0\nexit"
c("ringbuf_const_below_2_29", R, _rb.format("r7 = r6\nr7 += 0x1fffffff"), None)
c("ringbuf_const_2_29", R, _rb.format("r7 = r6\nr7 += 0x20000000"), "math between ringbuf_mem pointer and 536870912 is not allowed")
c("ringbuf_unbounded", R, _rb.format("call ktime_get_ns\nr7 = r6\nr7 += r0"), UNB.format("ringbuf_mem"))
# _NEGVAR: 7.2 folds the constant into the variable range; a range that may be negative is unbounded
UA = "R1 unbounded memory access, make sure to bounds check any such access"
c("negvar_map_nonneg_fixed_off", M, "call get_prandom_u32\nr0 &= 31\nr1 = map_value[0] ll\nr1 += r0\nr0 = *(u8 *)(r1 + 32)\nexit", None)
c("negvar_map_minus1_fixed_off", M, "call get_prandom_u32\nr0 &= 31\nr0 -= 1\nr1 = map_value[0] ll\nr1 += r0\nr0 = *(u8 *)(r1 + 1)\nexit", UA)
c("negvar_map_plus1_then_minus1", M, "call get_prandom_u32\nr0 &= 31\nr0 -= 1\nr1 = map_value[0] ll\nr1 += 1\nr1 += r0\nr0 = *(u8 *)(r1 + 0)\nexit", None, False)
c("negvar_map_minus1_write", M, "call get_prandom_u32\nr0 &= 31\nr1 = map_value[0] ll\nr1 += r0\nr1 += -1\nr2 = 0\n*(u8 *)(r1 + 1) = r2\nr0 = 0\nexit", UA, True)
c("negvar_map_minus1_at_0", M, "call get_prandom_u32\nr0 &= 31\nr0 -= 1\nr1 = map_value[0] ll\nr1 += r0\nr0 = *(u8 *)(r1 + 0)\nexit", "R1 min value is negative, either use unsigned index or do a if (index >=0) check.")
c("negvar_ringbuf_nonneg", R, _rb.format("call get_prandom_u32\nr0 &= 3\nr1 = r6\nr1 += r0\nr2 = 0\n*(u8 *)(r1 + 4) = r2"), None)
c("negvar_ringbuf_minus1", R, _rb.format("call get_prandom_u32\nr0 &= 3\nr0 -= 1\nr1 = r6\nr1 += r0\nr2 = 0\n*(u8 *)(r1 + 4) = r2"), UA)
c("negvar_stack_not_concerned", "", "call get_prandom_u32\nr0 &= 15\nr0 -= 8\nr1 = r10\nr1 += -16\nr1 += r0\nr2 = 0\n*(u8 *)(r1 + 8) = r2\nr0 = 0\nexit", None)
c("map_var_then_const_past_2_29", M, "call get_prandom_u32\nr0 &= 7\nr0 += 0x1ffffff8\nr1 = map_value[0] ll\nr1 += r0\nr1 += 8\nr0 = 0\nexit", None)
c("map_u64_unknown_add", M, "call get_prandom_u32\nr1 = map_value[0] ll\nr1 += r0\nr0 = 0\nexit", UNB.format("map_value"))


def _case(name: str, maps: str, body: str) -> corpus_lib.Case:
    return corpus_lib.Case(name, "accept", "", "socket_filter",
                           corpus_lib.parse_maps(maps) if maps else [], body)


def test_the_edges_are_covered():
    assert len({n for n, *_ in CASES}) == len(CASES) >= 40
    assert sum(m is None for _, _, _, m, _ in CASES) >= 15
    assert sum(m is not None for _, _, _, m, _ in CASES) >= 25


@pytest.mark.parametrize("name,maps,body,msg,k618", CASES, ids=[c[0] for c in CASES])
def test_verdict_and_message_are_7_2s(name, maps, body, msg, k618):
    prog = _case(name, maps, body).program()
    if msg is None:
        verifier.verify(prog)
        return
    with pytest.raises(verifier.BpfVerifierError) as err:
        verifier.verify(prog)
    assert str(err.value).splitlines()[0] == msg


@pytest.mark.parametrize("name,maps,body,msg,k618", CASES, ids=[c[0] for c in CASES])
def test_host_kernel_agrees(name, maps, body, msg, k618):
    why = kernel_bpf.available()
    if why:
        pytest.skip(f"bpf(2) unusable here: {why}")
    fd, log = kernel_bpf.load_case(_case(name, maps, body))
    assert (fd >= 0) == (msg is None if k618 is None else k618), log[-600:]
    if fd < 0 and k618 is None:
        # the kernel's last line before its "processed N insns" summary
        assert [ln for ln in log.splitlines() if ln.strip()][-2] == msg
