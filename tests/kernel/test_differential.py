"""Differential suite: the same case in the Linux 7.2 guest's kernel and in uringbpf.

Three groups, one pytest case each (``make kernel-test`` runs them in the guest):
  * ``cases.CASES``: the loop design (examples, error paths) and the cBPF filters, each
    run with executor="kernel" and executor="emulated" and compared observable by
    observable;
  * the verifier corpus's socket-filter subset: the 7.2 kernel's verdict (as root)
    against ``uringbpf``'s verifier.
A known, explained disagreement (docs/kernel.md) is an xfail (strict for the loop and
filter cases: it must keep disagreeing); any other disagreement fails.
"""

from __future__ import annotations

import pytest

import cases
import known

CASE_NAMES = sorted(cases.CASES)


def _mark(name: str):
    reason = known.DISAGREEMENTS.get(name)
    return pytest.param(name, id=name,
                        marks=[pytest.mark.xfail(reason=reason, strict=True)] if reason else [])


@pytest.mark.parametrize("name", [_mark(n) for n in CASE_NAMES])
def test_case(name):
    fn = cases.CASES[name]
    kernel = fn("kernel")
    emulated = fn("emulated")
    assert emulated == kernel


def _verifier_cases():
    import test_kernel_crosscheck as xc
    return xc, xc.CASES


_XC, _VCASES = _verifier_cases()


def _vmark(case):
    # Verifier cases: the reasons come from tests/bpf/verifier (H2 keeps them true against the
    # kernels it checks) plus known.VERIFIER.  Not strict: when our verifier or the list
    # moves to follow 7.2, a listed case that agrees counts as agreeing (xpassed); an
    # unlisted disagreement still fails.
    reason = known.VERIFIER.get(case.name) or _XC.KNOWN_DISAGREEMENTS.get(case.name)
    return pytest.param(case, id=f"verifier_{case.name}",
                        marks=[pytest.mark.xfail(reason=reason, strict=False)] if reason else [])


@pytest.mark.parametrize("vcase", [_vmark(c) for c in _VCASES])
def test_verifier(vcase):
    k_ok, k_log = _XC._kernel_verdict(vcase)
    o_ok, o_msg = _XC._ours(vcase)
    tail = "\n".join(k_log.strip().splitlines()[-3:])
    assert (o_ok, "accept" if o_ok else "refuse") == (k_ok, "accept" if k_ok else "refuse"), \
        f"ours: {o_msg!r}; kernel: {tail}"
