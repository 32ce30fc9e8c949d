"""``uringbpf verify``: run the verifier on the programs of an object and print its log."""

from __future__ import annotations

import argparse
import sys

from ..bpf.verifier import verify_object
from .common import choose_programs, open_object

HELP = "verify the programs of an ELF object (kernel-style log)"
DESCRIPTION = """\
Verify the programs of an eBPF ELF object exactly as BpfObject.load() does before it
runs them: kfuncs resolved, .rodata frozen (its values are constants, as libbpf
makes them), then the verifier on each program. Prints one line per program (OK with
the kernel's statistics, or REJECTED with the reason) and, with --log-level, the
kernel-style verifier log. It always runs the verifier: load() may instead take an
unchanged program's earlier verdict from the verdict cache (docs/loader.md).

Exit status: 0 when every program passes, 1 when one is rejected or the object
cannot be loaded, 2 on a usage error."""


def configure(p: argparse.ArgumentParser) -> None:
    """Arguments of ``uringbpf verify``."""
    p.add_argument("obj", help="eBPF ELF object")
    p.add_argument("--prog", action="append", metavar="NAME",
                   help="only this program (repeatable; default all)")
    p.add_argument("--log-level", type=int, choices=(0, 1, 2), default=0,
                   help="0: verdicts only (default); 1: the log of rejected programs' "
                        "path; 2: every instruction's state, as the kernel's log_level 2")


def run(args: argparse.Namespace) -> int:
    """Verify and report; 1 if any program is rejected."""

    obj = open_object(args.obj)
    try:
        names = choose_programs(args.obj, obj.programs, args.prog)
        verdicts = verify_object(obj, programs=names, log_level=args.log_level)
    finally:
        obj.close()
    failed = 0
    for v in verdicts:
        if v.error is not None:
            failed += 1
            sys.stdout.write(f"{v.name}: REJECTED: {v.error.message}\n")
            sys.stdout.write(v.error.log)
            continue
        if args.log_level:
            sys.stdout.write(v.result.log)
        sys.stdout.write(f"{v.name}: OK ({v.result.prog_type}) "
                         f"{v.result.stats_line().splitlines()[0]}\n")
    return 1 if failed else 0
