"""The closing line of the differential suite: ``kernel <version>: N cases, N agree``."""

from __future__ import annotations

import os


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    stats = terminalreporter.stats
    agree = [r for r in stats.get("passed", []) if r.when == "call"]
    known = [r for r in stats.get("xfailed", [])]
    other = [r for r in stats.get("failed", []) + stats.get("error", [])]
    total = len(agree) + len(known) + len(other)
    if not total:
        return
    for r in known:
        reason = getattr(r, "wasxfail", "")
        terminalreporter.write_line(f"known disagreement: {r.nodeid.split('[', 1)[-1].rstrip(']')}: {reason}")
    for r in other:
        terminalreporter.write_line(f"DISAGREEMENT: {r.nodeid.split('[', 1)[-1].rstrip(']')}")
    terminalreporter.write_line(f"kernel {os.uname().release}: {total} cases, {len(agree)} agree")
