"""Registration semantics of kernel buffers (6.15 ublk zero copy) on the real kernel ring."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from uringbpf.designs import kbuf as K
from uringbpf.uring import uapi as u

FETCH, DATA, REG, UNREG = 1, 2, 3, 4


def ud(kind, tag, i=0):
    return kind << 56 | tag << 16 | i


@pytest.fixture(params=["region", "request"])
def zc(request):
    source = K.RequestSource(queue_depth=4, max_io_bytes=64 * 1024,
                             flags=K.UBLK_F_SUPPORT_ZERO_COPY, pin=request.param)
    ring = K.KbufRing(32, buffers=4)
    ring.register_source(source)
    yield source, ring
    ring.close()
    source.close()


def cmd(ring, source, op, tag, **kw):
    sqe = ring.get_sqe()
    K.prep_ublk_cmd(sqe, source.char_fd, op, tag, **kw)
    return sqe


def fetch(ring, source, tag, **kw):
    sqe = cmd(ring, source, K.UBLK_U_IO_FETCH_REQ, tag, **kw)
    sqe.user_data = ud(FETCH, tag)
    ring.submit()


def run_cmd(ring, source, op, tag, **kw):
    """Submit one command and return its CQE result."""
    sqe = cmd(ring, source, op, tag, **kw)
    sqe.user_data = ud(REG, tag, 7)
    c = ring.wait_cqe(timeout=5)
    assert c is not None and c.user_data == ud(REG, tag, 7)
    return c.res


def deliver(ring, source, op, offset, data_or_len):
    """Queue one block request and return (request, tag) once the fetch CQE arrived."""
    length = data_or_len if isinstance(data_or_len, int) else len(data_or_len)
    req = source.alloc_request(op, offset, length)
    if op == K.UBLK_IO_OP_WRITE:
        req.view()[:] = data_or_len
    source.queue_rq(req)
    c = ring.wait_cqe(timeout=5)
    assert c is not None and c.user_data >> 56 == FETCH and c.res == 0
    tag = (c.user_data >> 16) & 0xFFFF
    desc = source.descs[tag]
    assert desc.op_flags & 0xFF == op and desc.nr_sectors * 512 == length
    assert desc.start_sector * 512 == offset
    return req, tag


def test_register_index_out_of_range_einval(zc):
    source, ring = zc
    fetch(ring, source, 0)
    req, tag = deliver(ring, source, K.UBLK_IO_OP_WRITE, 0, b"x" * 512)
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=4) == -errno.EINVAL
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=70000) == -errno.EINVAL
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=3) == 0


def test_register_occupied_slot_ebusy(zc):
    source, ring = zc
    fetch(ring, source, 0)
    fetch(ring, source, 1)
    _, t0 = deliver(ring, source, K.UBLK_IO_OP_WRITE, 0, b"a" * 512)
    _, t1 = deliver(ring, source, K.UBLK_IO_OP_WRITE, 512, b"b" * 512)
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, t0, addr=2) == 0
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, t1, addr=2) == -errno.EBUSY
    # a user buffer in the slot is just as occupied
    assert ring.kbuf.register_user(1, bytearray(4096)) == 0
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, t1, addr=1) == -errno.EBUSY


def test_unregister_errors(zc):
    source, ring = zc
    fetch(ring, source, 0)
    _, tag = deliver(ring, source, K.UBLK_IO_OP_READ, 0, 4096)
    assert run_cmd(ring, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=0) == -errno.EINVAL
    assert run_cmd(ring, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=9) == -errno.EINVAL
    assert ring.kbuf.register_user(1, bytearray(4096)) == 0
    assert run_cmd(ring, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=1) == -errno.EBUSY
    assert ring.kbuf.lookup(1)[2] == K.KBUF_DIR_BOTH      # still there
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=0) == 0
    assert run_cmd(ring, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=0) == 0
    assert run_cmd(ring, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=0) == -errno.EINVAL
    # the slot is empty again: a fixed op on it fails like on any empty slot
    r, w = os.pipe()
    try:
        assert _op(ring, lambda s: K.prep_read_fixed(s, r, 0, 512, 0, 0), 77) == -errno.EFAULT
        assert _op(ring, lambda s: K.prep_read_fixed(s, r, 0, 512, 0, 2), 78) == -errno.EFAULT
    finally:
        os.close(r)
        os.close(w)


def test_register_needs_owned_request_with_data_and_zero_copy(zc, tmp_path):
    source, ring = zc
    # a tag the server has not received back: ublk's "pending io cmd" check, -EBUSY
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, 0, addr=0) == -errno.EBUSY
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, 9, addr=0) == -errno.EINVAL
    fetch(ring, source, 0)
    _, tag = deliver(ring, source, K.UBLK_IO_OP_FLUSH, 0, 0)
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=0) == -errno.EINVAL
    # a copy-mode device has no zero copy (the ownership check comes first: -EBUSY)
    copy_src = K.RequestSource(queue_depth=2, max_io_bytes=4096)
    ring.register_source(copy_src)
    try:
        assert run_cmd(ring, copy_src, K.UBLK_U_IO_REGISTER_IO_BUF, 0, addr=0) == -errno.EBUSY
    finally:
        copy_src.close()


def _file(tmp_path, data=b""):
    path = tmp_path / "f"
    path.write_bytes(data)
    return os.open(path, os.O_RDWR)


def _op(ring, sqe_fn, user_data):
    sqe = ring.get_sqe()
    sqe_fn(sqe)
    sqe.user_data = user_data
    c = ring.wait_cqe(timeout=5)
    assert c.user_data == user_data
    return c.res


def test_direction_rules_and_offsets(zc, tmp_path):
    source, ring = zc
    fd = _file(tmp_path, bytes(range(256)) * 16)
    try:
        fetch(ring, source, 0)
        payload = os.urandom(2048)
        req, tag = deliver(ring, source, K.UBLK_IO_OP_WRITE, 0, payload)
        assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=2) == 0
        addr, length, direction = K.kbuf_table(ring).lookup(2)
        assert (length, direction) == (2048, K.KBUF_DIR_SOURCE) and addr == req.addr
        # a WRITE request's pages are only a source: reading into them is -EFAULT
        assert _op(ring, lambda s: K.prep_read_fixed(s, fd, 0, 512, 0, 2), 1) == -errno.EFAULT

        def fixed_file_read(s):          # the refusal wins over the (unregistered) file
            K.prep_read_fixed(s, 0, 0, 512, 0, 2)
            s.flags = u.IOSQE_FIXED_FILE
        assert _op(ring, fixed_file_read, 11) == -errno.EFAULT
        # sqe->addr is an offset: 512 bytes from offset 1024 of the request
        assert _op(ring, lambda s: K.prep_write_fixed(s, fd, 1024, 512, 100, 2), 2) == 512
        assert os.pread(fd, 512, 100) == payload[1024:1536]
        # past the end, or a real address, is -EFAULT
        assert _op(ring, lambda s: K.prep_write_fixed(s, fd, 1600, 512, 0, 2), 3) == -errno.EFAULT
        assert _op(ring, lambda s: K.prep_write_fixed(s, fd, req.addr, 16, 0, 2), 4) \
            == -errno.EFAULT
        # vectored: each iov_base is an offset too
        iov = (u.Iovec * 2)(u.Iovec(0, 512), u.Iovec(1536, 512))
        assert _op(ring, lambda s: K.prep_rwv_fixed(s, True, fd, ctypes.addressof(iov), 2,
                                                    3000, 2), 5) == 1024
        assert os.pread(fd, 1024, 3000) == payload[:512] + payload[1536:]
        bad = (u.Iovec * 1)(u.Iovec(2000, 512))
        assert _op(ring, lambda s: K.prep_rwv_fixed(s, True, fd, ctypes.addressof(bad), 1,
                                                    0, 2), 6) == -errno.EFAULT
        assert _op(ring, lambda s: K.prep_rwv_fixed(s, False, fd, ctypes.addressof(iov), 2,
                                                    0, 2), 7) == -errno.EFAULT
        assert run_cmd(ring, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=2) == 0

        # a READ request's pages are only a destination
        fetch(ring, source, 1)
        req2, tag2 = deliver(ring, source, K.UBLK_IO_OP_READ, 4096, 1024)
        assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag2, addr=0) == 0
        assert K.kbuf_table(ring).lookup(0)[2] == K.KBUF_DIR_DEST
        assert _op(ring, lambda s: K.prep_write_fixed(s, fd, 0, 512, 0, 0), 8) == -errno.EFAULT
        assert _op(ring, lambda s: K.prep_read_fixed(s, fd, 0, 1024, 0, 0), 9) == 1024
        assert bytes(req2.view()) == os.pread(fd, 1024, 0)
    finally:
        os.close(fd)


def test_inflight_reference_keeps_buffer_alive(zc):
    source, ring = zc
    r, w = os.pipe()
    try:
        fetch(ring, source, 0)
        req, tag = deliver(ring, source, K.UBLK_IO_OP_READ, 0, 4096)
        assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=1) == 0
        sqe = ring.get_sqe()
        K.prep_read_fixed(sqe, r, 0, 4096, 0, 1)          # blocks: the pipe is empty
        sqe.user_data = 42
        ring.submit()
        assert run_cmd(ring, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=1) == 0
        assert ring.kbuf.lookup(1) is None
        # commit: the request still has the in-flight reference, so it does not complete
        sqe = cmd(ring, source, K.UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, result=4096)
        sqe.user_data = ud(FETCH, tag)
        ring.submit()
        assert ring.peek_cqe() is None
        assert not req.done and req.committed
        os.write(w, b"z" * 4096)
        c = ring.wait_cqe(timeout=5)
        assert (c.user_data, c.res) == (42, 4096)
        assert req.done and req.result == 4096
        assert bytes(req.view()) == b"z" * 4096
    finally:
        os.close(r)
        os.close(w)


def test_completion_needs_commit_and_unregister(zc, tmp_path):
    source, ring = zc
    fetch(ring, source, 0)
    req, tag = deliver(ring, source, K.UBLK_IO_OP_WRITE, 0, b"q" * 512)
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=0) == 0
    sqe = cmd(ring, source, K.UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, result=512)
    sqe.user_data = ud(FETCH, tag)
    ring.submit()
    assert not req.done                 # committed, but the table still holds the buffer
    assert run_cmd(ring, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=0) == 0
    assert req.done and req.result == 512
    # a commit for a tag the server does not own is refused (-EBUSY, as ublk_drv)
    assert run_cmd(ring, source, K.UBLK_U_IO_COMMIT_AND_FETCH_REQ, 1, result=0) == -errno.EBUSY
    # fetching an already armed tag is refused, and so is a buffer address on a zc device
    assert run_cmd(ring, source, K.UBLK_U_IO_FETCH_REQ, tag) == -errno.EINVAL
    assert run_cmd(ring, source, K.UBLK_U_IO_FETCH_REQ, 1, addr=4096) == -errno.EINVAL


def test_linked_register_io_unregister_chain(zc, tmp_path):
    source, ring = zc
    fd = _file(tmp_path, bytes(8192))
    try:
        fetch(ring, source, 0)
        payload = os.urandom(4096)
        req, tag = deliver(ring, source, K.UBLK_IO_OP_WRITE, 0, payload)
        s1 = cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=3)
        s1.flags = u.IOSQE_CQE_SKIP_SUCCESS | u.IOSQE_IO_HARDLINK
        s1.user_data = ud(REG, tag)
        s2 = ring.get_sqe()
        K.prep_write_fixed(s2, fd, 0, 4096, 4096, 3)
        s2.flags = u.IOSQE_IO_HARDLINK
        s2.user_data = ud(DATA, tag)
        s3 = cmd(ring, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=3)
        s3.user_data = ud(UNREG, tag)
        ring.submit()
        got = [ring.wait_cqe(timeout=5) for _ in range(2)]
        assert [(c.user_data, c.res) for c in got] == [(ud(DATA, tag), 4096), (ud(UNREG, tag), 0)]
        assert ring.peek_cqe() is None      # the register CQE was skipped
        assert os.pread(fd, 4096, 4096) == payload
        assert ring.kbuf.lookup(3) is None
        # a failing register (occupied) cancels a soft-linked data op, and says so
        assert ring.kbuf.register_user(3, bytearray(4096)) == 0
        s1 = cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=3)
        s1.flags = u.IOSQE_CQE_SKIP_SUCCESS | u.IOSQE_IO_LINK
        s1.user_data = ud(REG, tag)
        s2 = ring.get_sqe()
        K.prep_write_fixed(s2, fd, 0, 4096, 0, 3)
        s2.user_data = ud(DATA, tag)
        ring.submit()
        c = ring.wait_cqe(timeout=5)
        assert (c.user_data, c.res) == (ud(REG, tag), -errno.EBUSY)
        # the kernel also skips the CQEs of links cancelled behind a CQE_SKIP_SUCCESS head
        assert ring.wait_cqe(timeout=0.2) is None
    finally:
        os.close(fd)


def test_auto_buf_reg(tmp_path):
    source = K.RequestSource(queue_depth=2, max_io_bytes=8192, flags=K.UBLK_F_AUTO_BUF_REG)
    ring = K.KbufRing(16, buffers=2)
    ring.register_source(source)
    fd = _file(tmp_path, bytes(8192))
    try:
        # reserved bits must be zero
        assert run_cmd(ring, source, K.UBLK_U_IO_FETCH_REQ, 0,
                       sqe_addr=K.auto_buf_reg_to_sqe_addr(0, reserved1=1)) == -errno.EINVAL
        assert run_cmd(ring, source, K.UBLK_U_IO_FETCH_REQ, 0,
                       sqe_addr=K.auto_buf_reg_to_sqe_addr(0, flags=0x80)) == -errno.EINVAL
        fetch(ring, source, 0, sqe_addr=K.auto_buf_reg_to_sqe_addr(1))
        payload = os.urandom(4096)
        req, tag = deliver(ring, source, K.UBLK_IO_OP_WRITE, 0, payload)
        assert ring.kbuf.lookup(1) == (req.addr, 4096, K.KBUF_DIR_SOURCE)   # before the CQE
        assert _op(ring, lambda s: K.prep_write_fixed(s, fd, 0, 4096, 0, 1), 5) == 4096
        assert os.pread(fd, 4096, 0) == payload
        sqe = cmd(ring, source, K.UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, result=4096,
                  sqe_addr=K.auto_buf_reg_to_sqe_addr(1))
        sqe.user_data = ud(FETCH, tag)
        ring.submit()
        assert req.done and req.result == 4096 and ring.kbuf.lookup(1) is None

        # fallback: the slot is taken, so the fetch completes with NEED_REG_BUF
        assert ring.kbuf.register_user(0, bytearray(512)) == 0
        fetch(ring, source, 1, sqe_addr=K.auto_buf_reg_to_sqe_addr(
            0, K.UBLK_AUTO_BUF_REG_FALLBACK))
        # tag 0 is parked with index 1 (free); take it first so tag 1 gets the next request
        r1, t1 = deliver(ring, source, K.UBLK_IO_OP_READ, 0, 512)
        r2, t2 = deliver(ring, source, K.UBLK_IO_OP_READ, 512, 512)
        assert {t1, t2} == {0, 1}
        fallback_tag = 1
        flags = source.descs[fallback_tag].op_flags
        assert flags & K.UBLK_IO_F_NEED_REG_BUF
        assert not source.descs[1 - fallback_tag].op_flags & K.UBLK_IO_F_NEED_REG_BUF
    finally:
        os.close(fd)
        ring.close()
        source.close()


def test_auto_buf_reg_without_fallback_fails_request_silently():
    source = K.RequestSource(queue_depth=1, max_io_bytes=4096, flags=K.UBLK_F_AUTO_BUF_REG)
    ring = K.KbufRing(8, buffers=2)
    ring.register_source(source)
    try:
        assert ring.kbuf.register_user(0, bytearray(512)) == 0
        fetch(ring, source, 0, sqe_addr=K.auto_buf_reg_to_sqe_addr(0))
        res, _ = source.submit(K.UBLK_IO_OP_READ, 0, 512, timeout=5)
        assert res == -errno.EIO
        assert ring.wait_cqe(timeout=0.2) is None         # the fetch was not completed
        assert ring.kbuf.unregister_user(0) == 0
        req = source.alloc_request(K.UBLK_IO_OP_READ, 0, 512)
        source.queue_rq(req)                               # the same parked fetch serves it
        c = ring.wait_cqe(timeout=5)
        assert c.res == 0 and ring.kbuf.lookup(0)[1] == 512
    finally:
        ring.close()
        source.close()


def test_close_releases_everything_and_fails_outstanding(zc):
    source, ring = zc
    fetch(ring, source, 0)
    fetch(ring, source, 1)
    owned, tag = deliver(ring, source, K.UBLK_IO_OP_WRITE, 0, b"w" * 512)
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=0) == 0
    committed, tag2 = deliver(ring, source, K.UBLK_IO_OP_WRITE, 512, b"v" * 512)
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag2, addr=1) == 0
    sqe = cmd(ring, source, K.UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag2, result=512)
    sqe.user_data = ud(FETCH, tag2)
    ring.submit()
    assert not committed.done
    ring.close()
    assert committed.done and committed.result == 512     # acknowledged work is kept
    assert owned.done and owned.result == -errno.EIO       # outstanding work fails
    assert source.dead
    res, _ = source.submit(K.UBLK_IO_OP_READ, 0, 512, timeout=5)
    assert res == -errno.EIO


def test_copy_mode_copies_between_pages_and_server_buffer():
    source = K.RequestSource(queue_depth=1, max_io_bytes=4096)
    ring = K.KbufRing(8, buffers=0)
    ring.register_source(source)
    buf = ctypes.create_string_buffer(4096)
    try:
        assert run_cmd(ring, source, K.UBLK_U_IO_FETCH_REQ, 0) == -errno.EINVAL  # no buffer
        fetch(ring, source, 0, addr=ctypes.addressof(buf))
        payload = os.urandom(1024)
        req, tag = deliver(ring, source, K.UBLK_IO_OP_WRITE, 0, payload)
        assert source.descs[tag].addr == ctypes.addressof(buf)
        assert buf.raw[:1024] == payload
        sqe = cmd(ring, source, K.UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, result=1024,
                  addr=ctypes.addressof(buf))
        sqe.user_data = ud(FETCH, tag)
        ring.submit()
        assert req.done and req.result == 1024
        req2, tag = deliver(ring, source, K.UBLK_IO_OP_READ, 0, 512)
        ctypes.memmove(buf, b"R" * 512, 512)
        sqe = cmd(ring, source, K.UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, result=512,
                  addr=ctypes.addressof(buf))
        sqe.user_data = ud(FETCH, tag)
        ring.submit()
        assert req2.done and bytes(req2.view()) == b"R" * 512
    finally:
        ring.close()
        source.close()


def test_stop_aborts_parked_fetches(zc):
    source, ring = zc
    fetch(ring, source, 0)
    fetch(ring, source, 2)
    source.stop()
    got = sorted((c.user_data, c.res) for c in (ring.wait_cqe(timeout=5) for _ in range(2)))
    assert got == [(ud(FETCH, 0), -errno.ENODEV), (ud(FETCH, 2), -errno.ENODEV)]
    assert ring.wait_cqe(timeout=0.1) is None
    assert run_cmd(ring, source, K.UBLK_U_IO_FETCH_REQ, 1) == -errno.ENODEV


def test_bad_table_sizes():
    with pytest.raises(ValueError):
        K.KbufRing(8, buffers=(1 << 14) + 1)
    ring = K.KbufRing(8, buffers=0)
    try:
        assert ring.kbuf.register_kbuf(0, 0, 0, K.KBUF_DIR_DEST) == -errno.EINVAL
        with pytest.raises(LookupError):
            K.kbuf_table(object())
    finally:
        ring.close()


def test_crc32c_known_vector():
    assert K.crc32c_bytes(b"123456789") == 0xE3069283
    assert K.crc32c_bytes(b"") == 0
    assert K.crc32c_bytes(b"6789", K.crc32c_bytes(b"12345")) == 0xE3069283


def test_attach_table_on_the_general_ring(tmp_path):
    """Other designs' rings: the same offset/direction rules through an SQE filter."""
    from uringbpf.uring.ring import Ring
    import mmap
    fd = _file(tmp_path, bytes(8192))
    pages = mmap.mmap(-1, 8192)
    pages[:] = os.urandom(8192)
    base = ctypes.addressof(ctypes.c_char.from_buffer(pages))
    with Ring(16) as ring:
        table = K.attach_table(ring, 2)
        assert K.kbuf_table(ring) is table
        assert table.register_kbuf(1, base, 8192, K.KBUF_DIR_SOURCE) == 0
        assert table.register_kbuf(1, base, 8192, K.KBUF_DIR_SOURCE) == -errno.EBUSY
        assert table.register_kbuf(2, base, 8192, K.KBUF_DIR_SOURCE) == -errno.EINVAL

        def run(fn, user_data):
            sqe = ring.get_sqe()
            fn(sqe)
            sqe.user_data = user_data
            ring.submit()
            c = ring.wait_cqe(timeout=5)
            assert c.user_data == user_data
            res = c.res
            ring.cqe_seen(c)
            return res

        assert run(lambda s: K.prep_write_fixed(s, fd, 4096, 1024, 0, 1), 1) == 1024
        assert os.pread(fd, 1024, 0) == pages[4096:5120]
        assert run(lambda s: K.prep_read_fixed(s, fd, 0, 512, 0, 1), 2) == -errno.EFAULT
        assert run(lambda s: K.prep_write_fixed(s, fd, 8000, 512, 0, 1), 3) == -errno.EFAULT
        iov = (u.Iovec * 2)(u.Iovec(0, 512), u.Iovec(7680, 512))
        assert run(lambda s: K.prep_rwv_fixed(s, True, fd, ctypes.addressof(iov), 2, 2048, 1),
                   4) == 1024
        assert os.pread(fd, 1024, 2048) == pages[:512] + pages[7680:]
        assert table.unregister_kbuf(1) == 0 and table.lookup(1) is None
    os.close(fd)


