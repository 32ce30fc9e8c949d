"""Cancellation and closing: a cancelled task cancels its SQE (IORING_OP_ASYNC_CANCEL),
buffers live until the kernel's CQE, nothing stays in flight."""

import asyncio
import ctypes
import errno
import gc
import os
import weakref

import pytest

from uringbpf.aio import AioRing
from uringbpf.uring import RingClosedError


async def _submitted(ar):
    """Let the loop run until every prepared SQE went to the kernel."""
    for _ in range(100):
        await asyncio.sleep(0)
        if not ar.ring.sq_ready() and not ar._flush_scheduled:
            return
    raise AssertionError("SQEs were never submitted")


def test_cancelled_recv_is_cancelled_in_the_kernel(tcp_pair, aio_kw, run):
    cli, srv = tcp_pair

    async def main():
        async with AioRing(8, **aio_kw) as ar:
            buf = (ctypes.c_char * 64)()
            alive = weakref.ref(buf)
            task = asyncio.ensure_future(ar.recv(srv, buf))
            await _submitted(ar)
            assert ar.inflight == 1
            del buf
            gc.collect()
            assert alive() is not None          # the ring holds it while the kernel may write
            task.cancel()
            with pytest.raises(asyncio.CancelledError) as ei:
                await task
            for _ in range(200):                # the CQE arrives through the eventfd
                if ar.inflight == 0:
                    break
                await asyncio.sleep(0.001)
            assert ar.inflight == 0
            assert ar.ring.sq_ready() == 0 and ar.ring.cq_ready() == 0   # nothing queued or unreaped
            assert ar.stats["cancels"] == 1
            # the recv's own CQE: -ECANCELED (the cancel SQE's CQE is not an operation's)
            assert [res for _, res in ar.late_completions] == [-errno.ECANCELED]
            # the socket is still usable and the data goes to the next recv, not the old buffer
            cli.send(b"after")
            nbuf = bytearray(16)
            assert await ar.recv(srv, nbuf) == 5 and nbuf[:5] == b"after"

    run(main)


def test_cancel_racing_a_completion_keeps_the_result_consistent(tmp_path, aio_kw, run):
    """Tasks cancelled right after submitting a read that completes at once: every CQE is
    accounted for (either the task got it or it is a late completion)."""
    path = tmp_path / "f"
    path.write_bytes(b"x" * 4096)

    async def main():
        async with AioRing(64, **aio_kw) as ar:
            fd = os.open(path, os.O_RDONLY)
            try:
                tasks = [asyncio.ensure_future(ar.read(fd, bytearray(64), 0)) for _ in range(50)]
                await asyncio.sleep(0)
                for t in tasks[::2]:
                    t.cancel()
                done = await asyncio.gather(*tasks, return_exceptions=True)
                for _ in range(200):
                    if ar.inflight == 0:
                        break
                    await asyncio.sleep(0.001)
                assert ar.inflight == 0
                got = [d for d in done if d == 64]
                cancelled = [d for d in done if isinstance(d, asyncio.CancelledError)]
                assert len(got) + len(cancelled) == 50 and len(got) >= 25
            finally:
                os.close(fd)

    run(main)


def test_wait_for_timeout_cancels_the_sqe(tcp_pair, run):
    cli, srv = tcp_pair

    async def main():
        async with AioRing(8) as ar:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ar.recv(srv, bytearray(8)), 0.02)
            for _ in range(200):
                if ar.inflight == 0:
                    break
                await asyncio.sleep(0.001)
            assert ar.inflight == 0 and ar.stats["cancels"] == 1

    run(main)


def test_cancelled_chain_cancels_its_members(tcp_pair, aio_kw, run):
    cli, srv = tcp_pair

    async def main():
        async with AioRing(8, **aio_kw) as ar:
            task = asyncio.ensure_future(ar.chain().recv(srv, bytearray(8)).send(srv, b"reply"))
            await _submitted(ar)
            assert ar.inflight == 2
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(200):
                if ar.inflight == 0:
                    break
                await asyncio.sleep(0.001)
            assert ar.inflight == 0
            assert sorted(res for _, res in ar.late_completions) == [-errno.ECANCELED] * 2
            cli.setblocking(False)
            with pytest.raises(BlockingIOError):
                cli.recv(8)                      # the linked send never ran

    run(main)


