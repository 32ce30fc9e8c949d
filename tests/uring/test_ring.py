"""Behaviour of Ring on real files and 127.0.0.1 sockets, identical on both backends."""

import errno
import os
import select
import socket

import pytest

from uringbpf.uring import (ENTER_GETEVENTS, FEAT_NODROP, OP_NOP, OP_READ, OP_WRITE,
                            SETUP_CQE32, SETUP_DEFER_TASKRUN, SETUP_NO_SQARRAY, SETUP_SQE128,
                            SETUP_SINGLE_ISSUER, SQE_CQE_SKIP_SUCCESS, SQE_FIXED_FILE,
                            SQE_IO_DRAIN, SQE_IO_HARDLINK, SQE_IO_LINK, Completion, Cqe, Sqe,
                            Sqe128, Cqe32)

WAIT = 5.0


def by_ud(completions):
    return {c.user_data: c.res for c in completions}


def wait_all(ring, n):
    got = []
    while len(got) < n:
        ring.wait_cqe(timeout=WAIT)
        got.extend(ring.reap())
    return got


@pytest.fixture
def tcp_pair():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    cli = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    yield cli, conn
    for s in (cli, conn, srv):
        s.close()


def test_nop_and_injected_result(ring):
    ring.prep_nop(1)
    ring.prep_nop(2, inject=-errno.EPERM)
    ring.prep_nop(3, inject=42)
    assert ring.submit_and_wait(3) == 3
    assert by_ud(ring.reap()) == {1: 0, 2: -errno.EPERM, 3: 42}
    assert ring.cq_ready() == 0


def test_peek_wait_seen_and_for_each(ring):
    assert ring.peek_cqe() is None
    for i in range(3):
        ring.prep_nop(100 + i)
    ring.submit()
    cqe = ring.wait_cqe(timeout=WAIT)
    assert isinstance(cqe, Cqe) and cqe.user_data == 100
    ring.cqe_seen(cqe)
    wait_all_ready = [c.user_data for c in ring.for_each_cqe()]
    while len(wait_all_ready) < 2:
        ring.wait_cqe_nr(2, timeout=WAIT)
        wait_all_ready = [c.user_data for c in ring.for_each_cqe()]
    assert wait_all_ready == [101, 102]
    assert ring.cq_ready() == 2   # for_each_cqe does not consume
    ring.cq_advance(2)
    assert ring.peek_cqe() is None and list(ring) == []


def test_write_read_file(ring, tmp_path):
    path = tmp_path / "data"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        payload = os.urandom(4096)
        ring.prep_write(fd, payload, 0, user_data=1)
        ring.submit_and_wait(1)
        assert ring.reap() == [Completion(1, 4096, 0)]
        buf = bytearray(4096)
        ring.prep_read(fd, buf, 0, user_data=2)
        ring.submit_and_wait(1)
        assert by_ud(ring.reap()) == {2: 4096}
        assert bytes(buf) == payload == path.read_bytes()
        # readv / writev
        parts = [bytearray(10), bytearray(20)]
        ring.prep_writev(fd, [b"a" * 10, b"b" * 20], 100, user_data=3)
        ring.submit_and_wait(1)
        ring.prep_readv(fd, parts, 100, user_data=4)
        ring.submit_and_wait(1)
        assert by_ud(wait_all(ring, 2)) == {3: 30, 4: 30}
        assert parts == [bytearray(b"a" * 10), bytearray(b"b" * 20)]
        ring.prep_fsync(fd, user_data=5)
        ring.submit()
        assert by_ud(wait_all(ring, 1)) == {5: 0}
    finally:
        os.close(fd)


