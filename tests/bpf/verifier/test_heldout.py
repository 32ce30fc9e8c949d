"""The held-out corpus (#20): cases written after the verifier work and never used to
tune it.  Each must get its marked verdict, and each socket-filter case must get the
running kernel's verdict, except where a listed, deliberate difference applies."""

from __future__ import annotations

import pytest

import corpus_lib
import test_kernel_crosscheck as xc
from uringbpf.bpf import verifier

corpus_lib.register_test_env()
HELDOUT = corpus_lib.load_corpus(corpus_lib.HELDOUT_DIR)
# deliberate differences (same classes as test_kernel_crosscheck.KNOWN_DISAGREEMENTS)
KNOWN = {
    "ho_map_lookup_key_uninit_partial": xc.UNINIT,
    "ho72_chain_16_frames_32b_each": xc.FRAMES_72,   # the host (6.18) allows 8 frames
}


def test_heldout_is_substantial():
    assert len(HELDOUT) >= 35


@pytest.mark.parametrize("case", HELDOUT, ids=[c.name for c in HELDOUT])
def test_heldout_case(case):
    program = case.program()
    if case.expect == "accept":
        verifier.verify(program, max_insns=case.budget)
    else:
        with pytest.raises(verifier.BpfVerifierError) as info:
            verifier.verify(program, max_insns=case.budget)
        assert case.reason in info.value.message, info.value.log


def test_heldout_against_kernel(kernel):
    cases = [c for c in HELDOUT if xc._comparable(c) is None]
    assert len(cases) >= 30
    new, stale = [], []
    for case in cases:
        k_ok, k_log = xc._kernel_verdict(case)
        o_ok, o_msg = xc._ours(case)
        if k_ok == o_ok:
            if case.name in KNOWN:
                stale.append(case.name)
            continue
        if case.name not in KNOWN:
            tail = "\n".join(k_log.strip().splitlines()[-2:])
            new.append(f"{case.name}: kernel {'accepts' if k_ok else 'rejects'}, we "
                       f"{'accept' if o_ok else 'reject'} ({o_msg})\n    kernel: {tail}")
    assert not new, "held-out disagreements with the kernel:\n" + "\n".join(new)
    assert not stale, f"listed differences that now agree: {stale}"


kernel = xc.kernel
