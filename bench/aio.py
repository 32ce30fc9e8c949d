"""uringbpf.aio against the usual asyncio ways of doing the same I/O (ratios, one run).

Two workloads, each run by every implementation in a fresh event loop, in one process:

* ``reads``: 4 KiB reads at random 4 KiB-aligned offsets of a page-cached file, ``--tasks``
  tasks (64) each doing its share of ``--reads`` reads, one read in flight per task.
  uringbpf.aio (``await ring.read``) vs ``loop.run_in_executor(None, os.pread, ...)`` (the
  default executor) vs aiofiles (one file object per task: ``await f.seek``; ``await
  f.read``, the aiofiles API) vs ``aiofiles.os.wrap(os.pread)`` (one executor hop).
* ``echo``: TCP echo over 127.0.0.1, ``--conns`` connections (100), each client sends
  ``--size``-byte messages and waits for the echo, ``--msgs`` times. Server and clients
  live in the same process and use the same API, so a round trip costs two sends and two
  receives of that API. uringbpf.aio vs asyncio streams (default loop) vs asyncio streams
  on uvloop; uringbpf.aio on uvloop is shown too.

Prints operations per second and the ratios uringbpf.aio / each other. Not a test: numbers
vary with the machine and its load (docs/benchmarks.md records a run).
``python bench/aio.py [--only reads|echo] [--reads N] [--tasks N] [--conns N] ...``
aiofiles and uvloop come with ``pip install .[bench]``; rows without them are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from uringbpf.aio import AioRing  # noqa: E402

BLOCK = 4096


def _have(mod: str) -> bool:
    return importlib.util.find_spec(mod) is not None


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _run(kind: str, coro_fn, *args):
    loop = _new_loop(kind)
    try:
        return loop.run_until_complete(coro_fn(*args))
    finally:
        loop.close()


# --------------------------------------------------------------------------- reads
def _offsets(nblocks: int, total: int, tasks: int, seed: int = 1) -> list[list[int]]:
    rnd = random.Random(seed)
    per = total // tasks
    return [[rnd.randrange(nblocks) * BLOCK for _ in range(per)] for _ in range(tasks)]


async def reads_aio(path: str, offs: list[list[int]]) -> float:
    fd = os.open(path, os.O_RDONLY)
    ar = AioRing(256)
    try:
        await ar.read(fd, bytearray(BLOCK), 0)          # bind the loop before timing

        async def task(lst):
            buf = bytearray(BLOCK)
            read = ar.read
            for off in lst:
                if await read(fd, buf, off) != BLOCK:
                    raise RuntimeError("short read")

        t = time.perf_counter()
        await asyncio.gather(*(task(lst) for lst in offs))
        return time.perf_counter() - t
    finally:
        await ar.aclose()
        os.close(fd)


async def reads_executor(path: str, offs: list[list[int]]) -> float:
    fd = os.open(path, os.O_RDONLY)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.gather(*(loop.run_in_executor(None, os.pread, fd, BLOCK, 0)
                               for _ in range(64)))    # start the worker threads

        async def task(lst):
            for off in lst:
                if len(await loop.run_in_executor(None, os.pread, fd, BLOCK, off)) != BLOCK:
                    raise RuntimeError("short read")

        t = time.perf_counter()
        await asyncio.gather(*(task(lst) for lst in offs))
        return time.perf_counter() - t
    finally:
        os.close(fd)


async def reads_aiofiles(path: str, offs: list[list[int]]) -> float:
    import aiofiles

    files = [await aiofiles.open(path, "rb", buffering=0) for _ in offs]
    try:
        async def task(f, lst):
            for off in lst:
                await f.seek(off)
                if len(await f.read(BLOCK)) != BLOCK:
                    raise RuntimeError("short read")

        t = time.perf_counter()
        await asyncio.gather(*(task(f, lst) for f, lst in zip(files, offs)))
        return time.perf_counter() - t
    finally:
        for f in files:
            await f.close()


async def reads_aiofiles_pread(path: str, offs: list[list[int]]) -> float:
    import aiofiles.os

    pread = aiofiles.os.wrap(os.pread)
    fd = os.open(path, os.O_RDONLY)
    try:
        async def task(lst):
            for off in lst:
                if len(await pread(fd, BLOCK, off)) != BLOCK:
                    raise RuntimeError("short read")

        t = time.perf_counter()
        await asyncio.gather(*(task(lst) for lst in offs))
        return time.perf_counter() - t
    finally:
        os.close(fd)


def bench_reads(args) -> None:
    size = args.file_mib << 20
    with tempfile.NamedTemporaryFile(dir=args.dir, prefix="aio-bench-") as tmp:
        chunk = os.urandom(1 << 20)
        for _ in range(args.file_mib):
            tmp.write(chunk)
        tmp.flush()
        with open(tmp.name, "rb") as f:             # page-cache it
            while f.read(1 << 20):
                pass
        offs = _offsets(size // BLOCK, args.reads, args.tasks)
        n = sum(len(x) for x in offs)
        rows = [("uringbpf.aio", "asyncio", reads_aio),
                ("run_in_executor(os.pread)", "asyncio", reads_executor)]
        if _have("aiofiles"):
            rows += [("aiofiles (seek+read)", "asyncio", reads_aiofiles),
                     ("aiofiles.os.wrap(os.pread)", "asyncio", reads_aiofiles_pread)]
        print(f"\n4 KiB random reads, {args.file_mib} MiB page-cached file, {args.tasks} tasks, "
              f"{n} reads")
        print(f"{'implementation':32} {'reads/s':>12} {'aio ratio':>10}")
        rates = {}
        for name, loop_kind, fn in rows:
            best = min(_run(loop_kind, fn, tmp.name, offs) for _ in range(args.repeat))
            rates[name] = n / best
        base = rates["uringbpf.aio"]
        for name, rate in rates.items():
            print(f"{name:32} {rate:12,.0f} {base / rate:10.2f}")


# --------------------------------------------------------------------------- echo
async def echo_aio(conns: int, msgs: int, size: int) -> float:
    ar = AioRing(512)
    lst = socket.create_server(("127.0.0.1", 0), backlog=conns)
    addr = lst.getsockname()
    servers = []

    async def serve(fd):
        s = socket.socket(fileno=fd)
        buf = bytearray(65536)
        view = memoryview(buf)
        recv, send = ar.recv, ar.send
        try:
            while True:
                n = await recv(s, buf)
                if not n:
                    return
                off = 0
                while off < n:
                    off += await send(s, view[off:n])
        finally:
            s.close()

    async def acceptor():
        for _ in range(conns):
            fd = await ar.accept(lst)
            servers.append(asyncio.ensure_future(serve(fd)))

    async def client(sock):
        msg = b"x" * size
        buf = bytearray(size)
        view = memoryview(buf)
        recv, send = ar.recv, ar.send
        for _ in range(msgs):
            await send(sock, msg)
            got = 0
            while got < size:
                got += await recv(sock, view[got:])
        sock.shutdown(socket.SHUT_WR)

    try:
        socks = [socket.socket() for _ in range(conns)]
        acc = asyncio.ensure_future(acceptor())
        await asyncio.gather(*(ar.connect(s, addr) for s in socks))
        await acc
        t = time.perf_counter()
        await asyncio.gather(*(client(s) for s in socks))
        dt = time.perf_counter() - t
        await asyncio.gather(*servers)
        for s in socks:
            s.close()
        return dt
    finally:
        lst.close()
        await ar.aclose()


async def echo_streams(conns: int, msgs: int, size: int) -> float:
    async def handle(reader, writer):
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=conns)
    addr = server.sockets[0].getsockname()

    async def client(reader, writer):
        msg = b"x" * size
        for _ in range(msgs):
            writer.write(msg)
            await writer.drain()
            await reader.readexactly(size)
        writer.write_eof()

    pairs = await asyncio.gather(*(asyncio.open_connection(*addr) for _ in range(conns)))
    t = time.perf_counter()
    await asyncio.gather(*(client(r, w) for r, w in pairs))
    dt = time.perf_counter() - t
    for _, w in pairs:
        w.close()
    server.close()
    await server.wait_closed()
    return dt


def bench_echo(args) -> None:
    rows = [("uringbpf.aio", "asyncio", echo_aio), ("asyncio streams", "asyncio", echo_streams)]
    if _have("uvloop"):
        rows += [("asyncio streams on uvloop", "uvloop", echo_streams),
                 ("uringbpf.aio on uvloop", "uvloop", echo_aio)]
    n = args.conns * args.msgs
    print(f"\nTCP echo over 127.0.0.1, {args.conns} connections x {args.msgs} round trips of "
          f"{args.size} B (server and clients in one process)")
    print(f"{'implementation':32} {'round trips/s':>14} {'aio ratio':>10}")
    rates = {}
    for name, loop_kind, fn in rows:
        best = min(_run(loop_kind, fn, args.conns, args.msgs, args.size)
                   for _ in range(args.repeat))
        rates[name] = n / best
    base = rates["uringbpf.aio"]
    for name, rate in rates.items():
        print(f"{name:32} {rate:14,.0f} {base / rate:10.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench/aio.py",
        description="uringbpf.aio vs run_in_executor/aiofiles (random 4 KiB reads) and vs "
                    "asyncio streams/uvloop (TCP echo). Prints rates and the ratios "
                    "uringbpf.aio / other (> 1: uringbpf.aio is faster).")
    ap.add_argument("--only", choices=("reads", "echo"), help="run one workload")
    ap.add_argument("--reads", type=int, default=64_000, help="total reads (default 64000)")
    ap.add_argument("--tasks", type=int, default=64, help="reading tasks (default 64)")
    ap.add_argument("--file-mib", type=int, default=64, help="file size in MiB (default 64)")
    ap.add_argument("--dir", default=None, help="directory for the file (default: $TMPDIR)")
    ap.add_argument("--conns", type=int, default=100, help="TCP connections (default 100)")
    ap.add_argument("--msgs", type=int, default=300,
                    help="round trips per connection (default 300)")
    ap.add_argument("--size", type=int, default=64, help="message size in bytes (default 64)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per row, best kept (default 3)")
    args = ap.parse_args(argv)
    for name in ("reads", "tasks", "file_mib", "conns", "msgs", "size", "repeat"):
        if getattr(args, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} must be > 0")
    if args.tasks > args.reads:
        ap.error("--tasks must be <= --reads")
    missing = [m for m in ("aiofiles", "uvloop") if not _have(m)]
    if missing:
        print(f"(not installed, rows skipped: {', '.join(missing)}; pip install .[bench])")
    if args.only in (None, "reads"):
        bench_reads(args)
    if args.only in (None, "echo"):
        bench_echo(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
