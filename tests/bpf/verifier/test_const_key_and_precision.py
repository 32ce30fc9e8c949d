"""Array lookups with a constant key, and which registers pruning compares exactly (#19).

* Linux 6.14+ (get_constant_map_key, check_helper_call): ``bpf_map_lookup_elem`` on an
  array map with a key the verifier knows from the stack, inside ``max_entries``, returns
  a map value that is never NULL.  Each case is also loaded into the running kernel
  through bpf(2): the verdicts must agree.
* Precision (Cfg._precision): a value stored anywhere but the stack, the scalar operands
  of an addition of two numbers, and the operands of branches never decided by values do
  not make a register precise, as in the kernel; a loop calling bpf_map_lookup_elem then
  processes the kernel's instruction count (it hit the 1M limit before).  The safety
  side: a register that does reach a check stays precise (the refusals below).
"""

from __future__ import annotations

import re

import pytest

import corpus_lib
import kernel_bpf
from uringbpf.bpf import verifier
from uringbpf.bpf.verifier.cfg import Cfg
from uringbpf.errors import BpfVerifierError

corpus_lib.register_test_env()


def _case(text: str, maps: str = "0=array:4:8:4") -> corpus_lib.Case:
    return corpus_lib.Case("c", "accept", "", "socket_filter", corpus_lib.parse_maps(maps), text)


def _kernel(case: corpus_lib.Case, log_level: int = 1) -> tuple[bool, str]:
    fd, log = kernel_bpf.prog_load_with_maps(case.program().insns, case.maps, log_level)
    return fd >= 0, log


def _ours(case: corpus_lib.Case) -> tuple[bool, int]:
    try:
        return True, verifier.verify(case.program()).processed_insns
    except BpfVerifierError:
        return False, 0


@pytest.fixture(scope="module")
def kernel():
    if (why := kernel_bpf.available()) is not None:
        pytest.fail(f"bpf(2) is needed to compare with the kernel: {why}")


# the key is stored by {store}; the value is dereferenced without a NULL check
_DEREF = """{store}
r2 = r10
r2 += {keyoff}
r1 = map[0] ll
call map_lookup_elem
r0 = *(u64 *)(r0 + 0)
exit
"""

KEY_CASES = [
    # (name, store, key offset, maps, dereference accepted)
    ("zero_bytes", "*(u32 *)(r10 - 4) = 0", -4, "0=array:4:8:4", True),
    ("spill32_at_slot_start", "r1 = 3\n*(u32 *)(r10 - 8) = r1", -8, "0=array:4:8:4", True),
    ("st_imm32_at_slot_start", "*(u32 *)(r10 - 8) = 2", -8, "0=array:4:8:4", True),
    ("key_past_the_end", "r1 = 4\n*(u32 *)(r10 - 8) = r1", -8, "0=array:4:8:4", False),
    ("unaligned_nonzero_store", "r1 = 1\n*(u32 *)(r10 - 4) = r1", -4, "0=array:4:8:4", False),
    ("upper_half_of_spill64", "r1 = 2\n*(u64 *)(r10 - 8) = r1", -4, "0=array:4:8:4", True),
    ("lower_half_of_spill64", "r1 = 2\n*(u64 *)(r10 - 8) = r1", -8, "0=array:4:8:4", False),
    ("unknown_key", "call get_prandom_u32\nr0 &= 3\n*(u32 *)(r10 - 8) = r0", -8,
     "0=array:4:8:4", False),
    ("percpu_array", "*(u32 *)(r10 - 4) = 0", -4, "0=percpu_array:4:8:4", True),
    ("hash_map", "*(u32 *)(r10 - 4) = 0", -4, "0=hash:4:8:4", False),
]


@pytest.mark.parametrize("name,store,keyoff,maps,ok", KEY_CASES, ids=[c[0] for c in KEY_CASES])
def test_constant_array_key_is_never_null(kernel, name, store, keyoff, maps, ok):
    case = _case(_DEREF.format(store=store, keyoff=keyoff), maps)
    ours_ok, _ = _ours(case)
    kernel_ok, log = _kernel(case)
    assert ours_ok == ok
    assert kernel_ok == ok, log[-300:]