def test_link_chain_and_short_read_breaks_it(ring, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    fd = os.open(path, os.O_RDWR)
    try:
        buf = bytearray(100)
        ring.prep_read(fd, buf, 0, user_data=1, flags=SQE_IO_LINK)
        ring.prep_write(fd, b"y" * 10, 100, user_data=2, flags=SQE_IO_LINK)
        ring.prep_nop(3)
        ring.submit()
        assert by_ud(wait_all(ring, 3)) == {1: 100, 2: 10, 3: 0}
        # short read (100 of 200 asked) fails the link: the rest is cancelled
        big = bytearray(200)
        ring.prep_read(fd, big, 10, user_data=4, flags=SQE_IO_LINK)
        ring.prep_write(fd, b"z", 0, user_data=5, flags=SQE_IO_LINK)
        ring.prep_nop(6)
        ring.submit()
        res = by_ud(wait_all(ring, 3))
        assert res == {4: 100, 5: -errno.ECANCELED, 6: -errno.ECANCELED}
        assert path.read_bytes()[:1] == b"x"   # the cancelled write never ran
    finally:
        os.close(fd)


def test_hardlink_survives_failure(ring):
    ring.prep_read(9999, bytearray(8), user_data=1, flags=SQE_IO_HARDLINK)
    ring.prep_nop(2, flags=SQE_IO_LINK)
    ring.prep_nop(3)
    ring.submit()
    assert by_ud(wait_all(ring, 3)) == {1: -errno.EBADF, 2: 0, 3: 0}


def test_drain_waits_for_earlier_requests(ring):
    ring.prep_timeout(0.05, user_data=1)
    ring.prep_nop(2, flags=SQE_IO_DRAIN)
    ring.prep_nop(3)
    ring.submit()
    order = [c.user_data for c in wait_all(ring, 3)]
    assert order.index(1) < order.index(2) < order.index(3)


def test_cqe_skip_success(ring):
    ring.prep_nop(1, flags=SQE_CQE_SKIP_SUCCESS)
    ring.prep_nop(2, flags=SQE_CQE_SKIP_SUCCESS, inject=-errno.EIO)
    ring.prep_nop(3)
    ring.submit()
    got = wait_all(ring, 2)
    assert by_ud(got) == {2: -errno.EIO, 3: 0}


def test_bad_fd_completes_with_ebadf(ring):
    ring.prep_read(12345, bytearray(4), user_data=7)
    ring.prep_write(12345, b"abcd", user_data=8)
    ring.submit()
    assert by_ud(wait_all(ring, 2)) == {7: -errno.EBADF, 8: -errno.EBADF}


def test_bad_buffer_address_gives_efault(ring, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"q" * 64)
    fd = os.open(path, os.O_RDONLY)
    try:
        sqe = ring.get_sqe()
        sqe.opcode, sqe.fd, sqe.addr, sqe.len, sqe.user_data = OP_READ, fd, 16, 64, 5
        ring.submit()
        assert by_ud(wait_all(ring, 1)) == {5: -errno.EFAULT}
    finally:
        os.close(fd)


def test_unknown_opcode_is_einval(ring):
    sqe = ring.get_sqe()
    sqe.opcode, sqe.user_data = 250, 9
    ring.submit()
    assert by_ud(wait_all(ring, 1)) == {9: -errno.EINVAL}


def test_fixed_files_sparse_and_update(ring, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"fixed-file!")
    fd = os.open(path, os.O_RDONLY)
    try:
        ring.register_files([fd, -1])
        buf = bytearray(11)
        ring.prep_read(0, buf, 0, user_data=1, flags=SQE_FIXED_FILE)
        ring.prep_read(1, bytearray(4), 0, user_data=2, flags=SQE_FIXED_FILE)
        ring.submit()
        assert by_ud(wait_all(ring, 2)) == {1: 11, 2: -errno.EBADF}
        assert buf == b"fixed-file!"
        assert ring.register_files_update(1, [fd]) == 1
        b2 = bytearray(5)
        ring.prep_read(1, b2, 6, user_data=3, flags=SQE_FIXED_FILE)
        ring.submit()
        assert by_ud(wait_all(ring, 1)) == {3: 5} and b2 == b"file!"
        ring.unregister_files()
        ring.register_files_sparse(4)
        ring.prep_read(0, bytearray(4), 0, user_data=4, flags=SQE_FIXED_FILE)
        ring.submit()
        assert by_ud(wait_all(ring, 1)) == {4: -errno.EBADF}
    finally:
        os.close(fd)


def test_fixed_buffers(ring, tmp_path):
    path = tmp_path / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        a, b = bytearray(b"A" * 4096), bytearray(4096)
        ring.register_buffers([a, b])
        ring.prep_write_fixed(fd, 0, 4096, 0, user_data=1, flags=SQE_IO_LINK)
        ring.prep_read_fixed(fd, 1, 100, 0, buf_offset=8, user_data=2)
        ring.submit()
        assert by_ud(wait_all(ring, 2)) == {1: 4096, 2: 100}
        assert b[8:108] == b"A" * 100 and b[:8] == bytes(8)
        with pytest.raises(ValueError):
            ring.prep_read_fixed(fd, 5, 10)
        with pytest.raises(ValueError):
            ring.prep_read_fixed(fd, 0, 5000)
        ring.unregister_buffers()
        ring.register_buffers_sparse(2)
        c = bytearray(16)
        assert ring.register_buffers_update(1, [c]) == 1
        ring.prep_read_fixed(fd, 1, 16, 0, user_data=3)
        ring.submit()
        assert by_ud(wait_all(ring, 1)) == {3: 16} and c == b"A" * 16
    finally:
        os.close(fd)


def test_timeouts(ring):
    ring.prep_timeout(0.02, user_data=1)
    ring.submit()
    assert by_ud(wait_all(ring, 1)) == {1: -errno.ETIME}
    # a count timeout completes with 0 once `count` other CQEs were posted
    ring.prep_timeout(30, count=1, user_data=2)
    ring.submit()
    ring.prep_nop(3)
    ring.submit()
    assert by_ud(wait_all(ring, 2)) == {2: 0, 3: 0}


def test_link_timeout_cancels_slow_recv(ring, tcp_pair):
    cli, conn = tcp_pair
    ring.prep_recv(conn, bytearray(16), user_data=1, flags=SQE_IO_LINK)
    ring.prep_link_timeout(0.05, user_data=2)
    ring.submit()
    assert by_ud(wait_all(ring, 2)) == {1: -errno.ECANCELED, 2: -errno.ETIME}
    # op first: the link timeout is cancelled
    cli.sendall(b"ping")
    buf = bytearray(16)
    ring.prep_recv(conn, buf, user_data=3, flags=SQE_IO_LINK)
    ring.prep_link_timeout(10, user_data=4)
    ring.submit()
    assert by_ud(wait_all(ring, 2)) == {3: 4, 4: -errno.ECANCELED}
    assert buf[:4] == b"ping"


def test_sockets_accept_connect_send_recv(ring):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.socket()
    try:
        ring.prep_accept(srv, user_data=1)
        ring.prep_connect(cli, srv.getsockname(), user_data=2)
        ring.submit()
        res = by_ud(wait_all(ring, 2))
        assert res[2] == 0 and res[1] >= 0
        conn = socket.socket(fileno=res[1])
        try:
            ring.prep_send(cli, b"hello", user_data=3)
            ring.submit()
            assert by_ud(wait_all(ring, 1)) == {3: 5}
            buf = bytearray(5)
            ring.prep_recv(conn, buf, socket.MSG_WAITALL, user_data=4)
            ring.submit()
            assert by_ud(wait_all(ring, 1)) == {4: 5} and buf == b"hello"
            ring.prep_poll_add(conn, select.POLLIN, user_data=5)
            ring.submit()
            cli.sendall(b"!")
            assert by_ud(wait_all(ring, 1))[5] & select.POLLIN
        finally:
            conn.close()
    finally:
        cli.close()
        srv.close()


def test_openat_and_close(ring, tmp_path):
    path = tmp_path / "opened"
    path.write_bytes(b"content")
    ring.prep_openat(path, os.O_RDONLY, user_data=1)
    ring.prep_openat(tmp_path / "missing", os.O_RDONLY, user_data=2)
    ring.submit()
    res = by_ud(wait_all(ring, 2))
    assert res[2] == -errno.ENOENT and res[1] >= 0
    assert os.pread(res[1], 7, 0) == b"content"
    ring.prep_close(res[1], user_data=3)
    ring.submit()
    assert by_ud(wait_all(ring, 1)) == {3: 0}
    with pytest.raises(OSError):
        os.fstat(res[1])


def test_cancel(ring, tcp_pair):
    _, conn = tcp_pair
    ring.prep_recv(conn, bytearray(8), user_data=77)
    ring.submit()
    ring.prep_cancel(77, user_data=78)
    ring.prep_cancel(12345, user_data=79)
    ring.submit()
    res = by_ud(wait_all(ring, 3))
    assert res == {77: -errno.ECANCELED, 78: 0, 79: -errno.ENOENT}


def test_msg_ring(make_ring):
    a, b = make_ring(8), make_ring(8)
    a.prep_msg_ring(b, 1234, 0xDEADBEEF, user_data=1)
    a.submit()
    assert by_ud(wait_all(a, 1)) == {1: 0}
    assert wait_all(b, 1) == [Completion(0xDEADBEEF, 1234, 0)]


def test_uring_cmd_on_regular_file(make_ring, tmp_path):
    r = make_ring(8, flags=SETUP_SQE128 | SETUP_CQE32)
    assert r.sqe_size == 128 and r.cqe_size == 32
    assert isinstance(r.get_sqe(), Sqe128)   # a zeroed SQE is a NOP with user_data 0
    r.submit()
    assert wait_all(r, 1) == [Completion(0, 0, 0)]
    path = tmp_path / "f"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)
    try:
        r.prep_uring_cmd(fd, 1, b"x" * 80, user_data=5)
        r.submit()
        assert isinstance(r.wait_cqe(timeout=WAIT), Cqe32)
        assert by_ud(r.reap()) == {5: -errno.EOPNOTSUPP}
    finally:
        os.close(fd)
    small = make_ring(8)
    with pytest.raises(ValueError):
        small.prep_uring_cmd(0, 1, b"x" * 17)


