"""``uringbpf demo``: a tour of what works, one section per feature.

The demo is a list of sections (:data:`SECTIONS`); each is ``(name, title, fn)`` where
``fn(opts)`` prints its own results and returns nothing. Later designs add their section
by appending to the list (or calling :func:`add_section`) — nothing else changes.

Section ``copy`` (the ring layer): copy a file through linked READ -> WRITE pairs, several
pairs in flight, and print the throughput. It also shows the limit of links that the BPF
designs lift: the write's length is fixed when the pair is queued, so the short read at
the end of the file cancels its write (-ECANCELED) and user space must finish the tail.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from .bpf import engines
from .designs import filter as flt
from .designs.filter.cbpf import ABS, JMP, JSET, K, LD, RET, W, jump, stmt
from .tools import demo as command
from .uring import IORING_OP_OPENAT, SQE_IO_LINK, Ring


def _copy_file(ring: Ring, src: int, dst: int, size: int, block: int, depth: int) -> dict:
    """Copy ``size`` bytes of ``src`` to ``dst`` with ``depth`` linked read->write pairs."""
    bufs = [bytearray(block) for _ in range(depth)]
    free = list(range(depth))
    pending: dict[int, tuple[int, int, int]] = {}   # slot -> (offset, length, CQEs left)
    offset = 0
    stats = {"pairs": 0, "short_tail": 0}
    while offset < size or pending:
        while free and offset < size:
            slot = free.pop()
            length = min(block, size - offset)
            buf = bufs[slot]
            # user_data: slot * 2 (+1 for the write)
            ring.prep_read(src, buf, offset, nbytes=block, user_data=slot * 2, flags=SQE_IO_LINK)
            ring.prep_write(dst, buf, offset, nbytes=length, user_data=slot * 2 + 1)
            pending[slot] = (offset, length, 2)
            offset += length
            stats["pairs"] += 1
        ring.submit_and_wait(1)
        for cqe in ring.reap():
            slot, is_write = divmod(cqe.user_data, 2)
            off, length, left = pending[slot]
            if not is_write and cqe.res < 0:
                raise OSError(-cqe.res, f"read at {off}: {os.strerror(-cqe.res)}")
            if is_write and cqe.res == -errno.ECANCELED:
                # the read was short (end of file): the link cut the write; finish it here
                stats["short_tail"] += 1
                n = os.pwrite(dst, memoryview(bufs[slot])[:length], off)
                if n != length:
                    raise OSError(errno.EIO, "short tail write")
            elif is_write and cqe.res != length:
                raise OSError(-cqe.res if cqe.res < 0 else errno.EIO, f"write at {off}")
            if left == 1:
                del pending[slot]
                free.append(slot)
            else:
                pending[slot] = (off, length, left - 1)
    return stats


def section_copy(opts: argparse.Namespace) -> None:
    """The ring layer: copy a file through linked READ -> WRITE pairs and check the copy."""
    size = int(opts.size_mb * (1 << 20)) + 1234        # deliberately not block aligned
    with tempfile.TemporaryDirectory(prefix="uringbpf-demo-") as tmp:
        src_path, dst_path = os.path.join(tmp, "src"), os.path.join(tmp, "dst")
        with open(src_path, "wb") as f:
            chunk = os.urandom(1 << 20)
            left = size
            while left:
                left -= f.write(chunk[:min(left, len(chunk))])
        src = os.open(src_path, os.O_RDONLY)
        dst = os.open(dst_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            with Ring(2 * opts.depth, backend=opts.backend) as ring:
                t0 = time.perf_counter()
                stats = _copy_file(ring, src, dst, size, opts.block, opts.depth)
                os.fsync(dst)
                elapsed = time.perf_counter() - t0
                backend = ring.backend
        finally:
            os.close(src)
            os.close(dst)
        ok = _digest(src_path) == _digest(dst_path)
    print(f"  copied {size / (1 << 20):.1f} MiB through {stats['pairs']} linked read->write "
          f"pairs ({opts.depth} in flight, {opts.block // 1024} KiB blocks, {backend} backend)")
    print(f"  {size / elapsed / (1 << 20):.0f} MiB/s, {stats['pairs'] / elapsed:,.0f} pairs/s; "
          f"identical copy: {'yes' if ok else 'NO'}")
    print(f"  short read at EOF cancelled {stats['short_tail']} linked write(s) "
          "(finished from user space: links cannot pass a result on)")
    _check(ok, "copy: the copy differs from its source")


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: The demo sections, in order: (name, title, fn(opts)).
SECTIONS: list[tuple[str, str, Callable[[argparse.Namespace], None]]] = [
    ("copy", "io_uring ring layer: file copy through linked READ -> WRITE", section_copy),
]


def add_section(name: str, title: str, fn: Callable[[argparse.Namespace], None]) -> None:
    """Register a demo section (designs call this, or append to SECTIONS directly)."""
    SECTIONS.append((name, title, fn))


def parser() -> argparse.ArgumentParser:
    """A stand-alone parser for :func:`main` (the ``uringbpf`` front end builds its own)."""

    p = argparse.ArgumentParser(prog="uringbpf demo", description=command.DESCRIPTION)
    command.configure(p)
    return p


def run(opts: argparse.Namespace) -> int:
    """Run the selected sections; 0 when all ran, 2 for bad options."""
    if opts.list:
        for name, title, _ in SECTIONS:
            print(f"{name:<12} {title}")
        return 0
    if opts.block <= 0 or opts.depth <= 0 or not 0 <= opts.size_mb <= 1 << 20:
        print("uringbpf demo: --block and --depth must be > 0, --size-mb between 0 and 1048576",
              file=sys.stderr)
        return 2
    names = [n for n, _, _ in SECTIONS]
    unknown = set(opts.only or []) - set(names)
    if unknown:
        print(f"uringbpf demo: unknown section(s) {', '.join(sorted(unknown))} "
              f"(sections: {', '.join(names)})", file=sys.stderr)
        return 2
    # The one engine decision (uringbpf.bpf.engines): every section runs its programs on it.
    print(f"engine: {engines.describe(opts.engine)}", flush=True)
    opts.engine = engines.resolve(opts.engine)
    for name, title, fn in SECTIONS:
        if opts.only and name not in opts.only:
            continue
        print(f"== {name}: {title}", flush=True)
        fn(opts)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``uringbpf demo ARGV...`` without the front end (tests call this); the exit status."""
    try:
        opts = parser().parse_args(argv or [])
    except SystemExit as exc:   # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    return run(opts)


