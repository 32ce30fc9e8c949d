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
    _refused(LEN_COMPARE, "invalid bpf_context access")


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
    _refused(src, "invalid bpf_context access")


# ---------------------------------------------------------------- 4. pointer -> scalar leaks

@pytest.mark.parametrize("op", ["lock xchg *(u64 *)(r10 - 8) r2", "lock fetch_add *(u64 *)(r10 - 8) r2",
                                "lock *(u64 *)(r10 - 8) += r2", "lock cmpxchg *(u64 *)(r10 - 8) r2",
                                "lock fetch_or *(u32 *)(r10 - 8) r2"])
def test_atomic_on_spilled_pointer_refused(op):
    src = f"""
r1 = r10
*(u64 *)(r10 - 8) = r1
r2 = 0
r0 = 0
{op}
r0 = *(u64 *)(r10 - 8)
r0 = r2
exit
"""
    _refused(src, "BPF_ATOMIC on the spilled pointer")


def test_ok_atomic_on_spilled_scalar():
    _verify("""
r1 = 5
*(u64 *)(r10 - 8) = r1
r2 = 1
lock xchg *(u64 *)(r10 - 8) r2
r0 = r2
exit
""")


@pytest.mark.parametrize("helper", ["probe_read", "probe_read_kernel", "probe_read_user",
                                    "probe_read_kernel_str"])
def test_probe_read_of_spilled_pointer_refused(helper):
    src = f"""
*(u64 *)(r10 - 8) = r10
r1 = r10
r1 += -16
r2 = 8
r3 = r10
r3 += -8
call {helper}
r0 = *(u64 *)(r10 - 16)
exit
"""
    _refused(src, "reading a spilled pointer")


def test_probe_read_of_pointer_leftovers_refused():
    # a byte store over a spilled pointer leaves 7 of its bytes on the stack
    src = """
*(u64 *)(r10 - 8) = r10
*(u8 *)(r10 - 8) = 0
r1 = r10
r1 += -16
r2 = 8
r3 = r10
r3 += -8
call probe_read_kernel
r0 = 0
exit
"""
    _refused(src, "uninitialized")


def test_ok_probe_read_of_stack_data():
    _verify("""
r1 = 7
*(u64 *)(r10 - 8) = r1
r1 = r10
r1 += -16
r2 = 8
r3 = r10
r3 += -8
call probe_read_kernel
r0 = *(u64 *)(r10 - 16)
exit
""")


# ---------------------------------------------------------------- 2. iterator loops terminate

ITER_NEW = """r1 = r10
r1 += -8
r2 = 0
r3 = 10
call kfunc bpf_iter_num_new
"""
ITER_NEXT = """r1 = r10
r1 += -8
call kfunc bpf_iter_num_next
"""
ITER_DESTROY = """r1 = r10
r1 += -8
call kfunc bpf_iter_num_destroy
"""


def test_iter_new_next_destroy_forever_refused():
    # for (;;) { bpf_iter_num_new(&it, 0, 10); bpf_iter_num_next(&it); bpf_iter_num_destroy(&it); }
    _refused("loop:\n" + ITER_NEW + ITER_NEXT + ITER_DESTROY + "goto loop\n", "infinite loop detected")


def test_iter_next_ignoring_null_refused():
    # for (;;) bpf_iter_num_next(&it);  -- the drained iterator returns NULL forever
    _refused(ITER_NEW + "loop:\n" + ITER_NEXT + "goto loop\n", "infinite loop detected")


def test_iter_next_ignoring_null_with_counter_refused():
    # the loop ends only when r6 reaches 1000 ... but r6 is compared, not advanced
    src = ITER_NEW + "r6 = 0\nloop:\n" + ITER_NEXT + "if r6 > 1000 goto out\ngoto loop\nout:\n" \
        + ITER_DESTROY + "r0 = 0\nexit\n"
    _refused(src, "infinite loop detected")


def test_iter_next_result_is_read_only():
    # while ((p = bpf_iter_num_next(&it))) *p = 0;
    src = ITER_NEW + "loop:\n" + ITER_NEXT + "if r0 == 0 goto out\n*(u32 *)(r0 + 0) = 0\ngoto loop\nout:\n" \
        + ITER_DESTROY + "r0 = 0\nexit\n"
    _refused(src, "cannot write into rdonly_mem")


