"""Copy a file (or stdin) with examples/loop/cp.bpf.c: short-read-proof, one io_uring_enter.

    python examples/loop/cp.py SRC DST [--chunk 131072] [--depth 4] [--engine jit|interp]
                               [--executor emulated|kernel|auto]

SRC may be ``-`` (stdin: a pipe, where reads come back short); each write is exactly as
long as the read before it, which a linked read->write pair cannot guarantee.
``--depth N`` (1..8) keeps N chunks in flight when SRC and DST are regular files; for a
pipe or socket it is clamped to 1.  ``--executor kernel`` runs the program in the
kernel's own loop (Linux >= 7.1; docs/kernel.md).
"""

from __future__ import annotations

import argparse
import os
import sys

from uringbpf.designs import loop


def copy(src: str, dst: str, chunk: int = 128 * 1024, engine: str = "jit",
         depth: int = 1, executor: str = "emulated") -> loop.CopyResult:
    """Copy file ``src`` (``-``: stdin) to ``dst`` with cp.bpf.c; returns the CopyResult."""
    in_fd = sys.stdin.fileno() if src == "-" else os.open(src, os.O_RDONLY)
    out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        return loop.copy_fd(in_fd, out_fd, chunk=chunk, engine=engine, depth=depth,
                            executor=executor)
    finally:
        os.close(out_fd)
        if src != "-":
            os.close(in_fd)


def main() -> None:
    """Command line: ``cp.py SRC DST [--chunk N] [--depth N] [--engine jit|interp] [--executor ...]``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--chunk", type=int, default=128 * 1024)
    ap.add_argument("--depth", type=int, default=1, help="chunks in flight, 1..8")
    ap.add_argument("--engine", choices=("jit", "interp"), default="jit")
    ap.add_argument("--executor", choices=("emulated", "kernel", "auto"), default="emulated")
    args = ap.parse_args()
    res = copy(args.src, args.dst, args.chunk, args.engine, args.depth, args.executor)
    if res.error:
        sys.exit(f"cp: {os.strerror(-res.error)}")
    print(f"copied {res.copied} bytes in {res.reads} reads ({res.short_reads} short), "
          f"depth={res.depth}, engine={res.engine}")


if __name__ == "__main__":
    main()