def test_cq_overflow_loses_nothing(make_ring):
    r = make_ring(8, cq_entries=8)
    assert r.features & FEAT_NODROP
    for batch in range(3):
        for i in range(8):
            r.prep_nop(batch * 8 + i)
        r.submit()
    got = []
    while len(got) < 24:
        r.wait_cqe(timeout=WAIT)
        got.extend(r.reap())
    assert sorted(c.user_data for c in got) == list(range(24))


def test_setup_flags_and_params(make_ring, backend):
    r = make_ring(4, flags=SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN | SETUP_NO_SQARRAY)
    assert r.sq_entries == 4 and r.cq_entries == 8
    assert r.sq_array_addr == 0 and r.params.sq_off.array == 0
    r.prep_nop(1)
    assert r.submit_and_wait(1) == 1
    assert r.reap() == [Completion(1, 0, 0)]
    r2 = make_ring(5, cq_entries=20)
    assert (r2.sq_entries, r2.cq_entries) == (8, 32)
    assert r2.params.sq_off.array != 0
    assert r2.sq_array_addr == r2.sq_ring_addr + r2.params.sq_off.array
    assert r2.backend == backend and r2.fd >= 0


def test_probe(ring):
    ops = ring.probe()
    assert {OP_NOP, OP_READ, OP_WRITE} <= ops