def test_ok_iter_loop_sums_elements():
    src = ITER_NEW + "r6 = 0\nloop:\n" + ITER_NEXT + "if r0 == 0 goto out\nr1 = *(u32 *)(r0 + 0)\n" \
        "r6 += r1\ngoto loop\nout:\n" + ITER_DESTROY + "r0 = 0\nexit\n"
    _verify(src)


def test_ok_iter_loop_with_bounded_counter():
    # bounded by the counter, not by the iterator: each trip calls next() once
    src = ITER_NEW + "r6 = 0\nloop:\n" + ITER_NEXT + "r6 += 1\nif r6 < 20 goto loop\n" \
        + ITER_DESTROY + "r0 = 0\nexit\n"
    _verify(src)


# ---------------------------------------------------------------- 3. spin locks

LOCK = "r1 = r6\ncall spin_lock\n"
UNLOCK = "r1 = r6\ncall spin_unlock\n"
LOCK_PROLOGUE = "r6 = map_value[0] ll\n"


def _lock_prog(body: str) -> str:
    return LOCK_PROLOGUE + body + "r0 = 0\nexit\n"


@pytest.mark.parametrize("body,reason", [
    (LOCK, "bpf_spin_unlock is missing"),
    (UNLOCK, "bpf_spin_unlock without taking a lock"),
    (LOCK + LOCK, "Locking two bpf_spin_locks are not allowed"),
    (LOCK + "call ktime_get_ns\n" + UNLOCK, "function calls are not allowed while holding a lock"),
    (LOCK + "r1 = r6\nr1 += 4\ncall spin_unlock\n", "bpf_spin_unlock of different lock"),
    # locked on one path only
    ("call get_prandom_u32\nif r0 == 0 goto skip\n" + LOCK + "skip:\n" + UNLOCK,
     "bpf_spin_unlock without taking a lock"),
    # unlocked on one path only
    (LOCK + "r7 = *(u32 *)(r6 + 4)\nif r7 == 0 goto skip\n" + UNLOCK + "skip:\n",
     "bpf_spin_unlock is missing"),
])
def test_spin_lock_pairing_refused(body, reason):
    _refused(_lock_prog(body), reason, maps="0=array:4:8:1")


def test_spin_lock_held_at_subprog_exit():
    # the kernel checks the lock at the main program's exit only: a subprogram may take
    # it and return, the caller unlocks ...
    src = LOCK_PROLOGUE + "r1 = r6\ncall local f\n" + UNLOCK + "r0 = 0\nexit\nf:\ncall spin_lock\nr0 = 0\nexit\n"
    _verify(src, maps="0=array:4:8:1")
    # ... but the main program may not end with it held
    src = LOCK_PROLOGUE + "r1 = r6\ncall local f\nr0 = 0\nexit\nf:\ncall spin_lock\nr0 = 0\nexit\n"
    _refused(src, "bpf_spin_unlock is missing", maps="0=array:4:8:1")


def test_static_subprogram_under_a_lock():
    # the kernel's rule since 6.10: the callee runs with the lock held ...
    f_ok = "f:\nr0 = *(u32 *)(r1 + 4)\nr0 += 1\nexit\n"
    _verify(LOCK_PROLOGUE + LOCK + "r1 = r6\ncall local f\n" + UNLOCK + "r0 = 0\nexit\n" + f_ok,
            maps="0=array:4:8:1")
    # ... and still may not call a helper, nor return with the value unchecked
    f_helper = "f:\ncall ktime_get_ns\nexit\n"
    _refused(LOCK_PROLOGUE + LOCK + "call local f\n" + UNLOCK + "r0 = 0\nexit\n" + f_helper,
             "function calls are not allowed while holding a lock", maps="0=array:4:8:1")
    # a second lock inside the callee
    f_lock = "f:\ncall spin_lock\nr0 = 0\nexit\n"
    _refused(LOCK_PROLOGUE + LOCK + "r1 = r6\ncall local f\n" + UNLOCK + "r0 = 0\nexit\n" + f_lock,
             "Locking two bpf_spin_locks are not allowed", maps="0=array:4:8:1")