# One call instruction reached with a different map on each path (r1 is map[0] on one,
# map[1] on the other; either path may be explored first): each path's map decides
# whether the constant key makes r0 non-NULL and whether the helper suits the map type,
# never the map an earlier visit of the same instruction saw.
_TWO_MAPS = """call get_prandom_u32
*(u32 *)(r10 - 8) = 2
r1 = map[0] ll
if r0 == 0 goto lookup
r1 = map[1] ll
lookup:
r2 = r10
r2 += -8
{call}
r0 = 0
exit
"""
_DEREF_LOOKUP = "call map_lookup_elem\nr0 = *(u64 *)(r0 + 0)"
_PERCPU_LOOKUP = "r3 = 0\ncall map_lookup_percpu_elem"

TWO_MAP_CASES = [
    # (call, maps, accepted)
    (_DEREF_LOOKUP, "0=array:4:8:4 1=array:4:8:4", True),
    (_DEREF_LOOKUP, "0=array:4:8:4 1=hash:4:8:4", False),
    (_DEREF_LOOKUP, "0=hash:4:8:4 1=array:4:8:4", False),
    (_DEREF_LOOKUP, "0=array:4:8:4 1=array:4:8:2", False),    # key 2 is inside only one
    (_DEREF_LOOKUP, "0=array:4:8:2 1=array:4:8:4", False),
    # the percpu lookup takes only per-CPU maps (check_map_func_compatibility)
    (_PERCPU_LOOKUP, "0=percpu_array:4:8:4 1=percpu_array:4:8:4", True),
    (_PERCPU_LOOKUP, "0=percpu_array:4:8:4 1=array:4:8:4", False),
    (_PERCPU_LOOKUP, "0=array:4:8:4 1=percpu_array:4:8:4", False),
]


@pytest.mark.parametrize("call,maps,ok", TWO_MAP_CASES,
                         ids=[f"{c[0].split()[-1]}-{c[1]}" for c in TWO_MAP_CASES])
def test_one_call_two_maps(kernel, call, maps, ok):
    case = _case(_TWO_MAPS.format(call=call), maps)
    ours_ok, _ = _ours(case)
    kernel_ok, log = _kernel(case)
    assert ours_ok == ok
    assert kernel_ok == ok, log[-300:]


# a loop whose NULL branch goes back to the loop head: every pending branch is pruned
# within a few instructions when the sum (stored into the map value, then only returned)
# is imprecise and its dead link to r2 does not count
_LOOKUP_LOOP = """r7 = 0
r6 = 0
goto check
next:
r7 += 1
check:
if r7 == {n} goto out
w1 = w7
w1 &= 63
*(u32 *)(r10 - 4) = r1
r2 = r10
r2 += -4
r1 = map[0] ll
call map_lookup_elem
if r0 == 0 goto next
r1 = *(u64 *)(r0 + 0)
r2 = r7
r2 += r1
*(u64 *)(r0 + 0) = r2
r2 >>= 1
r2 += r6
r6 = r2
goto next
out:
w6 &= 255
w0 = w6
exit
"""


@pytest.mark.parametrize("n", [16, 300, 4096])
def test_lookup_loop_processes_the_kernels_count(kernel, n):
    case = _case(_LOOKUP_LOOP.format(n=n), "0=array:4:8:64")
    ours_ok, ours = _ours(case)
    kernel_ok, log = _kernel(case)
    assert kernel_ok, log[-300:]
    assert ours_ok and ours == int(re.search(r"processed (\d+) insns", log).group(1))


# Still precise where a check depends on it: a value stored on the stack and filled into
# an index, and a number added to a pointer after an addition of two numbers.
_STACK_ROUNDTRIP = """call get_prandom_u32
r6 = r0
call get_prandom_u32
r0 &= 7
if r6 > 100 goto second
r0 += 0
goto join
second:
r0 += 8
join:
*(u64 *)(r10 - 8) = r0
r1 = *(u64 *)(r10 - 8)
r2 = map_value[0] ll
r2 += r1
r0 = *(u8 *)(r2 + 0)
r0 = 0
exit
"""