# Design sections (each defined in its design module, or driven from examples/).
from .designs import loop as _loop_design  # noqa: E402

_loop_design.register_demo(add_section)

DESIGNS = Path(__file__).resolve().parent / "designs"


class DemoCheckFailed(Exception):
    """A demo section computed a wrong result (the command exits with status 1)."""


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise DemoCheckFailed(what)


def _example_module(folder: str, name: str):
    """Import ``designs/<folder>/examples/<name>.py`` (shipped as package data).

    The examples are scripts that import each other by plain name, so their folder goes
    on ``sys.path`` as when they are run directly.
    """
    path = DESIGNS / folder / "examples"
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    return importlib.import_module(name)


def section_requests(opts: argparse.Namespace) -> None:
    """The 2021 RFC: pingpong across two CQs and a BPF request writing a file."""
    pingpong = _example_module("requests", "pingpong")
    write_file = _example_module("requests", "write_file")
    start = time.perf_counter()
    out = pingpong.run(opts.engine)
    ms = (time.perf_counter() - start) * 1e3
    print(f"  pingpong: two BPF requests bounced a counter through CQ 1 and CQ 2: final values "
          f"{out['slots'][5]} and {out['slots'][6]} in {out['runs']} program runs "
          f"({ms:.0f} ms incl. compile+verify+{opts.engine}, engine={opts.engine})")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "written")
        res = write_file.run(opts.engine, path)
        print(f"  write_file: one BPF request wrote {res['size'] // 1024} KiB in 16 KiB blocks, "
              f"4 in flight; the application saw {len(res['completions'])} completion(s); "
              f"bytes identical: {'yes' if res['ok'] else 'NO'}")
        _check(res["ok"], "requests: write_file wrote different bytes")


def section_ops(opts: argparse.Namespace) -> None:
    """IORING_OP_BPF: a crc32c op linked after each READ, checked against Python."""
    drivers = _example_module("ops", "drivers")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data")
        # 16 blocks on the JIT; the interpreter checksums ~100 KiB/s: 2 blocks there
        data = os.urandom(1 << 20 if opts.engine == "jit" else 128 << 10)
        with open(path, "wb") as f:
            f.write(data)
        start = time.perf_counter()
        out = drivers.run_cksum(path, opts.engine)
        secs = time.perf_counter() - start
        blocks = out["blocks"]
        expect = [_crc32c(data[i:i + 65536]) for i in range(0, len(data), 65536)]
        got = [full for _read, _res, full in blocks]
        print(f"  READ -> IORING_OP_BPF crc32c, linked, {len(blocks)} blocks of 64 KiB: "
              f"results match a Python crc32c: {'yes' if got == expect else 'NO'} "
              f"({secs * 1e3:.0f} ms incl. compile+verify+{opts.engine}, "
              f"engine={opts.engine})")
        _check(got == expect, "ops: the BPF checksums differ from Python's")


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _crc32c_table()
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _crc32c_table(_cache: list = []) -> list[int]:
    if not _cache:
        for n in range(256):
            c = n
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _cache.append(c)
    return _cache


add_section("requests", "2021 RFC BPF requests + multiple CQs (native engine)",
            section_requests)
add_section("ops", "IORING_OP_BPF: a BPF-defined checksum op linked after a READ", section_ops)