def test_ok_spin_lock_pairs():
    _verify(_lock_prog(LOCK + "r7 = *(u32 *)(r6 + 4)\nr7 += 1\n*(u32 *)(r6 + 4) = r7\n" + UNLOCK),
            maps="0=array:4:8:1")
    # lock and unlock on both sides of a branch
    _verify(_lock_prog("call get_prandom_u32\nif r0 == 0 goto skip\n" + LOCK + UNLOCK + "skip:\n"),
            maps="0=array:4:8:1")


# ---------------------------------------------------------------- 7. dynptr slices

UTEST_NEW = "r1 = r10\nr1 += -8\nr2 = 0\nr3 = 10\ncall kfunc bpf_iter_utest_new\n"
UTEST_NEXT = "r1 = r10\nr1 += -8\ncall kfunc bpf_iter_utest_next\n"
UTEST_END = "done:\nr1 = r10\nr1 += -8\ncall kfunc bpf_iter_utest_destroy\nr0 = 0\nexit\n"
DYN_FROM_ITER = "r1 = r10\nr1 += -8\nr2 = r10\nr2 += -32\ncall kfunc uringbpf_test_dynptr_from_iter\n"
SLICE = "r1 = r10\nr1 += -32\nr2 = 0\nr3 = 4\ncall kfunc uringbpf_test_dynptr_slice\n" \
        "if r0 == 0 goto done\nr6 = r0\n"


def test_slice_kept_across_iterator_next_refused():
    src = UTEST_NEW + UTEST_NEXT + "if r0 == 0 goto done\n" + DYN_FROM_ITER + SLICE + UTEST_NEXT \
        + "r7 = *(u32 *)(r6 + 0)\n" + UTEST_END
    _refused(src, "R6 !read_ok", prog_type="test_loop")


def test_slice_spilled_across_iterator_next_refused():
    src = UTEST_NEW + UTEST_NEXT + "if r0 == 0 goto done\n" + DYN_FROM_ITER + SLICE \
        + "*(u64 *)(r10 - 48) = r6\n" + UTEST_NEXT + "r6 = *(u64 *)(r10 - 48)\n" \
        + "r7 = *(u32 *)(r6 + 0)\n" + UTEST_END
    _refused(src, "invalid read from stack", prog_type="test_loop")


def test_dynptr_from_iterator_gone_after_next():
    src = UTEST_NEW + UTEST_NEXT + "if r0 == 0 goto done\n" + DYN_FROM_ITER + UTEST_NEXT \
        + "r1 = r10\nr1 += -32\ncall kfunc uringbpf_test_dynptr_len\n" + UTEST_END
    _refused(src, "expected an initialized dynptr", prog_type="test_loop")


def test_slice_after_dynptr_remade_refused():
    plain = "r1 = 0\nr2 = r10\nr2 += -32\ncall kfunc uringbpf_test_dynptr_plain\n"
    src = plain + SLICE + plain + "r0 = *(u32 *)(r6 + 0)\nr0 = 0\nexit\ndone:\nr0 = 0\nexit\n"
    _refused(src, "R6 !read_ok", prog_type="test_loop")


def test_ok_slice_used_before_next():
    src = UTEST_NEW + "loop:\n" + UTEST_NEXT + "if r0 == 0 goto done\n" + DYN_FROM_ITER + SLICE \
        + "r7 = *(u32 *)(r6 + 0)\ngoto loop\n" + UTEST_END
    _verify(src, prog_type="test_loop")


def _lookup(key: int, dst: int) -> str:
    return (f"*(u32 *)(r10 - 4) = {key}\nr2 = r10\nr2 += -4\nr1 = map[0] ll\ncall map_lookup_elem\n"
            f"if r0 == 0 goto out\nr{dst} = r0\n")


