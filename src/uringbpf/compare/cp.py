"""Workload 2: cp with short reads. One op = one read completion; bytes = bytes copied.

Sources: ``pipe`` (a child process writes the data into a pipe in pieces of at most
48 KiB, so 128 KiB reads come back short: the case a linked READ -> WRITE cannot
handle) and ``file`` (a regular file: reads are full except the last). Every copy is
compared byte for byte with the source. Parameters: ``source``, ``size``, ``chunk``.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

from ..designs import loop as L
from ..uring import Buffer, Ring
from ..uring import uapi as u
from .common import (CannotExpress, Ctx, Measure, WrongOutput, c_measure, finish, load_example,
                     run_c)

NAME = "cp"
TITLE = "cp with short reads (pipe source) and a regular file, 128 KiB chunks"
PIECE = 48 * 1024

WRITER = ("import os, sys\n"
          "data = open(sys.argv[1], 'rb').read()\n"
          "for i in range(0, len(data), int(sys.argv[2])):\n"
          "    os.write(1, data[i:i + int(sys.argv[2])])\n")


def cases(quick: bool) -> list[dict]:
    """The parameter sets of this workload (small ones with ``quick``)."""
    size = (2 << 20) + 12345 if quick else (64 << 20) + 12345
    return [{"source": s, "size": size, "chunk": 128 * 1024} for s in ("pipe", "file")]


def label(p: dict) -> str:
    """A case's short name for the table."""
    return f"{p['source']} {p['size'] >> 20} MiB"


def _source_file(p: dict, ctx: Ctx) -> Path:
    path = ctx.workdir / f"cp-src-{p['size']}"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            left = p["size"]
            while left:
                n = min(left, 1 << 20)
                f.write(os.urandom(n))
                left -= n
        os.replace(tmp, path)
    return path


class _Source:
    """The input fd: the file itself, or the read end of a pipe fed by a child process."""

    def __init__(self, p: dict, ctx: Ctx):
        self.path = _source_file(p, ctx)
        self.proc = None
        if p["source"] == "pipe":
            self.proc = subprocess.Popen([sys.executable, "-c", WRITER, str(self.path),
                                          str(PIECE)], stdout=subprocess.PIPE)
            self.fd = self.proc.stdout.fileno()
        else:
            self.fd = os.open(self.path, os.O_RDONLY)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdout.close()
            self.proc.wait()
        else:
            os.close(self.fd)


def _check(src: Path, dst: Path) -> None:
    a, b = src.read_bytes(), dst.read_bytes()
    if a != b:
        diff = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        raise WrongOutput(f"output differs from the source at byte {diff} "
                          f"({len(b)} of {len(a)} bytes)")


def _run_py(p: dict, ctx: Ctx, body) -> Measure:
    src = _Source(p, ctx)
    dst = ctx.workdir / "cp-dst"
    out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        m = body(src.fd, out_fd)
    finally:
        os.close(out_fd)
        src.close()
    _check(src.path, dst)
    return m


def python(p: dict, ctx: Ctx) -> Measure:
    """Ring: read at the file position, write exactly what came back, resume short writes."""
    chunk = p["chunk"]

    def body(in_fd: int, out_fd: int) -> Measure:
        buf = Buffer(chunk)
        reads = short = copied = 0
        with Ring(8, backend="kernel") as ring:
            with ctx.measure():
                while True:
                    ring.prep_read(in_fd, buf, -1, nbytes=chunk)
                    ring.submit()
                    got = ring.wait(1)[0].res
                    if got < 0:
                        raise WrongOutput(f"read: {os.strerror(-got)}")
                    if got == 0:
                        break
                    reads += 1
                    short += got < chunk
                    off = 0
                    while off < got:
                        ring.prep_write(out_fd, buf.view[off:got], -1)
                        ring.submit()
                        w = ring.wait(1)[0].res
                        if w <= 0:
                            raise WrongOutput(f"write: {os.strerror(-w) if w else 'wrote 0'}")
                        off += w
                    copied += got
        return finish(ctx, reads, copied, note=f"{short} short reads")
    return _run_py(p, ctx, body)


def c(p: dict, ctx: Ctx) -> Measure:
    """cbench.c: the same short-read-proof copy in C liburing."""
    src = _source_file(p, ctx)
    dst = ctx.workdir / "cp-dst-c"
    if p["source"] == "pipe":
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(src), str(PIECE)],
                                  stdout=subprocess.PIPE)
        try:
            out = run_c(["cp", "-", str(dst), str(p["chunk"])], stdin=writer.stdout)
        finally:
            writer.stdout.close()
            writer.wait()
    else:
        out = run_c(["cp", str(src), str(dst), str(p["chunk"])])
    _check(src, dst)
    return c_measure(out, note=f"{out['short_reads']} short reads")


