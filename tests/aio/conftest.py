"""Fixtures for uringbpf.aio: the operation tests run on both ring backends."""

import asyncio
import socket

import pytest

from uringbpf.uring import uapi as u


@pytest.fixture(params=["kernel", "threads"])
def backend(request):
    return request.param


_COOP = u.IORING_SETUP_COOP_TASKRUN | u.IORING_SETUP_TASKRUN_FLAG
_DEFER = u.IORING_SETUP_SINGLE_ISSUER | u.IORING_SETUP_DEFER_TASKRUN


@pytest.fixture(params=["kernel", "kernel-eventfd", "kernel-coop", "kernel-defer", "threads"])
def aio_kw(request):
    """AioRing keyword arguments: the kernel ring polled through its own fd (the default),
    the kernel ring with a registered eventfd, kernel rings set up with COOP_TASKRUN and
    with DEFER_TASKRUN (completions run only inside io_uring_enter), and the thread-pool
    backend (eventfd)."""
    return {"kernel": {"backend": "kernel"},
            "kernel-eventfd": {"backend": "kernel", "notify": "eventfd"},
            "kernel-coop": {"backend": "kernel", "flags": _COOP},
            "kernel-defer": {"backend": "kernel", "flags": _DEFER},
            "threads": {"backend": "threads"}}[request.param]


@pytest.fixture
def run():
    """``run(coro_fn)``: asyncio.run with a bound so a hang fails instead of blocking."""

    def go(fn, *args, limit=20.0):
        async def bounded():
            return await asyncio.wait_for(fn(*args), limit)
        return asyncio.run(bounded())

    return go


@pytest.fixture
def tcp_pair():
    """A connected (client, server) pair of 127.0.0.1 TCP sockets, closed afterwards."""
    lst = socket.create_server(("127.0.0.1", 0))
    cli = socket.create_connection(lst.getsockname())
    srv, _ = lst.accept()
    lst.close()
    yield cli, srv
    cli.close()
    srv.close()
