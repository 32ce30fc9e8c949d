"""Closing the Ring an AioRing drives, directly (ring.close(), not AioRing.close()):
tasks awaiting its CQEs must fail with RingClosedError instead of waiting forever (the
closed ring fd never polls readable again), from the loop thread or another thread."""

import asyncio
import threading

import pytest

from uringbpf.aio import AioRing
from uringbpf.uring import RingClosedError
from uringbpf.uring.ring import Ring


@pytest.mark.parametrize("notify", ["ring", "eventfd"])
@pytest.mark.parametrize("where", ["loop", "thread"])
def test_closing_the_ring_fails_waiting_operations(tcp_pair, run, notify, where):
    _cli, srv = tcp_pair

    async def main():
        ring = Ring(8)
        ar = AioRing(ring=ring, notify=notify)
        task = asyncio.ensure_future(ar.recv(srv, bytearray(16)))
        await asyncio.sleep(0.05)
        assert not task.done()
        if where == "loop":
            ring.close()
        else:
            t = threading.Thread(target=ring.close)
            t.start()
            while t.is_alive():
                await asyncio.sleep(0.005)
        with pytest.raises(RingClosedError):
            await asyncio.wait_for(task, 5)
        assert ar.closed and ring.closed
        with pytest.raises(RingClosedError):
            await ar.nop()

    run(main)


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -1.0, 1e30])
def test_a_timeout_that_cannot_be_a_timespec_is_refused_before_any_sqe(bad, tcp_pair, run):
    """Was: timeout=inf queued the request with IOSQE_IO_LINK, then the linked timeout
    raised OverflowError: the request stayed linked to whatever was submitted next."""
    cli, srv = tcp_pair

    async def main():
        async with AioRing(8) as ar:
            with pytest.raises(ValueError):
                await ar.recv(srv, bytearray(4), timeout=bad)
            assert ar.ring.sq_ready() == 0 and ar.inflight == 0
            assert await ar.nop() == 0

    run(main)