def test_buffers_kept_alive_until_reaped(ring, tcp_pair):
    import gc
    import weakref

    class Buf(bytearray):
        pass

    cli, conn = tcp_pair
    buf = Buf(8)
    ref = weakref.ref(buf)
    ring.prep_recv(conn, buf, user_data=1)
    ring.submit()
    del buf
    gc.collect()
    assert ref() is not None
    cli.sendall(b"12345678")
    ring.wait_cqe(timeout=WAIT)
    assert ref() is not None and bytes(ref()) == b"12345678"   # CQE seen, not reaped yet
    ring.cq_advance(1)
    gc.collect()
    assert ref() is None


def test_raw_enter_and_sqe_views(ring):
    sqe = ring.get_sqe()
    assert isinstance(sqe, Sqe)
    sqe.opcode, sqe.user_data, sqe.fd = OP_NOP, 55, -1
    n = ring.flush_sq()
    assert n == 1
    assert ring.enter(n, 1, ENTER_GETEVENTS) == 1
    assert by_ud(wait_all(ring, 1)) == {55: 0}


def test_fixed_buffer_outlives_unregister_while_in_flight(ring, tcp_pair):
    import gc
    import weakref

    class Buf(bytearray):
        pass

    cli, conn = tcp_pair
    buf = Buf(16)
    ref = weakref.ref(buf)
    ring.register_buffers([buf])
    del buf
    ring.prep_read_fixed(conn, 0, 4, -1)
    ring.submit()
    ring.unregister_buffers()
    gc.collect()
    assert ref() is not None          # the in-flight READ_FIXED still holds it
    cli.sendall(b"abcd")
    assert ring.wait_cqe(timeout=WAIT).res == 4
    assert bytes(ref()[:4]) == b"abcd"
    ring.cqe_seen()
    gc.collect()
    assert ref() is None