def _kfunc_prog(name):
    from uringbpf.bpf import isa
    I = isa.Insn
    insns = [I(0x7A, dst=10, off=-16, imm=0x11223344),   # *(u64 *)(r10 - 16) = ...
             I(0x7A, dst=10, off=-8, imm=0x55667788),    # *(u64 *)(r10 - 8) = ...
             I(0xB7, dst=3, imm=8),                 # r3 = offset 8
             I(0xBF, dst=4, src=10),                # r4 = r10
             I(0x07, dst=4, imm=-16),               # r4 -= 16
             I(0xB7, dst=5, imm=16),                # r5 = 16
             I(0x85, src=isa.PSEUDO_KFUNC_CALL, imm=0),
             I(0x55, dst=0, off=1, imm=0),          # if r0 != 0 goto exit
             I(0x79, dst=0, src=10, off=-16),       # r0 = *(u64 *)(r10 - 16)
             I(0x95)]
    return isa.Program("kbuf_" + name, insns, kfuncs=[name])


def _engine(name, program):
    from uringbpf.bpf.helpers import Runtime
    if name == "interp":
        from uringbpf.bpf.interp import Interpreter
        return Interpreter(program, Runtime()).run
    from uringbpf.bpf import jit
    rt = Runtime()
    fn = jit.compile(program, rt)
    return lambda *a: fn(*a)


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_programs_read_kernel_buffers_through_kfuncs(zc, engine):
    """A BPF program reads/writes a request's pages by (ring fd, index, offset)."""
    source, ring = zc
    fetch(ring, source, 0)
    fetch(ring, source, 1)
    payload = os.urandom(4096)
    _, wtag = deliver(ring, source, K.UBLK_IO_OP_WRITE, 0, payload)
    rreq, rtag = deliver(ring, source, K.UBLK_IO_OP_READ, 0, 4096)
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, wtag, addr=1) == 0
    assert run_cmd(ring, source, K.UBLK_U_IO_REGISTER_IO_BUF, rtag, addr=2) == 0
    read = _engine(engine, _kfunc_prog("bpf_kbuf_read"))
    assert read(ring.fd, 1) == int.from_bytes(payload[8:16], "little")   # overwrote stack
    m64 = (1 << 64) - 1
    assert read(ring.fd, 2) == -errno.EFAULT & m64      # a READ's pages are not a source
    assert read(ring.fd, 0) == -errno.EFAULT & m64      # empty slot
    assert read(ring.fd + 1000, 1) == -errno.EBADF & m64
    # the program writes 16 bytes of its stack into the READ request's pages at offset 8
    write = _engine(engine, _kfunc_prog("bpf_kbuf_write"))
    assert write(ring.fd, 2) == 0x11223344               # success: r0 = the stack word
    assert write(ring.fd, 1) == -errno.EFAULT & m64     # a WRITE's pages are not a dest
    view = rreq.view()
    assert bytes(view[8:24]) == (0x11223344).to_bytes(8, "little") + \
        (0x55667788).to_bytes(8, "little")
    del view


