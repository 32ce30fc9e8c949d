"""Soundness fuzzing at scale: `python bench/fuzz_verifier.py [--mode MODE] [COUNT] [SEED]`.

Modes (default ``all``: alternate both):

* ``classic`` -- the generators of tests/bpf/verifier/test_fuzz.py (random, grown-to-the-edge
  and mutated programs);
* ``pruning`` -- programs whose paths join with values that differ only in registers that
  later feed a compare (tests/bpf/verifier/fuzzgen.py ``pruning_source``); each verdict is
  also compared with a verification without state pruning (pruning must never turn a
  refusal into an acceptance).
* ``may_goto`` -- programs with may_goto loops (``fuzzgen.may_goto_source``: nested, in a
  subprogram, accesses in and after the loop); checked against the run without pruning
  and run with several small counter caps (``fuzzgen.check_may_goto``).  Not part of
  ``all``.
* ``precision`` -- joined constants reaching a map-value access through a map store, a
  spill, a sum, a pointer addition or a decided compare (``fuzzgen.precision_source``:
  what Cfg._precision marks precise or not), checked like ``pruning``.  Not part of
  ``all``.
* ``linked`` -- programs with scalars linked by a constant delta (``fuzzgen.linked_source``:
  ``rB = rA; rB += K``, 64/32-bit, breakers, spills, joins; a compare on one partner, an
  access indexed by another), checked like ``pruning``.  Not part of ``all``.

Every accepted program runs in the interpreter on several buffers and must not touch
memory outside its regions.  Prints the counts (``--every N``: also every N programs).
"""

from __future__ import annotations

import argparse
import pathlib
import random
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "bpf" / "verifier"))

import corpus_lib  # noqa: E402
import fuzzgen  # noqa: E402


def _classic(rng: random.Random, i: int) -> list:
    prog = (fuzzgen.grown_program(rng, n=rng.randrange(4, 30)) if i % 2
            else fuzzgen.random_program(rng, n=rng.randrange(4, 30)))
    if i % 3 == 0:
        prog = fuzzgen.as_subprog(prog)
    return [prog] + [fuzzgen.mutate(rng, prog) for _ in range(3)]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="fuzz_verifier", description=__doc__.split("\n\n")[0])
    ap.add_argument("count", nargs="?", type=int, default=2000, help="generator rounds")
    ap.add_argument("seed", nargs="?", type=int, default=None, help="default: time-based")
    ap.add_argument("--mode", choices=("all", "classic", "pruning", "may_goto", "linked", "precision"), default="all")
    ap.add_argument("--every", type=int, default=0, help="print progress every N rounds")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time())
    corpus_lib.register_test_env()
    rng = random.Random(seed)
    arena = fuzzgen.Arena()
    stats = {"classic": fuzzgen.FuzzStats(), "pruning": fuzzgen.FuzzStats(),
             "may_goto": fuzzgen.FuzzStats(), "linked": fuzzgen.FuzzStats(),
             "precision": fuzzgen.FuzzStats()}
    t = time.perf_counter()

    def report() -> None:
        dt = time.perf_counter() - t
        for name, s in stats.items():
            if s.generated:
                print(f"seed {seed} {name}: {s.generated} programs, {s.accepted} accepted "
                      f"({s.accepted / max(s.generated, 1):.0%}), {s.runs} runs, "
                      f"{s.violations} memory violations/pruning disagreements, {dt:.1f} s",
                      flush=True)

    for i in range(args.count):
        mode = args.mode if args.mode != "all" else ("pruning" if i % 2 else "classic")
        if mode == "pruning":
            candidates = [fuzzgen.pruning_program(rng)]
            check = fuzzgen.check_pruning
        elif mode == "linked":
            candidates = [fuzzgen.linked_program(rng)]
            check = fuzzgen.check_pruning
        elif mode == "precision":
            candidates = [fuzzgen.precision_program(rng)]
            check = fuzzgen.check_pruning
        elif mode == "may_goto":
            candidates = [fuzzgen.may_goto_program(rng)]
            check = fuzzgen.check_may_goto
        else:
            candidates = _classic(rng, i)
            check = fuzzgen.check_program
        for candidate in candidates:
            failure = check(candidate, rng, arena, stats[mode])
            if failure:
                report()
                print(f"SOUNDNESS BUG (seed {seed}, round {i}, {mode}):\n{failure}")
                return 1
        if args.every and (i + 1) % args.every == 0:
            report()
    report()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
