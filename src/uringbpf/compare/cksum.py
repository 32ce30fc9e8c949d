"""Workload 3: read -> crc32c -> write, per block. One op = one block; bytes = bytes copied.

Each block is read at its offset, its crc32c (Castagnoli, ``bpf_crc32c`` semantics) is
computed between the read and the write, then it is written at the same offset. Checked:
the output equals the input and every block's crc32c equals a reference computed by the
harness (``kbuf.crc32c_bytes``, itself checked against a bit-by-bit table on the first
block). Parameters: ``size``, ``block``.
"""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

from ..designs import loop as L
from ..designs import ops
from ..designs.kbuf import crc32c, crc32c_bytes
from ..uring import Buffer, Ring
from ..uring import uapi as u
from .common import (CannotExpress, Ctx, Measure, WrongOutput, c_measure, finish, load_example,
                     run_c)

NAME = "cksum"
TITLE = "read -> crc32c -> write, 64 KiB blocks"


def cases(quick: bool) -> list[dict]:
    """The parameter sets of this workload (small ones with ``quick``)."""
    return [{"size": (1 << 20) + 4321 if quick else (8 << 20) + 4321, "block": 65536}]


def label(p: dict) -> str:
    """A case's short name for the table."""
    return f"{p['size'] >> 20} MiB / {p['block'] >> 10} KiB"


def _crc_table_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


_refs: dict = {}


def _source(p: dict, ctx: Ctx) -> tuple[Path, list[int]]:
    """The input file and the reference crc32c of each block."""
    path = ctx.workdir / f"cksum-src-{p['size']}"
    key = (str(path), p["block"])
    if not path.exists():
        path.write_bytes(os.urandom(p["size"]))
        _refs.pop(key, None)
        _refs.pop(("fnv", str(path)), None)
    if key not in _refs:
        data = path.read_bytes()
        blk = p["block"]
        refs = [crc32c_bytes(data[i:i + blk]) for i in range(0, len(data), blk)]
        if crc32c_bytes(data[:4096]) != _crc_table_crc32c(data[:4096]):
            raise RuntimeError("reference crc32c disagrees with the bitwise definition")
        _refs[key] = refs
    return path, _refs[key]


def _check(src: Path, dst: Path, want: list[int], got: list[int]) -> None:
    if src.read_bytes() != dst.read_bytes():
        raise WrongOutput("output file differs from the input")
    if [g & 0xFFFFFFFF for g in got] != want:
        bad = next(i for i, (a, b) in enumerate(zip(got, want)) if a & 0xFFFFFFFF != b) \
            if len(got) == len(want) else -1
        raise WrongOutput(f"crc32c wrong (block {bad}; {len(got)} of {len(want)} blocks)")


def _files(p: dict, ctx: Ctx, tag: str):
    src, want = _source(p, ctx)
    dst = ctx.workdir / f"cksum-dst-{tag}"
    return src, want, dst


def python(p: dict, ctx: Ctx) -> Measure:
    """Ring READ, crc32c in native code (kbuf.crc32c) from Python, Ring WRITE."""
    src, want, dst = _files(p, ctx, "py")
    blk = p["block"]
    buf = Buffer(blk)
    crcs: list[int] = []
    in_fd, out_fd = os.open(src, os.O_RDONLY), os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with Ring(8, backend="kernel") as ring:
            with ctx.measure():
                off = 0
                while True:
                    ring.prep_read(in_fd, buf, off, nbytes=blk)
                    ring.submit()
                    got = ring.wait(1)[0].res
                    if got <= 0:
                        break
                    crcs.append(crc32c(buf.addr, got))
                    ring.prep_write(out_fd, buf.view[:got], off)
                    ring.submit()
                    if ring.wait(1)[0].res != got:
                        raise WrongOutput("short write")
                    off += got
    finally:
        os.close(in_fd)
        os.close(out_fd)
    _check(src, dst, want, crcs)
    return finish(ctx, len(crcs), p["size"])


def c(p: dict, ctx: Ctx) -> Measure:
    """cbench.c: READ, crc32c in C (byte-wise table), WRITE."""
    src, want, dst = _files(p, ctx, "c")
    out = run_c(["cksum", str(src), str(dst), str(p["block"])])
    _check(src, dst, want, out["crcs"])
    return c_measure(out, note="byte-wise table crc32c")


