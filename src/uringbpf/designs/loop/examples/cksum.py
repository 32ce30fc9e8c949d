"""Copy a stream and FNV-1a-hash it on the way with examples/loop/cksum.bpf.c.

    python examples/loop/cksum.py SRC DST [--engine jit|interp] [--executor emulated|kernel|auto]

The program reads the data itself (the buffer is the ring's parameter region), so the
checksum is computed between each read and its write, inside the ring's loop.
``--executor kernel`` runs it in the kernel's own loop (Linux >= 7.1; docs/kernel.md).
"""

from __future__ import annotations

import argparse
import os
import sys

from uringbpf.designs import loop


def copy_and_hash(src: str, dst: str, engine: str = "jit",
                  executor: str = "emulated") -> loop.CopyResult:
    """Copy ``src`` to ``dst`` with cksum.bpf.c; returns the CopyResult (with ``fnv1a``)."""
    in_fd = sys.stdin.fileno() if src == "-" else os.open(src, os.O_RDONLY)
    out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        return loop.copy_fd(in_fd, out_fd, checksum=True, engine=engine, executor=executor)
    finally:
        os.close(out_fd)
        if src != "-":
            os.close(in_fd)


def main() -> None:
    """Command line: ``cksum.py SRC DST [--engine jit|interp] [--executor ...]``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--engine", choices=("jit", "interp"), default="jit")
    ap.add_argument("--executor", choices=("emulated", "kernel", "auto"), default="emulated")
    args = ap.parse_args()
    res = copy_and_hash(args.src, args.dst, args.engine, args.executor)
    if res.error:
        sys.exit(f"cksum: {os.strerror(-res.error)}")
    print(f"copied {res.copied} bytes, fnv1a32 = {res.fnv1a:#010x}, engine={res.engine}")


if __name__ == "__main__":
    main()
