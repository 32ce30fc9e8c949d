"""Workload 5: the kbuf stripe target over NBD on 127.0.0.1. One op = one NBD request.

The target (designs/kbuf/examples/stripe: 4 backing files, 64 KiB chunks) is served
over NBD by its own server (``engine="native"``); the client (stripe.nbd.NbdClient) keeps
``qd`` requests in flight. Cases: 4 KiB random, 128 KiB and 1 MiB sequential, each read
and write. Checked: every reply succeeds; writes carry a per-offset pattern that the
next read of the same case compares against (reads run after the writes of their size).
Implementations are the target's modes: ``kbuf-copy`` (the server copies through user
memory) and ``kbuf-zc`` (zero copy: the REGISTER chain). The other designs have no block
target: the table says so. CPU per op is this process's CPU: client + NBD server + target.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from ..designs import kbuf
from .common import CannotExpress, Ctx, Measure, WrongOutput, finish

# The stripe example is imported as the top-level package "stripe", as bench/stripe.py and
# its own server script do (its modules import each other as stripe.*).
_EXAMPLES = str(Path(kbuf.__file__).resolve().parent / "examples")
if _EXAMPLES not in sys.path:
    sys.path.insert(0, _EXAMPLES)
from stripe import nbd  # noqa: E402
from stripe.server import StripeNbd  # noqa: E402

NAME = "stripe"
TITLE = "stripe target over NBD (kbuf design), qd 16"
QD = 16
FILE_SIZE = 8 << 20


def cases(quick: bool) -> list[dict]:
    """The parameter sets of this workload (small ones with ``quick``)."""
    out = []
    for size, pattern, n_full in ((4096, "rand", 4000), (131072, "seq", 800), (1 << 20, "seq", 120)):
        n = max(8, n_full // 20) if quick else n_full
        for op in ("write", "read"):
            out.append({"size": size, "pattern": pattern, "op": op, "n": n})
    return out


def label(p: dict) -> str:
    """A case's short name for the table."""
    s = p["size"]
    return f"{s >> 10} KiB {p['pattern']} {p['op']}" if s < 1 << 20 else f"1 MiB seq {p['op']}"


def _offsets(p: dict, size: int) -> list[int]:
    n, blk = p["n"], p["size"]
    if p["pattern"] == "rand":
        rnd = random.Random(17)
        return [rnd.randrange(size // blk) * blk for _ in range(n)]
    return [(i * blk) % size for i in range(n)]


def _pattern(off: int, n: int) -> bytes:
    seed = (off // 4096 * 2654435761) & 0xFFFFFFFF
    return (seed.to_bytes(4, "little") * (n // 4 + 1))[:n]


def _backing(ctx: Ctx) -> list[str]:
    paths = []
    for i in range(4):
        path = ctx.workdir / f"stripe-disk{i}"
        if not path.exists():
            path.write_bytes(bytes(FILE_SIZE))
        paths.append(str(path))
    return paths


def _run(p: dict, ctx: Ctx, mode: str) -> Measure:
    paths = _backing(ctx)
    blk = p["size"]
    with StripeNbd(paths, 65536, mode, queue_depth=QD, engine="native") as srv:
        client = nbd.NbdClient("127.0.0.1", srv.port)
        try:
            offs = _offsets(p, client.size)
            if p["op"] == "read":        # the data a read must find: written first, untimed
                for off in sorted(set(offs)):
                    client.write(off, _pattern(off, blk))
            bad = 0
            expect: dict[int, int] = {}
            with ctx.measure():
                inflight = 0
                for off in offs:
                    if p["op"] == "write":
                        expect[client.send(nbd.CMD_WRITE, off, data=_pattern(off, blk))] = off
                    else:
                        expect[client.send(nbd.CMD_READ, off, blk)] = off
                    inflight += 1
                    if inflight == QD:
                        cookie, err, data = client.recv()
                        bad += err != 0 or (p["op"] == "read" and
                                            data != _pattern(expect[cookie], blk))
                        inflight -= 1
                while inflight:
                    cookie, err, data = client.recv()
                    bad += err != 0 or (p["op"] == "read" and data != _pattern(expect[cookie], blk))
                    inflight -= 1
            if p["op"] == "write":       # what was written must read back
                for off in sorted(set(offs))[:64]:
                    bad += client.read(off, blk) != _pattern(off, blk)
            client.disconnect()
        finally:
            client.close()
    if bad:
        raise WrongOutput(f"{bad} requests failed or returned wrong data")
    return finish(ctx, len(offs), len(offs) * blk, note="client+server+target in one process")


def kbuf_copy(p: dict, ctx: Ctx) -> Measure:
    """The stripe target in copy mode."""
    return _run(p, ctx, "copy")


def kbuf_zc(p: dict, ctx: Ctx) -> Measure:
    """The stripe target in zero-copy mode (REGISTER chain)."""
    return _run(p, ctx, "zc")


def _none(why: str):
    def impl(p: dict, ctx: Ctx) -> Measure:
        raise CannotExpress(why)
    return impl


IMPLS = {
    "kbuf-copy": kbuf_copy, "kbuf-zc": kbuf_zc,
    "c": _none("no C liburing NBD stripe server exists here (the target is the kbuf design's)"),
    "python": _none("the stripe target's server ring is the kbuf design (its copy mode is the "
                    "plain-Python-ring baseline)"),
    "loop": _none("loop_step has no kernel-buffer table: the block target needs kbuf's "
                  "REGISTER chain (or copies, which kbuf-copy measures)"),
    "opbpf": _none("IORING_OP_BPF could checksum a block, but a block target is a server "
                   "ring (kbuf), not a per-op program"),
    "rfc2021": _none("the RFC has no kernel-buffer import: no block target"),
}
