"""uringbpf.aio against the usual asyncio ways of doing the same I/O (ratios, one run).

Two workloads, each run by every implementation in a fresh event loop, in one process:

* ``reads``: 4 KiB reads at random 4 KiB-aligned offsets of a page-cached file, ``--tasks``
  tasks (64) each doing its share of ``--reads`` reads, one read in flight per task.
  uringbpf.aio (``await ring.read``) vs ``loop.run_in_executor(None, os.pread, ...)`` (the
  default executor) vs aiofiles (one file object per task: ``await f.seek``; ``await
  f.read``, the aiofiles API) vs ``aiofiles.os.wrap(os.pread)`` (one executor hop).
* ``echo``: a TCP echo server over 127.0.0.1 with ``--conns`` connections (100); one
  load-generating client process (asyncio protocols on uvloop when installed, the same for
  every server) sends ``--size``-byte messages and waits for each echo, ``--msgs`` times
  per connection. Servers: uringbpf.aio (``await recv``; ``await send``) vs asyncio
  streams (default loop) vs asyncio streams on uvloop; uringbpf.aio on uvloop is shown too.

Prints, per implementation, operations per second and the CPU time the process spent per
operation (all its threads), each with the ratio uringbpf.aio / that implementation
(> 1: uringbpf.aio is ahead). Rows run interleaved ``--repeat`` times, best kept. Not a
test: numbers vary with the machine and its load (docs/benchmarks.md records a run).
``python bench/aio.py [--only reads|echo] [--reads N] [--tasks N] [--conns N] ...``
aiofiles and uvloop come with ``pip install .[bench]``; rows without them are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
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


def _table(rows, n: int, unit: str, repeat: int, *args) -> tuple[dict, dict]:
    """Run every row ``repeat`` times, interleaved (load drifts hit every row alike); keep
    each row's best rate and least CPU; print them with the ratios aio / row; return
    (seconds, CPU seconds) per row."""
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for _ in range(repeat):
        for name, loop_kind, fn in rows:
            w, c = _run(loop_kind, fn, *args)
            wall[name] = min(w, wall.get(name, w))
            cpu[name] = min(c, cpu.get(name, c))
    base = rows[0][0]
    print(f"{'implementation':32} {unit + '/s':>14} {'aio ratio':>9} {'CPU us/' + unit:>14} "
          f"{'aio ratio':>9}")
    for name, _, _ in rows:
        print(f"{name:32} {n / wall[name]:14,.0f} {wall[name] / wall[base]:9.2f} "
              f"{cpu[name] / n * 1e6:14.1f} {cpu[name] / cpu[base]:9.2f}")
    return wall, cpu


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

        t, c = time.perf_counter(), time.process_time()
        await asyncio.gather(*(task(lst) for lst in offs))
        return time.perf_counter() - t, time.process_time() - c
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

        t, c = time.perf_counter(), time.process_time()
        await asyncio.gather(*(task(lst) for lst in offs))
        return time.perf_counter() - t, time.process_time() - c
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

        t, c = time.perf_counter(), time.process_time()
        await asyncio.gather(*(task(f, lst) for f, lst in zip(files, offs)))
        return time.perf_counter() - t, time.process_time() - c
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

        t, c = time.perf_counter(), time.process_time()
        await asyncio.gather(*(task(lst) for lst in offs))
        return time.perf_counter() - t, time.process_time() - c
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
        _table(rows, n, "read", args.repeat, tmp.name, offs)


# --------------------------------------------------------------------------- echo
CLIENT = r"""
import asyncio, json, sys, time
conns, msgs, size, port = map(int, sys.argv[1:5])
try:
    import uvloop
    loop = uvloop.new_event_loop()
except ImportError:
    loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
msg = b"x" * size


class Client(asyncio.Protocol):
    def __init__(self, done):
        self.done, self.left, self.got = done, msgs, 0

    def connection_made(self, transport):
        self.t = transport
        transport.write(msg)

    def data_received(self, data):
        self.got += len(data)
        if self.got >= size:
            self.got -= size
            self.left -= 1
            if self.left:
                self.t.write(msg)
            else:
                self.t.close()
                self.done.set_result(None)