def links(p: dict, ctx: Ctx) -> Measure:
    """READ (IOSQE_IO_LINK) -> WRITE of a full chunk: the kernel's own answer without
    BPF. The WRITE's length is fixed when the chain is submitted, so a short read
    writes stale buffer bytes: on the pipe the output comes out wrong, as it would
    in the kernel."""
    chunk = p["chunk"]

    def body(in_fd: int, out_fd: int) -> Measure:
        buf = Buffer(chunk)
        reads = copied = cancelled = 0
        with Ring(8, backend="kernel") as ring:
            with ctx.measure():
                off = 0
                while True:
                    # a file's size is known: its last chain is sized exactly; a pipe's is not
                    n = chunk if p["source"] == "pipe" else min(chunk, p["size"] - off)
                    if n == 0:
                        break
                    ring.prep_read(in_fd, buf, -1, nbytes=n, user_data=1,
                                   flags=u.IOSQE_IO_LINK)
                    ring.prep_write(out_fd, buf, -1, nbytes=n, user_data=2)
                    ring.submit()
                    got = {c_.user_data: c_.res for c_ in ring.wait(2)}
                    while len(got) < 2:
                        got.update({c_.user_data: c_.res for c_ in ring.wait(1)})
                    if got[1] <= 0:
                        break
                    reads += 1
                    off += got[1]
                    # a short READ breaks the link: the kernel cancels the WRITE
                    cancelled += got[2] == -errno.ECANCELED
                    copied += max(got[2], 0)
        if cancelled:
            raise WrongOutput(f"{cancelled} of {reads} linked WRITEs cancelled: a short READ "
                              "breaks the link (kernel semantics); the output lacks that data")
        return finish(ctx, reads, copied, note="READ -> WRITE linked, sizes fixed at submit")
    return _run_py(p, ctx, body)


def loop(p: dict, ctx: Ctx) -> Measure:
    """examples/loop/cp.bpf.c (7.1 loop_step, JIT) via loop.copy_fd: one io_uring_enter."""

    def body(in_fd: int, out_fd: int) -> Measure:
        with ctx.measure():
            res = L.copy_fd(in_fd, out_fd, chunk=p["chunk"], engine="jit")
        if res.error:
            raise WrongOutput(f"cp.bpf.c: {os.strerror(-res.error)}")
        # copy_fd's own window excludes load + JIT: use it for the time, keep our CPU
        return Measure(res.reads or 0, res.copied, res.seconds, ctx.cpu, ctx.enters,
                       ctx.pycalls if ctx.profile else None,
                       f"{res.short_reads} short reads; CPU incl. load+JIT; native driver "
                       "enters not counted")
    return _run_py(p, ctx, body)


def lang(p: dict, ctx: Ctx) -> Measure:
    """examples/python/cp.py: the cp loop_step written in Python, compiled (JIT)."""
    mod = load_example("cp")

    def body(in_fd: int, out_fd: int) -> Measure:
        with ctx.measure():
            res = mod.copy_fd(in_fd, out_fd, chunk=p["chunk"], depth=1)
        if res["ret"] or res.get("error"):
            raise WrongOutput(f"cp.py program: ret {res['ret']}, error {res.get('error')}")
        copied = p["size"]
        return Measure(-(-copied // p["chunk"]), copied, res["seconds"], ctx.cpu, ctx.enters,
                       ctx.pycalls if ctx.profile else None,
                       "ops = chunk equivalents; CPU incl. compile+load; native driver "
                       "enters not counted")
    return _run_py(p, ctx, body)


def opbpf(p: dict, ctx: Ctx) -> Measure:
    """Not expressible with IORING_OP_BPF (raises CannotExpress)."""
    raise CannotExpress("an IORING_OP_BPF op runs between linked SQEs but cannot change the "
                        "next SQE's length: READ -> BPF -> WRITE has the links' short-read "
                        "problem (the app must re-issue)")


def rfc2021(p: dict, ctx: Ctx) -> Measure:
    """No RFC program for this workload (raises CannotExpress)."""
    raise CannotExpress("expressible (a BPF request can reap the READ's CQE and queue a WRITE "
                        "of res bytes, as write_file does) but no cp program exists for it")


IMPLS = {"python": python, "c": c, "links": links, "loop": loop, "opbpf": opbpf,
         "rfc2021": rfc2021, "lang": lang}
