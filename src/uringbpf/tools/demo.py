"""``uringbpf demo``: the tour of the designs (:mod:`uringbpf.demo`)."""

from __future__ import annotations

import argparse

from .common import CommandError, int_in_range

HELP = "run the demo: one short section per design, each checking its own result"
DESCRIPTION = """\
A tour of what uringbpf runs, one section per design, each a few seconds: a file copy
through linked READ -> WRITE on the real io_uring, then the BPF designs (loop_step
struct_ops, cBPF filters, BPF requests, IORING_OP_BPF, kernel buffers). Each section
checks its own result. The first run compiles the example programs (cached after)."""

#: The NBD section talks over sockets: keep SIGPIPE ignored (see :mod:`uringbpf.tools`).
SOCKETS = True


def configure(p: argparse.ArgumentParser) -> None:
    """Arguments of ``uringbpf demo``."""
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only this section (repeatable; --list shows the names)")
    p.add_argument("--list", action="store_true", help="list the sections and exit")
    p.add_argument("--size-mb", type=float, default=32.0, metavar="MIB",
                   help="size of the file the copy section copies (default 32)")
    p.add_argument("--block", type=int_in_range(1, 64 << 20), default=128 * 1024,
                   metavar="BYTES", help="copy block size (default 131072, at most 64 MiB)")
    p.add_argument("--depth", type=int_in_range(1, 4096), default=8, metavar="N",
                   help="read->write pairs in flight in the copy section (default 8, at "
                        "most 4096)")
    p.add_argument("--engine", default="auto", choices=["auto", "jit", "interp"],
                   help="what runs the BPF programs: the JIT (needs llvmlite, the "
                        "uringbpf[jit] extra), the interpreter, or auto (the JIT when "
                        "installed; the demo's first line says which)")
    p.add_argument("--backend", default="auto", choices=["auto", "kernel", "threads"],
                   help="ring backend of the copy section: the kernel's io_uring, the "
                        "thread-pool fallback, or auto (kernel when available)")


def run(args: argparse.Namespace) -> int:
    """Run the demo sections."""
    from ..demo import DemoCheckFailed, run as demo_run  # why: the demo imports designs; `uringbpf --help` and the other commands must not

    try:
        return demo_run(args)
    except DemoCheckFailed as exc:
        raise CommandError(f"check failed: {exc}") from None
