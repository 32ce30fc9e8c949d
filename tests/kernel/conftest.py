"""The differential suite runs only inside the kernel test guest (``make kernel-test``).

On the host (plain ``make test``) nothing here is collected: the cases need the Linux
7.2 guest that tools/kernel-vm boots, whose init sets URINGBPF_GUEST=1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if not os.environ.get("URINGBPF_GUEST"):
    collect_ignore_glob = ["*"]
else:
    sys.path.insert(0, str(Path(__file__).parent))
    sys.path.insert(0, str(Path(__file__).parent.parent / "bpf" / "verifier"))
    sys.path.append(str(Path(__file__).parent.parent / "designs"))   # fork_child

    from summary import pytest_terminal_summary  # noqa: F401  (the closing "kernel <v>: N cases" line)
