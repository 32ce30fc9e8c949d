"""`uringbpf.Ring(..., nr_cq=, cq_sizes=)` builds the BPF-requests ring (2021 RFC multi-CQ)."""

import pytest

from uringbpf import Ring
from uringbpf.designs import requests


def test_plain_ring_stays_plain():
    with Ring(8) as ring:
        assert type(ring).__name__ == "Ring" and not hasattr(ring, "cq")


def test_nr_cq_gives_extra_completion_queues_with_a_nop_routed_by_cq_idx():
    with Ring(8, nr_cq=2, cq_sizes=[8, 16]) as ring:
        assert isinstance(ring, requests.Ring.__mro__[0])
        sqe = ring.prep_nop(user_data=7)
        requests.set_cq_idx(sqe, 1)
        ring.submit()
        cqe = ring.wait_cqe(cq_idx=1, timeout=5)
        assert (cqe.user_data, cqe.res) == (7, 0)
        assert ring.peek_cqe() is None  # nothing reached CQ 0


def test_bad_cq_sizes_are_refused():
    with pytest.raises((ValueError, OSError)):
        Ring(8, nr_cq=2, cq_sizes=[8])
