"""A refused SQE inside a link chain fails the whole chain, as in the kernel (issue #15).

io_submit_fail_init() (io_uring/io_uring.c, 7.2) marks the refused request failed with
its own error and the chain's head with -ECANCELED, keeps assembling the chain, and
io_queue_sqe_fallback() fails all of it without issuing anything (a HARDLINK chain too):
members complete with -ECANCELED, refused ones with their own error.  The batch ends
only at a refused SQE that does not link on (and not with IORING_SETUP_SUBMIT_ALL).
Checked against the 7.2 kernel by tests/kernel (``filter_chain_*`` cases).
"""

import errno

import pytest
from hypothesis import given, settings, strategies as st

from uringbpf.uring import SETUP_SUBMIT_ALL, SQE_IO_DRAIN, SQE_IO_HARDLINK, SQE_IO_LINK, Ring

from test_hooks import by_ud, wait_all

LINKS = SQE_IO_LINK | SQE_IO_HARDLINK


def refuse_odd(sqe):
    """Refuse user_data with the low bit set (the test encodes 'refused' that way)."""
    return -errno.EACCES if sqe.user_data & 1 else 0


def kernel_model(reqs, submit_all):
    """(SQEs consumed, {user_data: res}) the kernel posts for a batch of NOPs.

    ``reqs``: (refused, sqe_flags) per SQE; user_data is 2*i + refused.
    """
    out, chain, failed = {}, [], False

    def close():
        for j in chain:
            ud = 2 * j + reqs[j][0]
            out[ud] = (-errno.EACCES if reqs[j][0] else -errno.ECANCELED) if failed else 0

    for i, (refused, flags) in enumerate(reqs):
        chain.append(i)
        failed = failed or refused
        if flags & LINKS:
            continue
        close()
        chain, failed = [], False
        if refused and not submit_all:
            return i + 1, out
    close()
    return len(reqs), out


def _run(r, reqs):
    for i, (refused, flags) in enumerate(reqs):
        r.prep_nop(2 * i + refused, flags=flags)
    return r.submit()


def test_refused_middle_member_cancels_the_head(make_ring):
    r = make_ring(8)
    r.add_sqe_filter(refuse_odd)
    assert _run(r, [(0, SQE_IO_LINK), (0, SQE_IO_LINK), (1, SQE_IO_LINK), (0, 0), (0, 0)]) == 5
    assert by_ud(wait_all(r, 5)) == {0: -errno.ECANCELED, 2: -errno.ECANCELED,
                                     5: -errno.EACCES, 6: -errno.ECANCELED, 8: 0}


def test_refused_chain_tail_ends_the_batch_after_failing_the_chain(make_ring):
    r = make_ring(8)
    r.add_sqe_filter(refuse_odd)
    assert _run(r, [(0, SQE_IO_LINK), (1, 0), (0, 0)]) == 2
    assert by_ud(wait_all(r, 2)) == {0: -errno.ECANCELED, 3: -errno.EACCES}
    assert r.sq_ready() == 1


def test_hardlink_chain_with_a_refused_member_fails_as_a_whole(make_ring):
    r = make_ring(8)
    r.add_sqe_filter(refuse_odd)
    assert _run(r, [(1, SQE_IO_HARDLINK), (0, SQE_IO_HARDLINK), (0, 0)]) == 3
    assert by_ud(wait_all(r, 3)) == {1: -errno.EACCES, 2: -errno.ECANCELED, 4: -errno.ECANCELED}


def test_second_refused_member_keeps_its_own_error(make_ring):
    r = make_ring(8)
    r.add_sqe_filter(refuse_odd)
    assert _run(r, [(0, SQE_IO_LINK), (1, SQE_IO_LINK), (0, SQE_IO_LINK), (1, 0)]) == 4
    assert by_ud(wait_all(r, 4)) == {0: -errno.ECANCELED, 3: -errno.EACCES,
                                     4: -errno.ECANCELED, 7: -errno.EACCES}


def test_drain_flag_survives_the_rewrite(make_ring):
    r = make_ring(8)
    r.add_sqe_filter(refuse_odd)
    assert _run(r, [(0, SQE_IO_LINK | SQE_IO_DRAIN), (1, 0)]) == 2
    assert by_ud(wait_all(r, 2)) == {0: -errno.ECANCELED, 3: -errno.EACCES}


kind = st.sampled_from([0, 0, SQE_IO_LINK, SQE_IO_HARDLINK])
req = st.tuples(st.sampled_from([0, 0, 1]), kind)


@pytest.mark.parametrize("backend_name", ["kernel", "threads"])
@pytest.mark.parametrize("submit_all", [False, True])
@settings(max_examples=30, deadline=None)
@given(reqs=st.lists(req, min_size=1, max_size=10))
def test_filtered_chains_match_the_kernel_model(backend_name, submit_all, reqs):
    r = Ring(16, flags=SETUP_SUBMIT_ALL if submit_all else 0, backend=backend_name)
    try:
        r.add_sqe_filter(refuse_odd)
        consumed, expect = kernel_model(reqs, submit_all)
        assert _run(r, reqs) == consumed
        assert by_ud(wait_all(r, len(expect))) == expect
        assert r.sq_ready() == len(reqs) - consumed
    finally:
        r.close()