def _chain(ring, in_fd: int, out_fd: int, size: int, blk: int, addr: int, buf, last_crc,
           ctx: Ctx) -> list[int]:
    """Per block: READ (link) -> OP_BPF crc32c (link) -> WRITE, one submit, wait 3 CQEs."""
    crcs = []
    with ctx.measure():
        for off in range(0, size, blk):
            n = min(blk, size - off)
            ring.prep_read(in_fd, buf, off, nbytes=n, user_data=1, flags=u.IOSQE_IO_LINK)
            ring.prep_bpf(0, ops.buf_descs((ops.IO_BPF_BUF_USER, addr, n)), user_data=2,
                          flags=u.IOSQE_IO_LINK)
            ring.prep_write(out_fd, buf, off, nbytes=n, user_data=3)
            ring.submit()
            got = {c_.user_data: c_.res for c_ in ring.wait(3)}
            while len(got) < 3:
                got.update({c_.user_data: c_.res for c_ in ring.wait(1)})
            if got[1] != n or got[2] < 0 or got[3] != n:
                raise WrongOutput(f"chain results {got} at offset {off}")
            crcs.append(last_crc())
    return crcs


def opbpf(p: dict, ctx: Ctx) -> Measure:
    """READ -> IORING_OP_BPF (ops/examples/cksum.bpf.c, JIT) -> WRITE, linked, per block."""
    src, want, dst = _files(p, ctx, "opbpf")
    blk = p["block"]
    buf = Buffer(blk)
    in_fd, out_fd = os.open(src, os.O_RDONLY), os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with ops.create_ring(8) as ring:
            obj, _ = ops.open_example("cksum", ring, engine="jit")
            try:
                crcs = _chain(ring, in_fd, out_fd, p["size"], blk, buf.addr, buf,
                              lambda: int(obj.bss.last_crc), ctx)
            finally:
                obj.close()
    finally:
        os.close(in_fd)
        os.close(out_fd)
    _check(src, dst, want, crcs)
    return finish(ctx, len(crcs), p["size"], enters=None,
                  note="3 linked SQEs per block; enters made by ops.c: not counted")


def lang(p: dict, ctx: Ctx) -> Measure:
    """The same chain with examples/python/crc32c_op.py (the op written in Python, JIT)."""
    mod = load_example("crc32c_op")
    src, want, dst = _files(p, ctx, "lang")
    blk = p["block"]
    mem = mmap.mmap(-1, blk)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    in_fd, out_fd = os.open(src, os.O_RDONLY), os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with ops.create_ring(8) as ring:
            with mod.cksum.attach(ring, "jit"):
                crcs = _chain(ring, in_fd, out_fd, p["size"], blk, addr, mem,
                              lambda: int(mod.st.last_crc), ctx)
    finally:
        os.close(in_fd)
        os.close(out_fd)
        del addr
        mem.close()
    _check(src, dst, want, crcs)
    return finish(ctx, len(crcs), p["size"], enters=None,
                  note="Python-authored op, JIT; enters made by ops.c: not counted")


def loop(p: dict, ctx: Ctx) -> Measure:
    """examples/loop/cksum.bpf.c: the loop_step copies and hashes in one enter, but its
    hash is FNV-1a of the whole stream (the example's choice), not crc32c per block."""
    src, _want, dst = _files(p, ctx, "loop")
    in_fd, out_fd = os.open(src, os.O_RDONLY), os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with ctx.measure():
            res = L.copy_fd(in_fd, out_fd, checksum=True, engine="jit")
    finally:
        os.close(in_fd)
        os.close(out_fd)
    data = src.read_bytes()
    if res.error or dst.read_bytes() != data:
        raise WrongOutput(f"copy wrong (error {res.error})")
    key = ("fnv", str(src))
    if key not in _refs:             # pure-Python FNV over the file: once per case
        _refs[key] = L.fnv1a32(data)
    if res.fnv1a != _refs[key]:
        raise WrongOutput("FNV-1a of the stream wrong")
    blocks = -(-res.copied // p["block"])
    return Measure(blocks, res.copied, res.seconds, ctx.cpu, ctx.enters,
                   ctx.pycalls if ctx.profile else None,
                   "FNV-1a of the stream, not crc32c; ops = 64 KiB equivalents; CPU and "
                   "Python calls incl. load+JIT")


def links(p: dict, ctx: Ctx) -> Measure:
    """Not expressible with links alone (raises CannotExpress)."""
    raise CannotExpress("a link chain has no step between READ and WRITE that computes")


def rfc2021(p: dict, ctx: Ctx) -> Measure:
    """No RFC program for this workload (raises CannotExpress)."""
    raise CannotExpress("the RFC's helper set has no checksum over request buffers (its "
                        "programs see their own memory, not the READ's pages); no program")


IMPLS = {"python": python, "c": c, "links": links, "loop": loop, "opbpf": opbpf,
         "rfc2021": rfc2021, "lang": lang}
