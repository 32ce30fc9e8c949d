"""A refused SQE ends the submission batch, as in the kernel (found by tests/kernel on 7.2).

io_submit_sqes() (io_uring/io_uring.c) stops at the first SQE that fails before issue —
an SQE filter's refusal is such a failure (io_submit_fail_init) — and io_uring_enter then
returns the count consumed, the refused SQE included, without waiting for CQEs. It goes
on with IORING_SETUP_SUBMIT_ALL, and when the refused SQE links on (its chain fails).
"""

import errno

from uringbpf.uring import SETUP_SUBMIT_ALL, SQE_IO_LINK

from test_hooks import REWIND, by_ud, wait_all


def deny_two(sqe):
    return -errno.EACCES if sqe.user_data == 2 else 0


def test_refused_sqe_ends_the_batch(make_ring):
    r = make_ring(8)
    r.add_sqe_filter(deny_two)
    for ud in (1, 2, 3):
        r.prep_nop(ud)
    assert r.submit() == 2
    assert by_ud(wait_all(r, 2)) == {1: 0, 2: -errno.EACCES}
    assert r.sq_ready() == 1                    # the rest stays queued
    assert r.submit() == 1
    assert by_ud(wait_all(r, 1)) == {3: 0}


def test_refused_sqe_ends_submit_and_wait_without_waiting(make_ring):
    r = make_ring(8)
    r.add_sqe_filter(deny_two)
    for ud in (2, 1):
        r.prep_nop(ud)
    assert r.submit_and_wait(2) == 1            # returns at once: only one CQE can come
    assert by_ud(wait_all(r, 1)) == {2: -errno.EACCES}
    assert r.submit_and_wait(1) == 1
    assert by_ud(wait_all(r, 1)) == {1: 0}


def test_submit_all_goes_on(make_ring):
    r = make_ring(8, flags=SETUP_SUBMIT_ALL)
    r.add_sqe_filter(deny_two)
    for ud in (1, 2, 3):
        r.prep_nop(ud)
    assert r.submit() == 3
    assert by_ud(wait_all(r, 3)) == {1: 0, 2: -errno.EACCES, 3: 0}


def test_refused_link_member_does_not_end_the_batch(make_ring):
    r = make_ring(8)
    r.add_sqe_filter(deny_two)
    r.prep_nop(2, flags=SQE_IO_LINK)
    r.prep_nop(4)
    r.prep_nop(5)
    assert r.submit() == 3
    assert by_ud(wait_all(r, 3)) == {2: -errno.EACCES, 4: -errno.ECANCELED, 5: 0}


def test_sq_rewind_drops_what_the_refusal_left(make_ring):
    r = make_ring(4, cq_entries=16, flags=REWIND)
    r.add_sqe_filter(deny_two)
    for i in range(4):
        r.prep_nop(i)
    assert r.submit() == 3                      # slot 3 is not consumed: SQ_REWIND drops it
    assert by_ud(wait_all(r, 3)) == {0: 0, 1: 0, 2: -errno.EACCES}
    assert r.sq_ready() == 0
    r.prep_nop(9)
    assert r.submit() == 1
    assert by_ud(wait_all(r, 1)) == {9: 0}
