"""``uringbpf bench``: list the benchmarks of a source checkout, run the one named.

The scripts live in ``bench/`` at the top of the repository (they build C on the fly
and print ratios measured side by side in one run), so this command works only from a
checkout; an installed wheel has no bench/ directory and says so.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

from ..bpf import engines
from .common import CommandError

HELP = "list the benchmarks in bench/ or run one (source checkout only)"
DESCRIPTION = """\
Without NAME, list the benchmarks of bench/ with a one-line summary each. With NAME,
run that benchmark; arguments after NAME go to it ('uringbpf bench cp --help' shows
its own options). 'uringbpf bench all' runs every benchmark in turn (minutes).
Benchmarks print ratios measured side by side; docs/benchmarks.md records them."""


def configure(p: argparse.ArgumentParser) -> None:
    """Arguments of ``uringbpf bench``."""
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="benchmark to run ('all' for every one); omit to list them")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="arguments passed to the benchmark")


def bench_dir() -> Path | None:
    """The checkout's ``bench/`` directory, or None outside a source checkout."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "bench"
        if (parent / "pyproject.toml").exists() and candidate.is_dir():
            return candidate
    return None


def _summary(script: Path) -> str:
    """First line of the script's docstring (read without running it)."""
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    return doc.strip().splitlines()[0] if doc else ""


def run(args: argparse.Namespace) -> int:
    """List, or run the named benchmark(s); the status is the benchmark's."""
    directory = bench_dir()
    if directory is None:
        raise CommandError("no bench/ directory: benchmarks run from a source checkout "
                           "(git clone, then 'make bench' or 'uringbpf bench NAME')")
    scripts = {p.stem: p for p in sorted(directory.glob("*.py")) if not p.name.startswith("_")}
    if args.name is None:
        width = max(map(len, scripts), default=0)
        for name, script in scripts.items():
            print(f"{name:<{width}}  {_summary(script)}")
        print("\nrun one with 'uringbpf bench NAME [ARGS]', all with 'uringbpf bench all'")
        return 0
    if args.name == "all":
        if args.bench_args:
            raise CommandError("'bench all' takes no benchmark arguments")
        chosen = list(scripts.values())
    else:
        name = args.name.removesuffix(".py")
        if name not in scripts:
            raise CommandError(f"no benchmark {args.name!r} (benchmarks: "
                               f"{', '.join(scripts)}, or all)")
        chosen = [scripts[name]]
    # the benchmarks time the JIT against the interpreter and C: without llvmlite one line
    # saying what to install, not a traceback per script
    engines.require_llvmlite("uringbpf bench (the benchmarks time the JIT)")
    status = 0
    for script in chosen:
        if len(chosen) > 1:
            print(f"== {script.stem}", flush=True)
        rc = subprocess.call([sys.executable, str(script), *args.bench_args])
        status = status or (1 if rc else 0)
    return status
