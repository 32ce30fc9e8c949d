"""``uringbpf bench [NAME ...]``: run the benchmark scripts of a source checkout.

The scripts live in ``bench/`` at the top of the repository (they compile C on the fly
and print ratios measured side by side in one run), so this command only works from a
checkout; an installed wheel has no bench/ directory and says so.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def bench_dir() -> Path | None:
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "bench"
        if (parent / "pyproject.toml").exists() and candidate.is_dir():
            return candidate
    return None


def main(argv: list[str]) -> int:
    directory = bench_dir()
    if directory is None:
        print("uringbpf bench: no bench/ directory (run from a source checkout)", file=sys.stderr)
        return 2
    scripts = sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))
    if argv:
        wanted = {name.removesuffix(".py") for name in argv}
        unknown = wanted - {p.stem for p in scripts}
        if unknown:
            print(f"uringbpf bench: unknown benchmark(s): {', '.join(sorted(unknown))}; "
                  f"have: {', '.join(p.stem for p in scripts)}", file=sys.stderr)
            return 2
        scripts = [p for p in scripts if p.stem in wanted]
    status = 0
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        status |= subprocess.call([sys.executable, str(script)])
    return status
