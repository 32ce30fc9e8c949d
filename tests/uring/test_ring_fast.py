"""Ring.fast(): the batch verbs of the compiled extension (uring/fastpath.c)."""

from __future__ import annotations

import mmap
import os
from array import array

import pytest

from uringbpf.errors import SubmissionQueueFull
from uringbpf.uring import Ring
from uringbpf.uring import uapi as u


def test_prep_nops_and_reap_return_every_user_data():
    with Ring(8, backend="kernel") as ring, ring.fast() as fp:
        assert fp.prep_nops(array("Q", [5, 6, 7]), 2) == 2       # count limits the batch
        fp.prep_nop(1 << 63)
        uds, res, fl = array("Q", bytes(64)), array("i", bytes(32)), array("I", bytes(32))
        got = 0
        while got < 3:
            got += fp.reap(memoryview(uds)[got:], memoryview(res)[got:], memoryview(fl)[got:],
                           3 - got)
        assert sorted(uds[:3]) == [5, 6, 1 << 63]
        assert list(res[:3]) == [0, 0, 0]
        assert fp.cq_ready() == 0
        assert fp.enters >= 1


def test_full_sq_raises_and_keeps_what_was_prepared():
    with Ring(4, backend="kernel") as ring, ring.fast() as fp:
        with pytest.raises(SubmissionQueueFull):
            fp.prep_nops(array("Q", range(6)))
        assert fp.sq_space_left() == 0
        assert fp.submit_and_wait(4) == 4
        out = array("Q", bytes(8 * 8))
        assert fp.reap(out) == 4
        assert list(out[:4]) == [0, 1, 2, 3]


def test_prep_rw_reads_the_file_bytes(tmp_path):
    path = tmp_path / "data"
    data = os.urandom(10000)
    path.write_bytes(data)
    buf = mmap.mmap(-1, 16384)
    import ctypes
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    fd = os.open(path, os.O_RDONLY)
    try:
        with Ring(8, backend="kernel") as ring, ring.fast() as fp:
            fp.prep_rw(u.IORING_OP_READ, fd, addr, 16384, 0, 42)
            uds, res = array("Q", [0]), array("i", [0])
            assert fp.reap(uds, res, None, 1) == 1
            assert (uds[0], res[0]) == (42, 10000)
            assert buf[:10000] == data
    finally:
        os.close(fd)
        del addr
        buf.close()


def test_for_each_cqe_calls_back_and_consumes():
    seen = []
    with Ring(8, backend="kernel") as ring, ring.fast() as fp:
        fp.prep_nops(array("Q", [3, 4]))
        fp.submit_and_wait(2)
        assert fp.for_each_cqe(lambda ud, res, flags: seen.append((ud, res))) == 2
        assert fp.cq_ready() == 0
    assert sorted(seen) == [(3, 0), (4, 0)]


def test_ring_verbs_work_again_after_the_fast_path_closes():
    with Ring(8, backend="kernel") as ring:
        with ring.fast() as fp:
            fp.prep_nop(9)
            fp.submit_and_wait(1)
            assert fp.reap(array("Q", [0])) == 1
        ring.prep_nop(10)
        assert ring.submit() == 1
        assert [c.user_data for c in ring.wait(1)] == [10]


def test_rings_the_fast_path_cannot_drive_are_refused():
    with Ring(8, backend="threads") as ring:
        with pytest.raises(ValueError):
            ring.fast()
    with Ring(8, backend="kernel") as ring:
        ring.add_sqe_filter(lambda sqe: 0)
        with pytest.raises(ValueError):
            ring.fast()


def test_bad_arguments_raise():
    with Ring(8, backend="kernel") as ring, ring.fast() as fp:
        with pytest.raises(TypeError):
            fp.reap(array("i", [0]))              # user_data needs 8-byte items
        with pytest.raises(ValueError):
            fp.prep_rw(300, 0, 0, 0, 0, 0)
        with pytest.raises(TypeError):
            fp.prep_nops()


def test_verbs_raise_once_the_ring_or_the_fast_path_is_closed():
    ring = Ring(8, backend="kernel")
    fp = ring.fast()
    ring.close()                      # ring memory is gone: no verb may touch it
    with pytest.raises(ValueError):
        fp.prep_nop(1)
    with pytest.raises(ValueError):
        fp.reap(array("Q", [0]))
    with Ring(8, backend="kernel") as ring:
        with ring.fast() as fp:
            pass
        with pytest.raises(ValueError):
            fp.submit_and_wait(0)


def test_registered_ring_fds_are_given_back():
    # the kernel's per-task table has 16 slots: without release, the 17th would not register
    for _ in range(40):
        with Ring(4, backend="kernel") as ring, ring.fast() as fp:
            assert fp.native.registered
            fp.prep_nop(1)
            assert fp.reap(array("Q", [0]), None, None, 1) == 1
