"""ublk_drv.c / rsrc.c (6.15+) error codes of the kernel-buffer commands (issue #14, Run).

Each case is the kernel's answer to a server mistake; the comment names the kernel check."""

from __future__ import annotations

import errno

import pytest

from uringbpf.designs import kbuf as K

from test_registration import cmd, deliver, fetch, run_cmd, ud, FETCH  # noqa: E402


@pytest.fixture
def zc2():
    source = K.RequestSource(queue_depth=2, max_io_bytes=64 * 1024,
                             flags=K.UBLK_F_SUPPORT_ZERO_COPY)
    ring = K.KbufRing(32, buffers=4)
    ring.register_source(source)
    yield source, ring
    ring.close()
    source.close()


def test_commit_and_register_for_a_parked_tag_are_ebusy(zc2):
    """__ublk_ch_uring_cmd: a command for an io the server does not own ("there is
    pending io cmd, something must be wrong") is -EBUSY, before any other check."""
    source, ring = zc2
    fetch(ring, source, 0)                        # tag 0 armed, no request delivered yet
    assert run_cmd(ring, source, K.UBLK_U_IO_COMMIT_AND_FETCH_REQ, 0, result=0) == -errno.EBUSY
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, 0, addr=0) == -errno.EBUSY
    # a tag never fetched is not owned either
    assert run_cmd(ring, source, K.UBLK_U_IO_COMMIT_AND_FETCH_REQ, 1, result=0) == -errno.EBUSY


def test_fetch_once_every_tag_is_fetched_is_ebusy(zc2):
    """ublk_fetch: FETCH_REQ only while the queue is being set up (-EBUSY once ready);
    a second FETCH of one tag before that is -EINVAL (at most once per io)."""
    source, ring = zc2
    fetch(ring, source, 0)
    assert run_cmd(ring, source, K.UBLK_U_IO_FETCH_REQ, 0) == -errno.EINVAL
    fetch(ring, source, 1)                        # now every tag is fetched: queue ready
    assert run_cmd(ring, source, K.UBLK_U_IO_FETCH_REQ, 0) == -errno.EBUSY
    assert run_cmd(ring, source, K.UBLK_U_IO_FETCH_REQ, 1) == -errno.EBUSY
    # and it stays so after a request went through the tag and was committed
    req, tag = deliver(ring, source, K.UBLK_IO_OP_FLUSH, 0, 0)
    sqe = cmd(ring, source, K.UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, result=0)
    sqe.user_data = ud(FETCH, tag)
    ring.submit()
    assert req.event.wait(5) and req.result == 0
    assert run_cmd(ring, source, K.UBLK_U_IO_FETCH_REQ, tag) == -errno.EBUSY


def test_unregister_on_auto_buf_reg_device_without_zero_copy_is_einval():
    """ublk_unregister_io_buf needs UBLK_F_SUPPORT_ZERO_COPY; AUTO_BUF_REG alone is not it."""
    source = K.RequestSource(queue_depth=1, max_io_bytes=4096, flags=K.UBLK_F_AUTO_BUF_REG)
    ring = K.KbufRing(8, buffers=2)
    ring.register_source(source)
    try:
        fetch(ring, source, 0, sqe_addr=K.auto_buf_reg_to_sqe_addr(0))
        req, tag = deliver(ring, source, K.UBLK_IO_OP_WRITE, 0, b"a" * 512)
        assert ring.kbuf.nodes[0] is not None         # registered automatically at dispatch
        assert run_cmd(ring, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=0) == -errno.EINVAL
        assert ring.kbuf.nodes[0] is not None         # and still there
    finally:
        ring.close()
        source.close()


def test_register_index_is_an_unsigned_int(zc2):
    """ublk_register_io_buf(..., unsigned int index): addr (1 << 32) | 1 is slot 1."""
    source, ring = zc2
    fetch(ring, source, 0)
    req, tag = deliver(ring, source, K.UBLK_IO_OP_WRITE, 0, b"z" * 512)
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=(1 << 32) | 1) == 0
    node = ring.kbuf.nodes[1]
    assert node is not None and node.addr == req.addr and node.length == 512
    assert ring.kbuf.nodes[0] is None
    # the same truncation on UNREGISTER
    assert run_cmd(ring, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=(7 << 32) | 1) == 0
    assert ring.kbuf.nodes[1] is None