def test_close_with_operations_in_flight(tcp_pair, aio_kw, run):
    cli, srv = tcp_pair

    async def main():
        ar = AioRing(8, **aio_kw)
        ring = ar.ring
        buf = bytearray(32)
        task = asyncio.ensure_future(ar.recv(srv, buf))
        await _submitted(ar)
        ar.close()
        with pytest.raises(RingClosedError):
            await task
        assert ar.closed and ring.closed
        ar.close()                               # idempotent
        with pytest.raises(RingClosedError):
            await ar.nop()
        # the kernel may still own the buffer: it stays pinned (a bytearray the ring
        # referenced cannot be resized), never freed under the kernel
        with pytest.raises(BufferError):
            buf.extend(b"x")

    run(main)


def test_aclose_cancels_everything_in_flight(tcp_pair, aio_kw, run):
    cli, srv = tcp_pair

    async def main():
        ar = AioRing(8, **aio_kw)
        tasks = [asyncio.ensure_future(ar.recv(srv, bytearray(8))) for _ in range(3)]
        tasks.append(asyncio.ensure_future(ar.sleep(30)))
        await _submitted(ar)
        assert ar.inflight == 4
        await ar.aclose()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, OSError) and r.errno == errno.ECANCELED for r in results)
        assert ar.closed

    run(main)


def _exported(buf: bytearray) -> bool:
    """True while something (the ring's keep-alive) holds an export of ``buf``: a
    bytearray cannot change size then."""
    try:
        buf.append(0)
    except BufferError:
        return True
    buf.pop()
    return False


@pytest.mark.parametrize("kind", ["bytearray", "memoryview", "nbytes"])
def test_a_cancelled_operations_buffer_outlives_its_task_until_the_cqe(tcp_pair, aio_kw, run,
                                                                       kind):
    """The keep-alive of a read/recv lives in the awaiting coroutine; a cancelled task
    ends before the kernel's CQE, so the buffer's export must move to the ring and be
    released only when that CQE is reaped."""
    cli, srv = tcp_pair

    async def main():
        async with AioRing(8, **aio_kw) as ar:
            buf = bytearray(64)
            arg = {"bytearray": buf, "memoryview": memoryview(buf)[8:],
                   "nbytes": buf}[kind]
            kw = {"nbytes": 16} if kind == "nbytes" else {}
            task = asyncio.ensure_future(ar.recv(srv, arg, **kw))
            await _submitted(ar)
            del arg
            assert _exported(buf)
            task.cancel()
            await asyncio.wait([task])
            assert task.cancelled()
            del task
            gc.collect()
            # the task is gone; the request may still be in the kernel until its CQE
            assert ar.inflight == 0 or _exported(buf)
            for _ in range(200):
                if ar.inflight == 0:
                    break
                await asyncio.sleep(0.001)
            assert ar.inflight == 0
            gc.collect()
            assert not _exported(buf)       # released with the CQE, not leaked
            cli.send(b"x")
            assert await ar.recv(srv, buf) == 1

    run(main)


def test_a_buffer_in_flight_when_the_ring_closes_is_never_released(tcp_pair, aio_kw, run):
    """Closed with a recv in the kernel: the task fails with RingClosedError and its
    buffer's export is parked for good (the kernel may still write into it)."""
    _cli, srv = tcp_pair

    async def main():
        ar = AioRing(8, **aio_kw)
        buf = bytearray(64)
        task = asyncio.ensure_future(ar.recv(srv, buf))
        await _submitted(ar)
        ar.close()
        with pytest.raises(RingClosedError):
            await task
        del task
        gc.collect()
        assert _exported(buf)

    run(main)


def test_a_completed_operation_releases_its_buffer(tcp_pair, aio_kw, run):
    cli, srv = tcp_pair

    async def main():
        async with AioRing(8, **aio_kw) as ar:
            buf = bytearray(64)
            cli.send(b"abc")
            assert await ar.recv(srv, buf) == 3
            assert await ar.send(srv, buf, nbytes=3) == 3
            gc.collect()
            assert not _exported(buf) and ar.inflight == 0

    run(main)
