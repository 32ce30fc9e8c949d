"""AioStream: a multishot recv into provided buffers and unawaited, ordered sends, over
real 127.0.0.1 TCP sockets on kernel rings (the default, an eventfd-watched one and the
COOP/DEFER_TASKRUN set-ups)."""

import asyncio
import errno
import os
import random
import socket

import pytest

from uringbpf import aio as aio_mod
from uringbpf.aio import AioRing, AioStream
from uringbpf.errors import RingClosedError
from uringbpf.uring import uapi as u

KERNEL_KW = {"ring-fd": {}, "eventfd": {"notify": "eventfd"},
             "coop": {"flags": u.IORING_SETUP_COOP_TASKRUN | u.IORING_SETUP_TASKRUN_FLAG},
             "defer": {"flags": u.IORING_SETUP_SINGLE_ISSUER | u.IORING_SETUP_DEFER_TASKRUN}}


@pytest.fixture(params=list(KERNEL_KW))
def kw(request):
    return KERNEL_KW[request.param]


async def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    got = bytearray()
    while len(got) < n:
        chunk = await loop.sock_recv(sock, n - len(got))
        assert chunk, "peer closed early"
        got += chunk
    return bytes(got)


def test_echo_in_order_and_eof(tcp_pair, kw, run):
    cli, srv = tcp_pair
    rnd = random.Random(7)
    msgs = [rnd.randbytes(rnd.randrange(1, 3000)) for _ in range(200)]

    async def main():
        async with AioRing(32, **kw) as ar:
            st = ar.stream(srv)
            assert isinstance(st, AioStream)

            async def echo():
                while data := await st.read():
                    st.write(data)
                    await st.drain()
                return st.at_eof

            server = asyncio.ensure_future(echo())
            loop = asyncio.get_running_loop()
            cli.setblocking(False)
            for m in msgs:
                await loop.sock_sendall(cli, m)
            back = await _recv_exactly(cli, sum(map(len, msgs)))
            cli.shutdown(socket.SHUT_WR)
            assert await server is True
            assert await st.read() == b""        # EOF stays EOF
            await st.aclose()
            assert ar.inflight == 0
            return back

    assert run(main) == b"".join(msgs)


def test_many_writes_leave_in_order_and_drain_waits(tcp_pair, kw, run):
    """Writes queue behind the one send in flight and are joined; 4 MiB > the high water
    mark makes drain() wait for the socket buffer to empty."""
    cli, srv = tcp_pair
    parts = [bytes([i % 251]) * 4099 for i in range(1024)]

    async def main():
        async with AioRing(16, **kw) as ar:
            st = ar.stream(srv)
            reader = asyncio.ensure_future(_recv_exactly(cli, sum(map(len, parts))))
            for p in parts:
                st.write(p)
            await st.drain()
            got = await reader
            await st.aclose()
            return got

    assert run(main) == b"".join(parts)


def test_read_n_splits_chunks(tcp_pair, run):
    cli, srv = tcp_pair

    async def main():
        async with AioRing(8) as ar:
            st = ar.stream(srv)
            cli.sendall(b"abcdefghij")
            out = [await st.read(3)]
            while sum(map(len, out)) < 10:
                out.append(await st.read(3))
            cli.sendall(b"xyz")
            for bad in (0, -1, 2.5, None):      # -1 used to return all but the last byte
                with pytest.raises(ValueError):
                    await st.read(bad)
            assert await st.read() == b"xyz"
            await st.aclose()
            return out

    out = run(main)
    assert b"".join(out) == b"abcdefghij" and all(1 <= len(c) <= 3 for c in out)


def test_out_of_provided_buffers_rearms_and_loses_nothing(tcp_pair, monkeypatch, run):
    """2 buffers of 16 bytes: a 64 KiB burst ends the multishot recv with -ENOBUFS again
    and again; the stream re-arms each time and every byte arrives, in order."""
    monkeypatch.setattr(aio_mod, "_STREAM_BUFFERS", 2)
    monkeypatch.setattr(aio_mod, "_STREAM_BUFSIZE", 16)
    cli, srv = tcp_pair
    data = os.urandom(64 * 1024)

    async def main():
        async with AioRing(8) as ar:
            st = ar.stream(srv)
            cli.sendall(data)
            cli.shutdown(socket.SHUT_WR)
            got = bytearray()
            while chunk := await st.read():
                assert len(chunk) <= 16
                got += chunk
            await st.aclose()
            return bytes(got)

    assert run(main) == data