def section_filter(opts: argparse.Namespace) -> None:
    """Linux 7.0 cBPF opcode filters: a read-only sandbox for OPENAT, then DENY_REST."""
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    open_flags_at = flt.FilterCtx.u.offset     # ctx->open.flags (low 32 bits)
    read_only = [stmt(LD | W | ABS, open_flags_at), jump(JMP | JSET | K, write_flags, 0, 1),
                 stmt(RET | K, 0), stmt(RET | K, 1)]
    with tempfile.TemporaryDirectory(prefix="uringbpf-demo-") as tmp, Ring(8) as ring:
        path = os.path.join(tmp, "data")
        with open(path, "wb") as f:
            f.write(b"x" * 100)
        rc = flt.register_bpf_filter(ring, IORING_OP_OPENAT, read_only)
        _check(rc == 0, f"filter: registration failed ({rc})")
        opens = [(path, os.O_RDONLY), (path, os.O_WRONLY | os.O_TRUNC),
                 (os.path.join(tmp, "new"), os.O_WRONLY | os.O_CREAT)]
        res = {}
        # One at a time: as in the kernel, a refused SQE ends its submission batch, so the
        # SQEs queued after it would wait for the next io_uring_enter.
        for user_data, (name, flags) in enumerate(opens, 1):
            ring.prep_openat(name, flags, user_data=user_data)
            ring.submit_and_wait(1)
            res.update((c.user_data, c.res) for c in ring.wait(1))
        for fd in (r for r in res.values() if r >= 0):
            os.close(fd)
        print("  OPENAT filter (a 4-instruction classic BPF program on open flags): "
              f"read-only open -> {_errname(res[1])}, O_WRONLY|O_TRUNC -> {_errname(res[2])}, "
              f"O_CREAT -> {_errname(res[3])}; the file is intact: "
              f"{'yes' if os.path.getsize(path) == 100 else 'NO'}")
        _check(res[1] >= 0 and res[2] == res[3] == -errno.EACCES
               and os.path.getsize(path) == 100, "filter: the OPENAT filter misjudged")
        rc = flt.register_bpf_filter(ring, IORING_OP_OPENAT, [stmt(RET | K, 1)],
                                     flags=flt.FILTER_DENY_REST)
        _check(rc == 0, f"filter: DENY_REST registration failed ({rc})")
        n, queued, done, denied = 20000, 0, 0, 0
        start = time.perf_counter()
        while done < n:
            while queued < n and ring.sq_space_left():
                ring.prep_nop(user_data=queued)
                queued += 1
            ring.submit_and_wait(1)
            for c in ring.reap():
                done += 1
                denied += c.res == -errno.EACCES
        secs = time.perf_counter() - start
        print(f"  DENY_REST: every opcode without a filter is refused: {denied} of {n} NOPs "
              f"failed with EACCES before reaching the kernel ({n / secs:,.0f} SQEs/s "
              "through the filter)")
        _check(denied == n, "filter: DENY_REST let a NOP through")


def _errname(res: int) -> str:
    return f"-{errno.errorcode.get(-res, res)}" if res < 0 else f"fd {res}"


def section_stripe(opts: argparse.Namespace) -> None:
    """Kernel buffers: the RAID-0 stripe target over NBD on 127.0.0.1, zero copy."""
    NbdClient = _example_module("kbuf", "stripe.nbd").NbdClient
    StripeNbd = _example_module("kbuf", "stripe.server").StripeNbd

    size, io = 4 << 20, 128 << 10
    data = os.urandom(size)
    with tempfile.TemporaryDirectory(prefix="uringbpf-demo-") as tmp:
        files = [os.path.join(tmp, f"d{i}") for i in range(3)]
        for name in files:
            with open(name, "wb") as f:
                f.truncate(8 << 20)
        with StripeNbd(files, 65536, "auto_zc", port=0) as srv, \
                NbdClient("127.0.0.1", srv.port) as client:
            start = time.perf_counter()
            for off in range(0, size, io):
                client.write(off, data[off:off + io])
            client.flush()
            back = b"".join(client.read(off, io) for off in range(0, size, io))
            secs = time.perf_counter() - start
            on_disk = sum(os.path.getsize(f) for f in files)
            client.disconnect()
            engine = srv.integrity.engine
        ok = back == data
        print(f"  NBD on 127.0.0.1 -> stripe target over 3 files, 64 KiB chunks, auto zero "
              f"copy (ublk AUTO_BUF_REG): wrote and read back {size >> 20} MiB in "
              f"{io >> 10} KiB requests: identical: {'yes' if ok else 'NO'} "
              f"({2 * size / secs / (1 << 20):.0f} MiB/s both ways; "
              f"write checksums by {engine})")
        _check(ok and on_disk == 3 * (8 << 20), "stripe: data read back differs")


add_section("filter", "Linux 7.0 cBPF opcode filters: a read-only OPENAT sandbox, DENY_REST",
            section_filter)
add_section("stripe", "kernel buffers: RAID-0 stripe target over NBD on 127.0.0.1 (zero copy)",
            section_stripe)