def test_raw_register_probe_with_a_small_buffer(ring):
    import ctypes
    from uringbpf.uring import REGISTER_PROBE, IO_URING_OP_SUPPORTED

    nr = 4                                     # header + 4 ops only, as liburing allows
    buf = (ctypes.c_uint8 * (16 + 8 * nr))()
    assert ring.register(REGISTER_PROBE, ctypes.addressof(buf), nr) == 0
    raw = bytes(buf)
    assert raw[1] == nr                        # ops_len
    ops = [(raw[16 + 8 * i], int.from_bytes(raw[18 + 8 * i:20 + 8 * i], "little"))
           for i in range(nr)]
    assert ops[0] == (0, IO_URING_OP_SUPPORTED)            # NOP
    assert [op for op, _ in ops] == [0, 1, 2, 3]
    bad = (ctypes.c_uint8 * (16 + 8 * nr))(1)
    assert ring.register(REGISTER_PROBE, ctypes.addressof(bad), nr) == -22


def test_buffer_kinds(ring, tmp_path):
    """memoryview slices, mmap and ctypes arrays work as read targets, in place."""
    import ctypes
    import mmap

    path = tmp_path / "f"
    path.write_bytes(bytes(range(64)))
    fd = os.open(path, os.O_RDONLY)
    try:
        big = bytearray(32)
        mv = memoryview(big)[8:16]
        mm = mmap.mmap(-1, 4096)
        arr = (ctypes.c_char * 8)()
        ring.prep_read(fd, mv, 0, user_data=1)
        ring.prep_read(fd, mm, 0, nbytes=8, user_data=2)
        ring.prep_read(fd, arr, 8, user_data=3)
        ring.submit()
        assert by_ud(wait_all(ring, 3)) == {1: 8, 2: 8, 3: 8}
        assert big[8:16] == bytes(range(8)) and big[:8] == bytes(8)
        assert mm[:8] == bytes(range(8))
        assert arr.raw == bytes(range(8, 16))
        with pytest.raises(ValueError):
            ring.prep_read(fd, memoryview(big)[::2])       # not contiguous
    finally:
        os.close(fd)


def test_direct_descriptors(ring, tmp_path):
    from uringbpf.uring import FILE_INDEX_ALLOC

    path = tmp_path / "direct"
    path.write_bytes(b"direct!")
    ring.register_files_sparse(4)
    ring.prep_openat(path, os.O_RDONLY, file_index=2, user_data=1, flags=SQE_IO_LINK)
    buf = bytearray(7)
    ring.prep_read(2, buf, 0, user_data=2, flags=SQE_FIXED_FILE | SQE_IO_LINK)
    ring.prep_close(file_index=2, user_data=3)
    ring.submit()
    assert by_ud(wait_all(ring, 3)) == {1: 0, 2: 7, 3: 0}
    assert buf == b"direct!"
    ring.prep_read(2, bytearray(7), 0, user_data=4, flags=SQE_FIXED_FILE)
    ring.prep_close(file_index=2, user_data=5)
    ring.submit()
    assert by_ud(wait_all(ring, 2)) == {4: -errno.EBADF, 5: -errno.EBADF}
    ring.prep_openat(path, os.O_RDONLY, file_index=FILE_INDEX_ALLOC, user_data=6)
    ring.submit()
    slot = by_ud(wait_all(ring, 1))[6]
    assert 0 <= slot < 4
