"""The closing line of the differential suite: ``kernel <version>: N cases, N agree``."""

from __future__ import annotations

import os


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    stats = terminalreporter.stats

    def diff(reports):
        # only the differential cases count; other guest tests are ordinary tests
        return [r for r in reports if "test_differential.py" in r.nodeid]

    agree = diff(r for r in stats.get("passed", []) if r.when == "call")
    # a non-strict known verifier disagreement that agrees on this kernel (xpassed)
    agree += diff(r for r in stats.get("xpassed", []) if "verifier_" in r.nodeid)
    known = diff(stats.get("xfailed", []))
    other = diff(stats.get("failed", []) + stats.get("error", []))
    total = len(agree) + len(known) + len(other)
    if not total:
        return
    for r in known:
        reason = getattr(r, "wasxfail", "")
        terminalreporter.write_line(f"known disagreement: {r.nodeid.split('[', 1)[-1].rstrip(']')}: {reason}")
    for r in other:
        terminalreporter.write_line(f"DISAGREEMENT: {r.nodeid.split('[', 1)[-1].rstrip(']')}")
    terminalreporter.write_line(f"kernel {os.uname().release}: {total} cases, {len(agree)} agree")
