"""CPU cost of the runtime checks of issue #13 on the loop_step NOP loop, against a checkout
of an earlier commit (e.g. ``git worktree add /tmp/base 6142d5a``).

    .venv/bin/python bench/loop_safety_cost.py --base /tmp/base [--k 8 32] [--rounds 5]

Each round runs, in a fresh process per tree and alternating, the asm NOPs program of
bench/loop_nops.py (``run_loop_step(1_000_000, K, "jit", "asm")``) 7 times and keeps the
best; time is the process's CPU time (user + system), because wall time on a shared
machine varies far more than the few per cent measured here. Prints both trees' rates and
the CPU-time ratio (median and best over the rounds).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import sys, time
root = sys.argv[1]
for sub in ("src", "tests/designs", "bench"):
    sys.path.insert(0, root + "/" + sub)
import loop_nops
loop_nops.time.perf_counter = time.process_time     # CPU time of the process
n, k = 1_000_000, int(sys.argv[2])
loop_nops.run_loop_step(20_000, k, "jit", "asm")     # warm up: build, JIT, caches
print(min(loop_nops.run_loop_step(n, k, "jit", "asm") for _ in range(7)))
"""


def measure(root: Path, k: int) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(k)], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.split()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="checkout of the earlier commit")
    ap.add_argument("--k", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    for k in args.k:
        times: dict[str, list[float]] = {"base": [], "this": []}
        for _ in range(args.rounds):
            times["base"].append(measure(args.base, k))
            times["this"].append(measure(ROOT, k))
        print(f"K={k}")
        for name, v in times.items():
            rates = " ".join(f"{1 / x:.2f}" for x in v)
            print(f"  {name:5s} M NOPs per CPU second: {rates} (median "
                  f"{1 / statistics.median(v):.2f})")
        print(f"  CPU time this/base: median {statistics.median(times['this']) / statistics.median(times['base']):.3f}"
              f", best {min(times['this']) / min(times['base']):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
