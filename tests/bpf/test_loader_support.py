"""Shared by the loader tests: compile the C programs in test_loader_progs/ once per session.

Objects are compiled by running the ``uringbpf cc`` command (what users run) into one
temporary directory and cached by (name, cpu, defines), because a zig compile can take seconds.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from uringbpf.bpf import cc

PROGS = Path(__file__).resolve().parent / "test_loader_progs"
_TMP = Path(tempfile.mkdtemp(prefix="uringbpf-loader-tests-"))
atexit.register(shutil.rmtree, _TMP, True)


@lru_cache(maxsize=None)
def build(name: str, cpu: str = "v3", defines: tuple[str, ...] = ()) -> Path:
    """Path of ``test_loader_progs/<name>.bpf.c`` compiled (cached for the session)."""
    tag = "-".join((name, cpu) + defines).replace("=", "_")
    out = _TMP / f"{tag}.bpf.o"
    cmd = [sys.executable, "-m", "uringbpf", "cc", str(PROGS / f"{name}.bpf.c"), "-o", str(out),
           "--cpu", cpu] + [f"-D{d}" for d in defines]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise cc.CompileError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return out


def build_bytes(name: str, cpu: str = "v3", defines: tuple[str, ...] = ()) -> bytes:
    return build(name, cpu, defines).read_bytes()


def scratch(name: str) -> Path:
    return _TMP / name