_SUM_THEN_OFFSET = """call get_prandom_u32
r6 = r0
call get_prandom_u32
r0 &= 7
r1 = 0
if r6 > 100 goto second
r1 = 0
goto join
second:
r1 = 8
join:
r0 += r1
r2 = map_value[0] ll
r2 += r0
r0 = *(u8 *)(r2 + 0)
r0 = 0
exit
"""


@pytest.mark.parametrize("text", [_STACK_ROUNDTRIP, _SUM_THEN_OFFSET], ids=["spill", "sum"])
def test_a_value_reaching_a_check_stays_precise(kernel, text):
    case = _case(text, "0=array:4:8:1")
    with pytest.raises(BpfVerifierError, match="outside of the allowed memory range"):
        verifier.verify(case.program())
    assert not _kernel(case)[0]


def test_static_precision_of_stores_additions_and_branches():
    # pc: 0 r1=0; 1 r6=r1; 2 call; 3 r6+=r0; 4 r7=r10; 5 *(r7-8)=r6; 6 lddw r2 (7);
    # 8 *(u64*)(r2+0)=r6; 9 if r6 > 3; 10 r0=0; 11 exit
    text = """r1 = 0
r6 = r1
call get_prandom_u32
r6 += r0
r7 = r10
*(u64 *)(r7 - 8) = r6
r2 = map_value[0] ll
*(u64 *)(r2 + 0) = r6
if r6 > 3 goto out
out:
r0 = 0
exit
"""
    program = _case(text, "0=array:4:8:1").program()
    # (the explorer tells Cfg which calls return numbers: get_prandom_u32 does)
    cfg = Cfg(program, lambda insn: 5, False, lambda insn: False)
    r6 = 1 << 6
    assert Cfg(program, lambda insn: 5, False).ptrs_in[3] & 1   # unknown callee: maybe
    assert cfg.stack_ptrs_in[5] & (1 << 7)          # r7 = r10: a stack pointer
    assert not cfg.stack_ptrs_in[8] & (1 << 2)      # a map value is not
    assert cfg.precise_in[5] & r6                   # stored on the stack: may come back
    assert not cfg.precise_in[8] & r6               # stored into the map: does not
    assert not cfg.ptrs_in[3] & (r6 | 1)            # r6 += r0: two numbers
    assert cfg.precise_in[3] & 1                    # r0 flows into the spilled r6
    # the same sum stored into the map only: no check needs r0 or r6
    sum_only = """call get_prandom_u32
r6 = 0
r6 += r0
r2 = map_value[0] ll
*(u64 *)(r2 + 0) = r6
r0 = 0
exit
"""
    cfg2 = Cfg(_case(sum_only, "0=array:4:8:1").program(), lambda insn: 5, False,
               lambda insn: False)
    assert not cfg2.precise_in[2] & (r6 | 1)
    decided = cfg.branch_precision(frozenset({9}))[0]
    undecided = cfg.branch_precision(frozenset())[0]
    assert decided[9] & r6 and not undecided[9] & r6
    assert cfg.precise_branch_in[9] & r6            # every branch: the static bound


def _log_skeleton(log: str) -> list[tuple[str, str]]:
    """The branch pops of a log: ``("from X to Y", stack slots or "safe")``."""
    out = []
    for line in log.splitlines():
        m = re.match(r"from (\d+) to (\d+): (.*)", line)
        if m:
            rest = m.group(3)
            slots = " ".join(re.findall(r"fp-\d+=\S+", rest))
            out.append((f"from {m.group(1)} to {m.group(2)}", "safe" if rest == "safe" else slots))
    return out


def test_log_prints_pops_and_stack_bytes_as_the_kernel(kernel):
    # a state pruned as soon as it is popped is one line, "from X to Y: safe"; stack bytes
    # print highest address first, '?' for never written (print_verifier_state)
    case = _case(_LOOKUP_LOOP.format(n=16), "0=array:4:8:64")
    ok, klog = _kernel(case, log_level=2)
    assert ok
    ours = verifier.verify(case.program(), log_level=2).log
    assert _log_skeleton(ours) == _log_skeleton(klog)
    assert ("from 13 to 3", "safe") in _log_skeleton(ours)
    assert any("fp-8=mmmm????" in slots for _, slots in _log_skeleton(ours))
