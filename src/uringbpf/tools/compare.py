"""uringbpf compare: one workload, every design (issue #17; docs/compare.md).

Runs the workloads of uringbpf.compare (nop, cp, cksum, echo, stripe) with every
implementation that can express them, checks every run's output, and writes a markdown
table, a JSON file of all runs and (with matplotlib, the "plot" extra) PNG plots. Without
options it runs everything, timed (a few minutes). --quick: small sizes, one verified run
each, no timing claims (the CI smoke test, under a minute). Exit status 1 when a run
failed or an output was wrong (the links rows' wrong output on short reads is expected
and does not count).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from .common import int_in_range

#: the most timed rounds --rounds accepts (each round runs every case once)
MAX_ROUNDS = 1000

HELP = "one workload, every design: verified throughput/CPU/syscall table (#17)"
DESCRIPTION = __doc__.split("\n\n", 1)[1]


def configure(p: argparse.ArgumentParser) -> None:
    """Add the subcommand's options."""
    p.add_argument("--quick", action="store_true",
                   help="small sizes, one verified run per implementation, no timing")
    p.add_argument("-w", "--workload", action="append", metavar="NAME",
                   help="only this workload (repeatable): nop, cp, cksum, echo, stripe")
    p.add_argument("-i", "--impl", action="append", metavar="NAME",
                   help="only this implementation (repeatable): c, python, python-fast, "
                        "links, loop, opbpf, rfc2021, lang, kbuf-copy, kbuf-zc")
    p.add_argument("--rounds", type=int_in_range(1, MAX_ROUNDS), default=5, metavar="N",
                   help=f"timed rounds per implementation (default 5, at most {MAX_ROUNDS})")
    p.add_argument("-o", "--out", type=Path, default=Path("compare-out"),
                   help="directory for compare.md, compare.json and the PNGs")
    p.add_argument("--no-plots", action="store_true", help="do not write PNG plots")


def run(args: argparse.Namespace) -> int:
    """Run the comparison; print the table; return the exit status."""
    from .. import compare  # why: it imports every design; `uringbpf --help` and the other commands must not
    for w in args.workload or []:
        if w not in compare.WORKLOADS:
            print(f"uringbpf compare: unknown workload {w!r}", file=sys.stderr)
            return 2
    for i in args.impl or []:
        if i not in compare.IMPL_ORDER:
            print(f"uringbpf compare: unknown implementation {i!r}", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    records = compare.run(args.workload, args.impl, quick=args.quick, rounds=args.rounds,
                          log=lambda s: print(s, file=sys.stderr, flush=True))
    text = compare.table(records, quick=args.quick)
    (args.out / "compare.md").write_text(text + "\n")
    compare.write_json(records, args.out / "compare.json", args.quick)
    print(text)
    if not args.quick and not args.no_plots:
        if importlib.util.find_spec("matplotlib") is None:   # optional extra "plot"
            print("(no PNGs: matplotlib is not installed; pip install 'uringbpf[plot]')",
                  file=sys.stderr)
        else:
            for path in compare.plots(records, args.out):
                print(f"wrote {path}", file=sys.stderr)
    bad = [r for r in records if r["status"] in ("wrong", "error")]
    expected_wrong = [r for r in bad if r["status"] == "wrong" and r["impl"] == "links"]
    # links are *expected* to be wrong on short reads (that is the point of the row)
    return 1 if len(bad) > len(expected_wrong) else 0
