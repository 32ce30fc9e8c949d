"""uringbpf.aio operations on real temp files and 127.0.0.1 sockets, on both backends
(the kernel ring polled through its fd and through a registered eventfd)."""

import asyncio
import errno
import os
import socket

import pytest

from uringbpf.aio import AioRing
from uringbpf.uring import uapi as u


def test_write_then_read_at_offsets_and_file_position(tmp_path, aio_kw, run):
    path = tmp_path / "f"

    async def main():
        async with AioRing(16, **aio_kw) as ar:
            fd = os.open(path, os.O_RDWR | os.O_CREAT)
            try:
                assert await ar.write(fd, b"hello ", 0) == 6
                assert await ar.write(fd, b"world", 6) == 5
                buf = bytearray(5)
                assert await ar.read(fd, buf, 6) == 5
                assert buf == b"world"
                # offset -1: the file position, which read/write advance
                os.lseek(fd, 0, os.SEEK_SET)
                assert await ar.read(fd, buf, nbytes=3) == 3
                assert await ar.read(fd, buf) == 5
                assert bytes(buf) == b"lo wo"
                assert os.lseek(fd, 0, os.SEEK_CUR) == 8
                assert await ar.read(fd, buf, 100) == 0          # EOF
            finally:
                os.close(fd)
            assert ar.inflight == 0

    run(main)
    assert path.read_bytes() == b"hello world"


def test_readv_writev(tmp_path, aio_kw, run):
    path = tmp_path / "v"

    async def main():
        async with AioRing(8, **aio_kw) as ar:
            fd = os.open(path, os.O_RDWR | os.O_CREAT)
            try:
                assert await ar.writev(fd, [b"abc", b"", b"defgh"], 0) == 8
                a, b = bytearray(2), bytearray(10)
                assert await ar.readv(fd, [a, b], 1) == 7
                assert (a, b[:5]) == (b"bc", b"defgh")
            finally:
                os.close(fd)

    run(main)