async def main():
    dones = [loop.create_future() for _ in range(conns)]
    # connect everybody first, then time the round trips
    ts = [await loop.create_connection(lambda d=d: Client(d), "127.0.0.1", port) for d in dones]
    t = time.perf_counter()
    await asyncio.gather(*dones)
    print(json.dumps({"seconds": time.perf_counter() - t}))

loop.run_until_complete(main())
"""


async def _drive(port: int, args) -> float:
    """Run the load generator (another process) against the server on ``port``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(args.conns), str(args.msgs), str(args.size),
        str(port), stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"echo client failed ({proc.returncode})")
    return json.loads(out)["seconds"]


async def _aio_server(args, serve) -> tuple[float, float]:
    """Accept ``args.conns`` connections through one AioRing, run ``serve(ring, sock)`` on
    each, drive the client; (seconds, CPU seconds of this process)."""
    ar = AioRing(512)
    lst = socket.create_server(("127.0.0.1", 0), backlog=args.conns)

    async def handle(fd):
        s = socket.socket(fileno=fd)
        try:
            await serve(ar, s)
        finally:
            s.close()

    async def acceptor():
        handlers = []
        for _ in range(args.conns):
            handlers.append(asyncio.ensure_future(handle(await ar.accept(lst))))
        await asyncio.gather(*handlers)

    try:
        acc = asyncio.ensure_future(acceptor())
        c = time.process_time()
        dt = await _drive(lst.getsockname()[1], args)
        c = time.process_time() - c
        await acc
        return dt, c
    finally:
        lst.close()
        await ar.aclose()


async def _serve_recv_send(ar: AioRing, s: socket.socket) -> None:
    buf = bytearray(65536)
    view = memoryview(buf)
    recv, send = ar.recv, ar.send
    while True:
        n = await recv(s, buf)
        if not n:
            return
        off = 0
        while off < n:
            off += await send(s, view[off:n])


async def _serve_stream(ar: AioRing, s: socket.socket) -> None:
    st = ar.stream(s)
    try:
        while True:
            data = await st.read(65536)
            if not data:
                return
            st.write(data)
            await st.drain()
    finally:
        await st.aclose()


async def echo_aio(args) -> tuple[float, float]:
    """uringbpf.aio with ``await ring.recv`` + ``await ring.send`` per round trip."""
    return await _aio_server(args, _serve_recv_send)


async def echo_aio_stream(args) -> tuple[float, float]:
    """The same server on AioStream: a multishot recv per connection, writes not awaited
    (the shape of the asyncio streams server below)."""
    return await _aio_server(args, _serve_stream)


async def echo_streams(args) -> float:
    async def handle(reader, writer):
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=args.conns)
    try:
        c = time.process_time()
        dt = await _drive(server.sockets[0].getsockname()[1], args)
        return dt, time.process_time() - c
    finally:
        server.close()
        await server.wait_closed()


def bench_echo(args) -> None:
    rows = [("uringbpf.aio AioStream", "asyncio", echo_aio_stream),
            ("uringbpf.aio recv/send", "asyncio", echo_aio),
            ("asyncio streams", "asyncio", echo_streams)]
    if _have("uvloop"):
        rows += [("asyncio streams on uvloop", "uvloop", echo_streams),
                 ("uringbpf.aio AioStream on uvloop", "uvloop", echo_aio_stream),
                 ("uringbpf.aio recv/send on uvloop", "uvloop", echo_aio)]
    n = args.conns * args.msgs
    print(f"\nTCP echo server over 127.0.0.1: {args.conns} connections x {args.msgs} round "
          f"trips of {args.size} B, driven by one client process "
          f"({'uvloop' if _have('uvloop') else 'asyncio'} protocols)")
    wall, cpu = _table(rows, n, "rt", args.repeat, args)
    # the await path (what asyncio-style code written against uringbpf.aio runs) against
    # the streams servers, each on the same loop kind
    pairs = [("uringbpf.aio recv/send", "asyncio streams")]
    if _have("uvloop"):
        pairs += [("uringbpf.aio recv/send", "asyncio streams on uvloop"),
                  ("uringbpf.aio recv/send on uvloop", "asyncio streams on uvloop")]
    for mine, other in pairs:
        print(f"{mine} vs {other}: {wall[other] / wall[mine]:.2f}x round trips/s, "
              f"{cpu[other] / cpu[mine]:.2f}x less CPU per round trip")


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
