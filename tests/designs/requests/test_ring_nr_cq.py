"""`RequestsRing(..., nr_cq=, cq_sizes=)` is the BPF-requests ring (2021 RFC multi-CQ); the
base `uringbpf.Ring` knows no design and takes no `nr_cq` (issue #12)."""

import pytest

from uringbpf import Ring
from uringbpf.designs import requests
from uringbpf.designs.requests import RequestsRing


def test_plain_ring_stays_plain_and_refuses_nr_cq():
    with Ring(8) as ring:
        assert type(ring) is Ring and not hasattr(ring, "cq")
    with pytest.raises(TypeError):
        Ring(8, nr_cq=2, cq_sizes=[8, 16])


def test_nr_cq_gives_extra_completion_queues_with_a_nop_routed_by_cq_idx():
    with RequestsRing(8, nr_cq=2, cq_sizes=[8, 16]) as ring:
        assert isinstance(ring, Ring) and requests.Ring is RequestsRing
        sqe = ring.prep_nop(user_data=7)
        requests.set_cq_idx(sqe, 1)
        ring.submit()
        cqe = ring.wait_cqe(cq_idx=1, timeout=5)
        assert (cqe.user_data, cqe.res) == (7, 0)
        assert ring.peek_cqe() is None  # nothing reached CQ 0


def test_bad_cq_sizes_are_refused():
    with pytest.raises((ValueError, OSError)):
        RequestsRing(8, nr_cq=2, cq_sizes=[8])


def test_ring_by_fd_finds_open_rings_only(tmp_path):
    import errno
    ring = Ring(4)
    assert Ring.by_fd(ring.fd) is ring
    fd = ring.fd
    ring.close()
    with pytest.raises(OSError) as info:
        Ring.by_fd(fd)
    assert info.value.errno in (errno.EBADF, errno.EOPNOTSUPP)
    with open(tmp_path / "f", "w") as f:
        with pytest.raises(OSError) as info:
            Ring.by_fd(f.fileno())
        assert info.value.errno == errno.EOPNOTSUPP