def test_openat_fsync_close_through_the_ring(tmp_path, aio_kw, run):
    path = tmp_path / "new"

    async def main():
        async with AioRing(8, **aio_kw) as ar:
            fd = await ar.openat(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            assert os.get_inheritable(fd) is False               # O_CLOEXEC added
            assert await ar.write(fd, b"data", 0) == 4
            await ar.fsync(fd)
            await ar.fsync(fd, datasync=True)
            await ar.close_fd(fd)
            with pytest.raises(OSError) as ei:
                os.fstat(fd)
            assert ei.value.errno == errno.EBADF
            with pytest.raises(FileExistsError):
                await ar.openat(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
            with pytest.raises(FileNotFoundError) as ei:
                await ar.openat(tmp_path / "missing")
            assert ei.value.errno == errno.ENOENT and "missing" in str(ei.value)

    run(main)
    assert path.read_bytes() == b"data" and (path.stat().st_mode & 0o777) == 0o600


def test_errors_are_oserror_with_the_kernels_errno(tmp_path, aio_kw, run):
    async def main():
        async with AioRing(8, **aio_kw) as ar:
            r, w = os.pipe()
            try:
                wo = os.open(tmp_path / "wo", os.O_WRONLY | os.O_CREAT)
                try:
                    with pytest.raises(OSError) as ei:
                        await ar.read(wo, bytearray(4), 0)       # not open for reading
                    assert ei.value.errno == errno.EBADF
                finally:
                    os.close(wo)
                with pytest.raises(OSError) as ei:
                    await ar.write(999_999, b"x")
                assert ei.value.errno == errno.EBADF
                with pytest.raises(IsADirectoryError):
                    fd = os.open(tmp_path, os.O_RDONLY)
                    try:
                        await ar.read(fd, bytearray(4), 0)
                    finally:
                        os.close(fd)
                with pytest.raises(OSError) as ei:
                    await ar.fsync(r)
                assert ei.value.errno == errno.EINVAL
                # misuse is refused before any SQE is claimed
                with pytest.raises(TypeError):
                    await ar.read(r, b"read-only")
                assert ar.inflight == 0 and ar.ring.sq_ready() == 0
            finally:
                os.close(r)
                os.close(w)

    run(main)


def test_tcp_accept_connect_send_recv(aio_kw, run):
    async def main():
        async with AioRing(16, **aio_kw) as ar:
            lst = socket.create_server(("127.0.0.1", 0))
            cli = socket.socket()
            try:
                fd, _ = await asyncio.gather(ar.accept(lst),
                                             ar.connect(cli, lst.getsockname()))
                srv = socket.socket(fileno=fd)
                try:
                    payload = os.urandom(100_000)
                    got = bytearray()
                    buf = bytearray(65536)

                    async def reader():
                        while len(got) < len(payload):
                            n = await ar.recv(srv, buf)
                            assert n > 0
                            got.extend(buf[:n])

                    await asyncio.gather(ar.sendall(cli, payload), reader())
                    assert got == payload
                    cli.shutdown(socket.SHUT_WR)
                    assert await ar.recv(srv, buf) == 0           # orderly shutdown
                finally:
                    srv.close()
            finally:
                cli.close()
                lst.close()
            with pytest.raises(ConnectionRefusedError):
                s = socket.socket()
                try:
                    await ar.connect(s, ("127.0.0.1", _free_port()))
                finally:
                    s.close()

    run(main)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_recv_timeout_raises_timeout_error(tcp_pair, aio_kw, run):
    cli, srv = tcp_pair

    async def main():
        async with AioRing(8, **aio_kw) as ar:
            with pytest.raises(TimeoutError):
                await ar.recv(srv, bytearray(16), timeout=0.02)
            for _ in range(200):      # the link timeout's own CQE may come a moment later
                if not ar.inflight:
                    break
                await asyncio.sleep(0.001)
            assert ar.inflight == 0                # the op and its link timeout completed
            # a bad timeout is refused before any SQE is queued (nothing left linked)
            with pytest.raises(ValueError):
                await ar.recv(srv, bytearray(16), timeout=-1)
            with pytest.raises(ValueError):
                await ar.fsync(srv, timeout=float("nan"))
            assert ar.ring.sq_ready() == 0 and await ar.nop() == 0
            cli.send(b"ping")
            buf = bytearray(16)
            assert await ar.recv(srv, buf, timeout=5) == 4    # a timeout that does not fire
            for _ in range(200):
                if not ar.inflight:
                    break
                await asyncio.sleep(0.001)
            assert ar.inflight == 0

    run(main)


def test_sleep_on_the_kernel_clock_orders_wakeups(aio_kw, run):
    async def main():
        async with AioRing(8, **aio_kw) as ar:
            order = []

            async def sleeper(name, seconds):
                await ar.sleep(seconds)
                order.append(name)

            # gaps wide enough that a loaded 2-core machine (thread-pool backend:
            # one worker thread per sleep) cannot reorder them
            await asyncio.gather(sleeper("long", 0.4), sleeper("short", 0.1),
                                 sleeper("zero", 0))
            assert order == ["zero", "short", "long"]

    run(main)


def test_one_enter_per_loop_iteration(tmp_path, run):
    path = tmp_path / "data"
    path.write_bytes(bytes(range(256)) * 64)

    async def main():
        async with AioRing(128) as ar:
            fd = os.open(path, os.O_RDONLY)
            try:
                bufs = [bytearray(64) for _ in range(64)]
                before = ar.stats["enters"]
                res = await asyncio.gather(*(ar.read(fd, b, 256 * i) for i, b in enumerate(bufs)))
                assert res == [64] * 64
                assert all(b == bytes(range(64)) for b in bufs)
                # the 64 tasks start in one loop iteration: one io_uring_enter for all
                assert ar.stats["enters"] - before == 1
            finally:
                os.close(fd)

    run(main)


def test_many_concurrent_tasks_overflow_sq_and_cq(tmp_path, aio_kw, run):
    """1000 reads on a 16-entry ring (CQ 32): the SQ fills (submitted early) and the CQ
    overflows into the kernel's backlog (flushed by the reaper); every byte is right."""
    path = tmp_path / "big"
    data = os.urandom(1000 * 16)
    path.write_bytes(data)

    async def main():
        async with AioRing(16, **aio_kw) as ar:
            fd = os.open(path, os.O_RDONLY)
            try:
                async def one(i):
                    buf = bytearray(16)
                    assert await ar.read(fd, buf, 16 * i) == 16
                    return bytes(buf)
                got = await asyncio.gather(*(one(i) for i in range(1000)))
                assert b"".join(got) == data
                assert ar.inflight == 0 and ar.stats["reaped"] == 1000
            finally:
                os.close(fd)

    run(main)


def test_linked_chains(tmp_path, aio_kw, run):
    path = tmp_path / "chain"

    async def main():
        async with AioRing(16, **aio_kw) as ar:
            fd = os.open(path, os.O_RDWR | os.O_CREAT)
            try:
                buf = bytearray(5)
                res = await ar.chain().write(fd, b"12345", 0).fsync(fd).read(fd, buf, 0)
                assert res == [5, 0, 5] and buf == b"12345"
                # a failed member cancels the rest of the chain
                res = await ar.chain().read(-1, buf, 0).write(fd, b"x", 0).nop()
                assert res == [-errno.EBADF, -errno.ECANCELED, -errno.ECANCELED]
                # a hardlink chain goes on
                res = await ar.chain(hard=True).nop(inject=-errno.EIO).nop()
                assert res == [-errno.EIO, 0]
                with pytest.raises(OSError) as ei:
                    await ar.chain().nop(inject=-errno.ENOSPC).nop().check()
                assert ei.value.errno == errno.ENOSPC
                assert await ar.chain() == []
                # a member refused at submission (bad fd type) ends the chain before it:
                # what was queued completes unobserved and is not linked to later SQEs
                with pytest.raises(TypeError):
                    await ar.chain().nop(inject=-errno.EIO).fsync("not an fd")
                assert await ar.nop() == 0
                for _ in range(100):
                    if not ar.inflight:
                        break
                    await asyncio.sleep(0.001)
                assert ar.inflight == 0
            finally:
                os.close(fd)
            assert path.read_bytes() == b"12345"

    run(main)


def test_chain_with_link_timeout(tcp_pair, aio_kw, run):
    cli, srv = tcp_pair

    async def main():
        async with AioRing(8, **aio_kw) as ar:
            res = await ar.chain().recv(srv, bytearray(8)).link_timeout(0.02)
            assert res == [-errno.ECANCELED, -errno.ETIME]
            cli.send(b"abc")
            res = await ar.chain().recv(srv, bytearray(8)).link_timeout(5)
            assert res == [3, -errno.ECANCELED]
            with pytest.raises(ValueError):
                ar.chain().link_timeout(1)
            big = ar.chain()
            for _ in range(9):
                big.nop()
            with pytest.raises(ValueError):
                await big                                  # 9 SQEs do not fit in 8

    run(main)


def test_eventfd_registration_rules(backend):
    """The threads backend follows the kernel: one eventfd, EBUSY for a second, ENXIO to
    unregister none, EBADF/EINVAL for a bad fd."""
    import ctypes
    from uringbpf.uring import Ring
    with Ring(4, backend=backend) as ring:
        assert ring.register(u.IORING_UNREGISTER_EVENTFD, 0, 0) == -errno.ENXIO
        bad = ctypes.c_int32(-1)
        assert ring.register(u.IORING_REGISTER_EVENTFD, ctypes.addressof(bad), 1) == -errno.EBADF
        efd = os.eventfd(0, os.EFD_NONBLOCK)
        try:
            arg = ctypes.c_int32(efd)
            assert ring.register(u.IORING_REGISTER_EVENTFD, ctypes.addressof(arg), 1) == 0
            assert ring.register(u.IORING_REGISTER_EVENTFD, ctypes.addressof(arg), 1) \
                == -errno.EBUSY
            ring.prep_nop(user_data=1)
            ring.prep_nop(user_data=2)
            ring.submit_and_wait(2)
            assert os.eventfd_read(efd) >= 1                 # signalled by the CQEs
            assert ring.register(u.IORING_UNREGISTER_EVENTFD, 0, 0) == 0
        finally:
            os.close(efd)


def test_a_ring_belongs_to_one_event_loop(run):
    ar = AioRing(4)
    try:
        async def use():
            return await ar.nop()
        assert asyncio.run(use()) == 0
        with pytest.raises(RuntimeError, match="another event loop"):
            asyncio.run(use())
    finally:
        ar.close()


def test_notify_modes(run):
    """The kernel ring is polled through its own fd by default (no eventfd registered);
    notify='eventfd' registers one; the thread-pool backend always uses an eventfd."""
    async def main():
        async with AioRing(4) as a, AioRing(4, notify="eventfd") as b, \
                AioRing(4, backend="threads") as c:
            assert (a.notify, b.notify, c.notify) == ("ring", "eventfd", "eventfd")
            assert await a.nop() == await b.nop() == await c.nop() == 0
            # ring mode left the eventfd slot free: the kernel accepts one now
            import ctypes
            efd = os.eventfd(0)
            try:
                arg = ctypes.c_int32(efd)
                assert a.ring.register(u.IORING_REGISTER_EVENTFD, ctypes.addressof(arg), 1) == 0
                assert b.ring.register(u.IORING_REGISTER_EVENTFD, ctypes.addressof(arg), 1) \
                    == -errno.EBUSY
                assert a.ring.register(u.IORING_UNREGISTER_EVENTFD, 0, 0) == 0
            finally:
                os.close(efd)
        with pytest.raises(ValueError):
            AioRing(4, backend="threads", notify="ring")
        # DEFER_TASKRUN completions do not wake pollers of the ring fd: eventfd (a ring-fd
        # AioRing hung on its first write)
        defer = u.IORING_SETUP_SINGLE_ISSUER | u.IORING_SETUP_DEFER_TASKRUN
        async with AioRing(4, flags=defer) as d:
            assert d.notify == "eventfd"
        with pytest.raises(ValueError):
            AioRing(4, flags=defer, notify="ring")
        with pytest.raises(ValueError):
            AioRing(4, notify="select")

    run(main)
