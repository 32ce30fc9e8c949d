"""Soundness fuzzing at scale: `python bench/fuzz_verifier.py [COUNT] [SEED]`.

The same generators as tests/verifier/test_fuzz.py (random, grown-to-the-edge and
mutated programs); every accepted program runs in the interpreter on several buffers
and must not touch memory outside its regions.  Prints the counts.
"""

from __future__ import annotations

import pathlib
import random
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "verifier"))

import corpus_lib  # noqa: E402
import fuzzgen  # noqa: E402


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print("usage: python bench/fuzz_verifier.py [COUNT [SEED]]   (default 2000, time-based)")
        return 0
    count = int(argv[0]) if argv else 2000
    seed = int(argv[1]) if len(argv) > 1 else int(time.time())
    corpus_lib.register_test_env()
    rng = random.Random(seed)
    arena = fuzzgen.Arena()
    stats = fuzzgen.FuzzStats()
    t = time.perf_counter()
    for i in range(count):
        prog = (fuzzgen.grown_program(rng, n=rng.randrange(4, 30)) if i % 2
                else fuzzgen.random_program(rng, n=rng.randrange(4, 30)))
        if i % 3 == 0:
            prog = fuzzgen.as_subprog(prog)
        for candidate in [prog] + [fuzzgen.mutate(rng, prog) for _ in range(3)]:
            failure = fuzzgen.check_program(candidate, rng, arena, stats)
            if failure:
                print(f"SOUNDNESS BUG (seed {seed}, program {i}):\n{failure}")
                return 1
    dt = time.perf_counter() - t
    print(f"seed {seed}: {stats.generated} programs, {stats.accepted} accepted "
          f"({stats.accepted / max(stats.generated, 1):.0%}), {stats.runs} runs, "
          f"{stats.violations} memory violations, {dt:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
