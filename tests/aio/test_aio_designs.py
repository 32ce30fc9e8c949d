"""The designs from asyncio: a loop_step program's run (Linux 7.1 loop design) in a
RingThread, and IORING_OP_BPF chains (designs.ops) through an AioRing."""

import asyncio
import ctypes
import os

from uringbpf.aio import AioRing, RingThread
from uringbpf.uring import RingClosedError
from uringbpf.designs import loop
from uringbpf.designs import ops


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_loop_step_run_awaited_from_a_ring_thread(run):
    """nops.bpf.c runs 20,000 NOPs in one io_uring_enter on a SINGLE_ISSUER ring created
    by the RingThread; the event loop keeps running other tasks meanwhile."""
    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        async with RingThread() as rt:
            ring = await rt.call(loop.make_ring, 8)
            obj, link = await rt.call(loop.nops_example, ring, 20_000)
            t = asyncio.ensure_future(ticker())
            try:
                assert await rt.run_loop(link) == 0
            finally:
                stop.set()
                await t
            assert obj.bss.reqs_to_run == 0
            assert link.stats()["sqes_submitted"] >= 20_000
            await rt.call(lambda: (link.destroy(), obj.close(), ring.close()))
        assert ticks > 0

    run(main, limit=60)


def test_loop_copy_from_a_pipe_fed_by_the_event_loop(tmp_path, run):
    """cp.bpf.c copies a pipe to a file inside one io_uring_enter (in the RingThread) while
    the event loop writes the pipe through an AioRing: if the loop design blocked the event
    loop, the copy could never finish."""
    data = os.urandom(300_000)
    out = tmp_path / "out"

    async def main():
        r, w = os.pipe()
        out_fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            async with RingThread() as rt, AioRing(8) as ar:
                copy = asyncio.ensure_future(rt.call(loop.copy_fd, r, out_fd))
                view = memoryview(data)
                while view:
                    n = await ar.write(w, view[:65536])
                    view = view[n:]
                os.close(w)
                w = -1
                res = await copy
            assert res.done and res.error == 0 and res.copied == len(data)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
            os.close(out_fd)

    run(main, limit=60)
    assert out.read_bytes() == data


def test_bpf_op_chain_read_then_crc32c(tmp_path, run):
    """READ (linked) -> IORING_OP_BPF crc32c of what it read, awaited as a chain on an
    OpsRing; other operations submitted meanwhile wait and then run."""
    data = os.urandom(3 * 4096)
    path = tmp_path / "blocks"
    path.write_bytes(data)

    async def main():
        ring = ops.create_ring(16)
        obj, _links = ops.open_example("cksum", ring)
        fd = os.open(path, os.O_RDONLY)
        try:
            async with AioRing(ring=ring) as ar:
                bufs = [ctypes.create_string_buffer(4096) for _ in range(3)]

                async def block(i):
                    desc = ops.buf_descs((ops.IO_BPF_BUF_USER, ctypes.addressof(bufs[i]), 4096))
                    return await ar.chain().read(fd, bufs[i], 4096 * i).bpf(0, desc)

                got = await asyncio.gather(block(0), ar.nop(), block(1), block(2), ar.nop())
                for i in (0, 2, 3):
                    n, crc = got[i]
                    k = i if i == 0 else i - 1
                    assert n == 4096
                    assert crc == _crc32c(data[4096 * k:4096 * (k + 1)]) & 0x7FFFFFFF
                assert got[1] == 0 and got[4] == 0
                # a failed READ cancels the BPF op, as the kernel's link rules say
                desc = ops.buf_descs((ops.IO_BPF_BUF_USER, ctypes.addressof(bufs[0]), 4096))
                res = await ar.chain().read(-1, bufs[0], 0).bpf(0, desc)
                assert res == [-9, -125]
                assert ar.inflight == 0
            assert not ring.closed                 # a ring passed in stays open
        finally:
            os.close(fd)
            obj.close()
            ring.close()

    run(main, limit=60)


def test_bpf_needs_an_ops_ring(run):
    async def main():
        async with AioRing(4) as ar:
            try:
                ar.chain().bpf(0)
            except TypeError as exc:
                assert "create_ring" in str(exc)
            else:
                raise AssertionError("bpf() on a plain ring must raise")

    run(main)


def test_an_ops_ring_without_bpf_ext_denies_the_op(run):
    async def main():
        ring = ops.OpsRing(8)               # no IORING_SETUP_BPF_EXT: the op is refused
        try:
            async with AioRing(ring=ring) as ar:
                bpf_res, nop_res = await ar.chain().bpf(0).nop()
                assert bpf_res < 0 and nop_res == -125   # and cancels its chain
        finally:
            ring.close()

    run(main)


def test_an_sq_rewind_ring_is_refused():
    ring = loop.make_ring(8)
    try:
        try:
            AioRing(ring=ring)
        except ValueError as exc:
            assert "SQ_REWIND" in str(exc)
        else:
            raise AssertionError("AioRing accepted an SQ_REWIND ring")
    finally:
        ring.close()


def test_bpf_chain_waiting_on_a_socket_keeps_the_loop_running(tcp_pair, run):
    """RECV (no data yet) -> BPF crc32c: the OpsRing's enter waits for the RECV in a
    worker thread; the event loop keeps running, a NOP started meanwhile waits for the
    hand-over and completes after it, and close() during the wait is safe."""
    cli, srv = tcp_pair

    async def main():
        ring = ops.create_ring(16)
        obj, _links = ops.open_example("cksum", ring)
        try:
            ar = AioRing(ring=ring)
            buf = ctypes.create_string_buffer(64)
            desc = ops.buf_descs((ops.IO_BPF_BUF_USER, ctypes.addressof(buf), 64))
            chain = asyncio.ensure_future(ar.chain().recv(srv, buf, nbytes=64).bpf(0, desc))
            for _ in range(500):
                if ar._busy:
                    break
                await asyncio.sleep(0.001)
            assert ar._busy                      # the worker is inside the ring's enter
            nop = asyncio.ensure_future(ar.nop())
            for _ in range(20):
                await asyncio.sleep(0.001)      # the loop runs; the NOP waits
            assert not nop.done() and not chain.done()
            data = os.urandom(64)
            cli.sendall(data)
            n, crc = await chain
            assert n == 64 and crc == _crc32c(data) & 0x7FFFFFFF
            assert await nop == 0
            # closing while the worker waits: close() refuses, aclose() waits for it
            chain = asyncio.ensure_future(ar.chain().recv(srv, buf, nbytes=64).bpf(0, desc))
            for _ in range(500):
                if ar._busy:
                    break
                await asyncio.sleep(0.001)
            assert ar._busy
            try:
                ar.close()
            except RuntimeError as exc:
                assert "aclose" in str(exc)
            else:
                raise AssertionError("close() during the hand-over must raise")
            closing = asyncio.ensure_future(ar.aclose())
            await asyncio.sleep(0.01)
            assert not closing.done()
            cli.sendall(data)                   # lets the worker's enter finish
            await closing
            assert ar.closed and not ring.closed
            n, crc = await chain                # it completed before the ring closed
            assert n == 64 and crc == _crc32c(data) & 0x7FFFFFFF
        finally:
            obj.close()
            ring.close()

    run(main, limit=60)
