"""The native SQE preparation of read/write/recv/send (native/aioreap.c prep_rw): the
same checks and the same SQE as Ring.prep_rw, sharing the SQ with the Ring's helpers."""

import asyncio
import os
import socket

import pytest

from uringbpf.aio import AioRing


@pytest.mark.parametrize("call", [
    lambda ar, fd: ar.read(1 << 40, bytearray(8)),          # fd beyond 32 bits
    lambda ar, fd: ar.read(-(1 << 31) - 1, bytearray(8)),
    lambda ar, fd: ar.read(fd, bytearray(8), -2),            # offset: >= 0 or -1
    lambda ar, fd: ar.write(fd, b"x", 1 << 64),              # offset beyond u64
    lambda ar, fd: ar.read(fd, bytearray(8), nbytes=9),      # more than the buffer
])
def test_bad_arguments_raise_and_leave_the_sq_untouched(tmp_path, aio_kw, run, call):
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")

    async def main():
        async with AioRing(8, **aio_kw) as ar:
            fd = os.open(path, os.O_RDWR)
            try:
                with pytest.raises(ValueError):
                    await call(ar, fd)
                assert ar.ring.sq_ready() == 0 and ar.inflight == 0
                buf = bytearray(4)
                assert await ar.read(fd, buf, 2) == 4 and buf == b"2345"
            finally:
                os.close(fd)

    run(main)


def test_a_huge_offset_reaches_the_kernel_unchanged(tmp_path, aio_kw, run):
    """2**63 does not fit the kernel's loff_t: the kernel answers -EINVAL, which proves
    the value went into the SQE as given (not clipped or taken as the file position)."""
    path = tmp_path / "f"
    path.write_bytes(b"abc")

    async def main():
        async with AioRing(8, **aio_kw) as ar:
            fd = os.open(path, os.O_RDONLY)
            try:
                with pytest.raises(OSError) as ei:
                    await ar.read(fd, bytearray(3), 1 << 63)
                assert ei.value.errno == 22
                assert await ar.read(fd, bytearray(3), 0) == 3
                assert os.lseek(fd, 0, os.SEEK_CUR) == 0        # pread: position unused
            finally:
                os.close(fd)

    run(main)


def test_native_and_ring_helper_sqes_share_the_queue(tmp_path, aio_kw, run):
    """readv (Ring.prep_readv: the Ring keeps its iovecs per slot) interleaved with
    native-prepared reads on a 4-entry SQ that wraps many times, more tasks than SQEs:
    every result and byte lands where it belongs."""
    path = tmp_path / "f"
    data = bytes(range(256)) * 64
    path.write_bytes(data)

    async def main():
        async with AioRing(4, **aio_kw) as ar:
            fd = os.open(path, os.O_RDONLY)
            try:
                async def one(k):
                    off = (k * 97) % (len(data) - 64)
                    if k % 3 == 0:
                        a, b = bytearray(16), bytearray(48)
                        assert await ar.readv(fd, [a, b], off) == 64
                        got = bytes(a + b)
                    else:
                        buf = bytearray(64)
                        assert await ar.read(fd, buf, off) == 64
                        got = bytes(buf)
                    assert got == data[off:off + 64]
                await asyncio.gather(*(one(k) for k in range(60)))
                assert ar.inflight == 0
            finally:
                os.close(fd)

    run(main)


def test_send_and_recv_flags_reach_the_kernel(tcp_pair, aio_kw, run):
    """msg_flags go into the SQE: MSG_PEEK leaves the bytes for the next recv."""
    cli, srv = tcp_pair

    async def main():
        async with AioRing(8, **aio_kw) as ar:
            assert await ar.send(cli, b"peekaboo", socket.MSG_NOSIGNAL) == 8
            buf = bytearray(8)
            assert await ar.recv(srv, buf, socket.MSG_PEEK | socket.MSG_WAITALL) == 8
            buf2 = bytearray(8)
            assert await ar.recv(srv.fileno(), buf2) == 8
            assert buf == buf2 == b"peekaboo"

    run(main)