def test_send_error_surfaces_in_drain_and_write(run):
    """The peer resets the connection: the send's error comes out of drain()/write()
    (one line, the errno), not as a lost exception."""
    lst = socket.create_server(("127.0.0.1", 0))
    cli = socket.create_connection(lst.getsockname())
    srv, _ = lst.accept()
    lst.close()
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")   # RST on close
    cli.close()

    async def main():
        async with AioRing(8) as ar:
            st = ar.stream(srv)
            with pytest.raises(OSError) as info:
                for _ in range(1000):
                    st.write(b"x" * 65536)
                    await st.drain()
            await st.aclose()
            return info.value.errno

    try:
        assert run(main) in (errno.ECONNRESET, errno.EPIPE)
    finally:
        srv.close()


def test_cancelled_reader_keeps_the_data_for_the_next_read(tcp_pair, run):
    cli, srv = tcp_pair

    async def main():
        async with AioRing(8) as ar:
            st = ar.stream(srv)
            t = asyncio.ensure_future(st.read())
            await asyncio.sleep(0.01)
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            cli.sendall(b"still here")
            got = await st.read()
            await st.aclose()
            return got

    assert run(main) == b"still here"


def test_closing_the_ring_under_a_waiting_reader(tcp_pair, run):
    cli, srv = tcp_pair

    async def main():
        ar = AioRing(8)
        st = ar.stream(srv)
        t = asyncio.ensure_future(st.read())
        await asyncio.sleep(0.01)
        ar.close()
        with pytest.raises(RingClosedError):
            await t
        with pytest.raises(RingClosedError):
            st.write(b"x")

    run(main)


def test_aclose_cancels_the_recv_and_refuses_writes(tcp_pair, run):
    cli, srv = tcp_pair

    async def main():
        async with AioRing(8) as ar:
            st = ar.stream(srv)
            st.write(b"last words")
            await st.aclose()
            assert ar.inflight == 0 and ar.stats["cancels"] == 1
            with pytest.raises(RuntimeError):
                st.write(b"more")
            return await _recv_exactly(cli, 10)

    assert run(main) == b"last words"


def test_threads_backend_has_no_streams(tcp_pair, run):
    async def main():
        async with AioRing(8, backend="threads") as ar:
            with pytest.raises(ValueError):
                ar.stream(tcp_pair[1])

    run(main)


def test_one_stream_per_socket(tcp_pair, run):
    """A second multishot recv on the same socket would split its bytes between two
    streams: refused while the first is open, allowed after its aclose()."""
    async def main():
        async with AioRing(8) as ar:
            st = ar.stream(tcp_pair[1])
            with pytest.raises(ValueError):
                ar.stream(tcp_pair[1].fileno())
            await st.aclose()
            again = ar.stream(tcp_pair[1])
            tcp_pair[0].sendall(b"ok")
            got = await again.read()
            await again.aclose()
            closed = socket.socket()
            closed.close()
            with pytest.raises(ValueError):
                ar.stream(closed)
            return got

    assert run(main) == b"ok"


def test_a_stream_nobody_reads_stops_receiving(tcp_pair, run):
    """8 MiB sent to a stream that is not read: receiving pauses once 256 KiB are queued
    (the recv is cancelled; TCP's window holds the sender), resumes as read() catches up,
    and every byte arrives in order."""
    cli, srv = tcp_pair
    data = os.urandom(8 << 20)

    async def main():
        loop = asyncio.get_running_loop()
        async with AioRing(8) as ar:
            st = ar.stream(srv)
            cli.setblocking(False)
            sender = asyncio.ensure_future(loop.sock_sendall(cli, data))
            for _ in range(1000):               # the sender fills whatever it can
                await asyncio.sleep(0.01)
                if st.paused and not st._recv_ud:   # paused, and the recv's last CQE came
                    break
            await asyncio.sleep(0.1)
            queued = st.queued
            assert st.paused and queued <= 2 * AioStream.READ_HIGH_WATER, queued
            assert not sender.done()            # held back by the window, not buffered here
            got = bytearray()
            while len(got) < len(data):
                got += await st.read()
            await sender
            await st.aclose()
            return bytes(got)

    assert run(main) == data
