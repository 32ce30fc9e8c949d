"""Every corpus program is accepted or rejected as marked, for the reason given."""

from __future__ import annotations

import pytest

import corpus_lib
from uringbpf.bpf import verifier

corpus_lib.register_test_env()
CASES = corpus_lib.load_corpus()


def test_corpus_is_large_enough():
    assert len(CASES) >= 150
    assert sum(c.expect == "accept" for c in CASES) >= 50
    assert sum(c.expect == "reject" for c in CASES) >= 80


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case(case):
    program = case.program()
    if case.expect == "accept":
        try:
            res = verifier.verify(program, max_insns=case.budget)
        except verifier.BpfVerifierError as exc:
            pytest.fail(f"{case.file}:{case.line} {case.name}: unexpectedly rejected: {exc.message}\n{exc.log}")
        assert res.processed_insns >= 1
    else:
        with pytest.raises(verifier.BpfVerifierError) as info:
            verifier.verify(program, max_insns=case.budget)
        assert case.reason in info.value.message, (
            f"{case.file}:{case.line} {case.name}: rejected for another reason:\n{info.value.log}")
        # kernel-style log: the offending instruction index and the processed count
        assert "processed" in info.value.log


def test_loop_step_kernel_verdicts():
    """The loop_step cases' verdicts are a real Linux 7.2's (#20): recorded in the
    tools/kernel-vm guest by kernel_loop_step.py into kernel72_loop_step.json."""
    import json
    import pathlib
    rows = [json.loads(ln) for ln in (pathlib.Path(__file__).parent / "kernel72_loop_step.json")
            .read_text().splitlines() if ln.strip()]
    kernel = {r["name"]: r for r in rows if not r["sleepable"]}
    cases = [c for c in CASES if c.prog_type == "struct_ops:io_uring_bpf_ops.loop_step"]
    assert len(cases) >= 15
    missing = [c.name for c in cases if c.name not in kernel]
    assert not missing, f"no 7.2 verdict recorded for {missing}: rerun kernel_loop_step.py"
    for c in cases:
        assert (c.expect == "accept") == kernel[c.name]["ok"], (c.name, kernel[c.name])