def test_spin_unlock_of_another_element_refused():
    # lock element 0's lock, unlock element 1's (same offset): element 0 stays locked
    src = _lookup(0, 6) + _lookup(1, 7) + "r1 = r6\nr1 += 4\ncall spin_lock\n" \
        "r1 = r7\nr1 += 4\ncall spin_unlock\nout:\nr0 = 0\nexit\n"
    _refused(src, "bpf_spin_unlock of different lock", maps="0=array:4:8:2")


def test_spin_unlock_of_another_element_after_join_refused():
    # the two elements meet at a join: the lock held must not be pruned against another
    src = _lookup(0, 6) + _lookup(1, 7) + "r1 = r6\nr1 += 4\ncall spin_lock\n" \
        "r8 = r6\nr9 = *(u32 *)(r6 + 0)\nif r9 == 0 goto join\nr8 = r7\njoin:\n" \
        "r1 = r8\nr1 += 4\ncall spin_unlock\nout:\nr0 = 0\nexit\n"
    _refused(src, "bpf_spin_unlock of different lock", maps="0=array:4:8:2")


def test_ok_spin_lock_through_lookup_and_offset():
    src = _lookup(0, 6) + "r1 = r6\nr1 += 4\ncall spin_lock\nr1 = r6\nr1 += 4\ncall spin_unlock\n" \
        "out:\nr0 = 0\nexit\n"
    _verify(src, maps="0=array:4:8:2")


# ---------------------------------------------------------------- scalar forks (#20)

def test_scalar_fork_needs_a_real_sign_mask():
    # w0 s>>= 31 gives 0 or -1, and the AND forks; after w0 += 1 the value is 1 or 0 but
    # the register is a new one: no fork, so the access at 1 stays possible and is refused
    idx = "call get_prandom_u32\nw0 s>>= 31\n{mid}w0 &= 0x11\nif w0 == 1 goto bad\nr0 = 0\nexit\n" \
          "bad:\nr0 = *(u64 *)(r0 + 0)\nexit\n"
    _verify(idx.format(mid=""))
    _refused(idx.format(mid="w0 += 1\n"), "invalid mem access 'scalar'")
    # a shift by a register that is not a known amount below 32 makes no sign mask
    src = "call get_prandom_u32\nr6 = r0\ncall get_prandom_u32\nw6 s>>= w0\nw6 &= 0x11\n" \
          "if w6 == 1 goto bad\nr0 = 0\nexit\nbad:\nr0 = *(u64 *)(r0 + 0)\nexit\n"
    _refused(src, "invalid mem access 'scalar'")


def test_remembered_not_equal_is_per_value():
    # "r6 != 7" is remembered for r6 and its copies, never for another value in r6
    src = "call get_prandom_u32\nr6 = r0\nr7 = r6\nif r6 == 7 goto out\ncall get_prandom_u32\n" \
          "r6 = r0\nr8 = r6\nif r6 == 7 goto bad\nout:\nr0 = 0\nexit\nbad:\nr0 = *(u64 *)(r0 + 0)\nexit\n"
    _refused(src, "invalid mem access 'scalar'")
    # ... and the path that took the equal side does not know it
    src = "call get_prandom_u32\nr6 = r0\nr7 = r6\nif r6 != 7 goto out\nif r7 == 7 goto bad\n" \
          "out:\nr0 = 0\nexit\nbad:\nr0 = *(u64 *)(r0 + 0)\nexit\n"
    _refused(src, "invalid mem access 'scalar'")


def test_remembered_not_equal_moves_with_the_value_exactly():
    base = "call get_prandom_u32\nr6 = r0\nif r6 == 7 goto out\n{op}\nif r6 == {k} goto bad\n" \
           "out:\nr0 = 0\nexit\nbad:\nr0 = *(u64 *)(r0 + 0)\nexit\n"
    _verify(base.format(op="r6 += 5", k=12))
    _verify(base.format(op="r6 += -8", k=-1))
    _refused(base.format(op="r6 += 5", k=7), "invalid mem access 'scalar'")
    _refused(base.format(op="r6 += 5", k=11), "invalid mem access 'scalar'")
    # a 32-bit add is not moved (the upper half changes)
    _refused(base.format(op="w6 += 5", k=12), "invalid mem access 'scalar'")