def test_table_matches_a_model_under_random_operations():
    """Random register/unregister/user/import sequences against a dictionary model."""
    import mmap
    import random as _random
    region = mmap.mmap(-1, 1 << 20)
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    users = [bytearray(4096) for _ in range(3)]
    for pin_mode in ("exact", "region"):
        ring = K.KbufRing(8, buffers=6)
        table = ring.kbuf
        released = []
        model: dict[int, tuple] = {}    # index -> ("k", addr, len, dir) | ("u",)
        rnd = _random.Random(pin_mode)
        try:
            for step in range(400):
                index = rnd.randrange(-1, 8)
                action = rnd.choice(["reg", "reg", "unreg", "user", "unuser", "import"])
                if action == "reg":
                    addr = base + rnd.randrange(0, 200) * 4096
                    length = rnd.randrange(1, 8) * 512
                    direction = rnd.choice([K.KBUF_DIR_DEST, K.KBUF_DIR_SOURCE])
                    pin = (base, 1 << 20) if pin_mode == "region" else None
                    got = table.register_kbuf(index, addr, length, direction,
                                              lambda s=step: released.append(s), None, pin)
                    want = -errno.EINVAL if not 0 <= index < 6 else \
                        -errno.EBUSY if index in model else 0
                    if want == 0:
                        model[index] = ("k", addr, length, direction, step)
                elif action == "unreg":
                    got = table.unregister_kbuf(index)
                    want = -errno.EINVAL if not 0 <= index < 6 or index not in model else \
                        -errno.EBUSY if model[index][0] == "u" else 0
                    if want == 0:        # no op holds a reference: released at once
                        assert model.pop(index)[4] in released
                elif action == "user":
                    if not 0 <= index < 6:
                        assert table.register_user(index, rnd.choice(users)) == -errno.EINVAL
                        continue
                    got = table.register_user(index, rnd.choice(users))
                    want = -errno.EBUSY if index in model and model[index][0] == "k" else 0
                    if want == 0:
                        model[index] = ("u",)
                elif action == "unuser":
                    got = table.unregister_user(index)
                    want = -errno.EINVAL if not 0 <= index < 6 or index not in model else \
                        -errno.EBUSY if model[index][0] == "k" else 0
                    if want == 0:
                        model.pop(index)
                else:
                    ddir = rnd.choice([K.KBUF_DIR_DEST, K.KBUF_DIR_SOURCE])
                    off, n = rnd.randrange(0, 4096), rnd.randrange(0, 2048)
                    node, got = table.import_fixed(index, off, n, ddir)
                    entry = model.get(index)
                    ok = entry is not None and entry[0] == "k" and off + n <= entry[2] \
                        and entry[3] & ddir
                    if ok:
                        assert node is not None and got == entry[1] + off
                        table.put(node)
                        continue
                    want = -errno.EFAULT
                    if entry is not None and entry[0] == "u" and off + n <= 4096:
                        # user buffers go to the kernel untouched; import is for kbufs only
                        if node is not None:
                            table.put(node)
                        continue
                    assert node is None
                assert got == want, (step, action, index, got, want)
                for i in range(6):
                    e = model.get(i)
                    looked = table.lookup(i)
                    if e is None:
                        assert looked is None
                    elif e[0] == "k":
                        assert looked == (e[1], e[2], e[3])
                    # the kernel's slot holds something exactly when a fixed op must be
                    # checked by us (kernel buffer or stale region pin) or is a user buffer
                    assert table.needs_import(i) == (e is not None and e[0] == "k"
                                                     or e is None and table.pinned[i] is not None)
        finally:
            ring.close()
        # teardown released every kernel buffer still registered
        assert sorted(released) == sorted(set(released))
        assert all(e[0] == "u" or e[4] in released for e in model.values())


