"""Soundness fuzzing (bounded for CI; bench/fuzz_verifier.py runs more).

Every program the verifier accepts must run in the interpreter without a memory
violation, for several data-buffer lengths and contents.
"""

from __future__ import annotations

import random

import pytest

import corpus_lib
import fuzzgen
from uringbpf.bpf import isa

corpus_lib.register_test_env()


def _run(seed: int, count: int):
    rng = random.Random(seed)
    arena = fuzzgen.Arena()
    stats = fuzzgen.FuzzStats()
    for i in range(count):
        if i % 2:
            prog = fuzzgen.grown_program(rng, n=rng.randrange(4, 20))
            if i % 3 == 0:
                prog = fuzzgen.as_subprog(prog)
        else:
            prog = fuzzgen.random_program(rng, n=rng.randrange(4, 24))
        failure = fuzzgen.check_program(prog, rng, arena, stats)
        assert failure is None, failure
        for _ in range(2):
            failure = fuzzgen.check_program(fuzzgen.mutate(rng, prog), rng, arena, stats)
            assert failure is None, failure
    return stats


def test_fuzz_random_and_grown_programs():
    stats = _run(seed=20261124, count=160)
    print(f"fuzz: {stats}")
    assert stats.generated == 480
    assert stats.accepted >= 100, stats      # the check is meaningless if nothing passes
    assert stats.runs >= 4 * stats.accepted - 1
    assert stats.violations == 0


def test_fuzz_mutated_corpus_programs():
    """Single-field mutations of the accepted socket-filter corpus programs that only use
    the data buffer, the stack and map values."""
    rng = random.Random(7)
    arena = fuzzgen.Arena()
    stats = fuzzgen.FuzzStats()
    seeds = []
    for case in corpus_lib.load_corpus():
        if case.expect != "accept" or case.prog_type != "socket_filter":
            continue
        prog = case.program()
        if any(i.is_call for i in prog.insns) or any(i.is_lddw and i.src == isa.PSEUDO_MAP_IDX for i in prog.insns):
            continue
        if any(m.value_size > fuzzgen.VALUE_SIZE for m in case.maps) or len(case.maps) > 1:
            continue
        seeds.append(prog.insns)
    assert len(seeds) >= 20
    for insns in seeds:
        for _ in range(12):
            failure = fuzzgen.check_program(fuzzgen.mutate(rng, insns), rng, arena, stats, runs=3)
            assert failure is None, failure
    print(f"mutated corpus: {stats}")
    assert stats.accepted >= 50


def test_arbitrary_instruction_fields_are_refused_cleanly():
    """Random opcodes/registers/offsets/immediates: only BpfVerifierError, never a crash."""
    from uringbpf.bpf import verifier
    rng = random.Random(99)
    m = fuzzgen.RunMap("f", 2, 4, fuzzgen.VALUE_SIZE, 1)
    outcomes = {"accepted": 0, "refused": 0}
    for i in range(1500):
        prog = isa.Program("raw", fuzzgen.raw_program(rng), section="socket", maps=[m],
                           kfuncs=["bpf_iter_utest_new"])
        try:
            verifier.verify(prog, max_insns=5000, log_level=2 if i % 7 == 0 else 0)
            outcomes["accepted"] += 1
        except verifier.BpfVerifierError as exc:
            assert exc.message and "processed" in exc.log
            outcomes["refused"] += 1
    assert outcomes["refused"] > 1000


@pytest.mark.parametrize("generate,seed,rounds,most", [
    # joined paths that differ only in compared registers (#13 item 1)
    (fuzzgen.pruning_program, 20261204, 600, 500),
    # joined constants reaching an access through a map store, a spill, a sum, a pointer
    # addition or a decided compare (#19: Cfg._precision keeps fewer registers precise)
    (fuzzgen.precision_program, 20261205, 500, 450),
], ids=["joins", "precision"])
def test_fuzz_pruning(generate, seed, rounds, most):
    """Pruning never turns a refusal into an acceptance, and what is accepted runs in
    bounds."""
    rng = random.Random(seed)
    arena = fuzzgen.Arena()
    stats = fuzzgen.FuzzStats()
    for _ in range(rounds):
        failure = fuzzgen.check_pruning(generate(rng), rng, arena, stats)
        assert failure is None, failure
    assert stats.generated == rounds
    assert 100 < stats.accepted < most    # both verdicts are exercised
    assert stats.violations == 0
