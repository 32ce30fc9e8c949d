"""``uringbpf conformance-plugin``: the bpf_conformance plugin protocol."""

from __future__ import annotations

import argparse
import sys

from .common import CommandError

#: the longest program line read from stdin
MAX_LINE = 32 << 20

HELP = "run one program as a bpf_conformance plugin (prints r0 in hex)"
DESCRIPTION = """\
Speak the plugin protocol of the bpf_conformance test runner: the program comes as one
line of hex bytes on stdin (or --program), the optional first argument is the
program's memory as hex bytes; the program runs with r1 = that memory, r2 = its length,
and r0 is printed in hex. On failure the message goes to stdout and stderr and the
exit status is 1. See docs/conformance.md."""


def configure(p: argparse.ArgumentParser) -> None:
    """Arguments of ``uringbpf conformance-plugin``."""
    p.add_argument("memory", nargs="?", default="", metavar="MEMORY-HEX",
                   help="the program's memory as hex bytes separated by spaces")
    p.add_argument("--program", metavar="HEX",
                   help="the program as hex bytes (default: one line read from stdin)")
    eng = p.add_mutually_exclusive_group()
    eng.add_argument("--jit", dest="engine", action="store_const", const="jit",
                     help="run with the JIT (checked: faults are reported, never crash)")
    eng.add_argument("--interpret", dest="engine", action="store_const", const="interp",
                     help="run with the interpreter (default)")
    p.add_argument("--elf", action="store_true",
                   help="the program bytes are an ELF object (the runner's --elf mode)")


def run(args: argparse.Namespace) -> int:
    """Run the program; print r0 (status 0) or the error (status 1)."""
    from ..bpf.conformance import decode_hex, execute  # why: it loads LLVM (the JIT); `uringbpf --help` and the other commands must not

    if args.program is not None:
        program_hex = args.program
    else:
        # one line, bounded: `< /dev/zero` must not fill memory (1M instructions as hex
        # pairs are 24 MiB)
        program_hex = sys.stdin.readline(MAX_LINE + 1)
        if len(program_hex) > MAX_LINE:
            raise CommandError(f"<stdin>: a program line longer than {MAX_LINE} characters")
    rc, out = execute(decode_hex(program_hex), decode_hex(args.memory),
                      args.engine or "interp", args.elf)
    sys.stdout.write(out)
    sys.stdout.flush()
    if rc:
        sys.stderr.write(out)
    return rc