def test_request_completes_only_when_unregistered_from_every_ring(zc):
    """REGISTER_IO_BUF into two rings; the request completes after the last unregister."""
    source, ring_a = zc
    ring_b = K.KbufRing(16, buffers=4)
    ring_b.register_source(source)
    try:
        fetch(ring_a, source, 0)
        req, tag = deliver(ring_a, source, K.UBLK_IO_OP_WRITE, 0, b"m" * 1024)
        assert run_cmd(ring_a, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=0) == 0
        assert run_cmd(ring_b, source, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=3) == 0
        assert ring_b.kbuf.lookup(3) == (req.addr, 1024, K.KBUF_DIR_SOURCE)
        sqe = cmd(ring_b, source, K.UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, result=1024)
        sqe.user_data = ud(FETCH, tag)
        ring_b.submit()                      # committed from the other ring
        assert req.committed and not req.done
        assert run_cmd(ring_a, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=0) == 0
        assert not req.done                  # ring B still holds it
        assert run_cmd(ring_b, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=3) == 0
        assert req.done and req.result == 1024
        # the tag is now armed on ring B: its next request arrives there
        req2 = source.alloc_request(K.UBLK_IO_OP_READ, 0, 512)
        source.queue_rq(req2)
        c = ring_b.wait_cqe(timeout=5)
        assert (c.user_data, c.res) == (ud(FETCH, tag), 0)
    finally:
        ring_b.close()


def test_auto_buf_reg_commit_on_another_ring_needs_manual_unregister():
    source = K.RequestSource(queue_depth=1, max_io_bytes=4096,
                             flags=K.UBLK_F_AUTO_BUF_REG | K.UBLK_F_SUPPORT_ZERO_COPY)
    ring_a, ring_b = K.KbufRing(8, buffers=2), K.KbufRing(8, buffers=2)
    ring_a.register_source(source)
    ring_b.register_source(source)
    try:
        fetch(ring_a, source, 0, sqe_addr=K.auto_buf_reg_to_sqe_addr(1))
        req, tag = deliver(ring_a, source, K.UBLK_IO_OP_WRITE, 0, b"a" * 512)
        assert ring_a.kbuf.lookup(1) is not None
        sqe = cmd(ring_b, source, K.UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, result=512,
                  sqe_addr=K.auto_buf_reg_to_sqe_addr(0))
        sqe.user_data = ud(FETCH, tag)
        ring_b.submit()
        assert not req.done and ring_a.kbuf.lookup(1) is not None
        assert run_cmd(ring_a, source, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=1) == 0
        assert req.done and req.result == 512
    finally:
        ring_a.close()
        ring_b.close()
        source.close()
