"""``python -m uringbpf.lang``: compile, emit, verify; errors as file:line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from uringbpf import BpfObject

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "uringbpf.lang", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def test_emit_obj_and_verify(tmp_path):
    out = tmp_path / "nops.bpf.o"
    r = _run("examples/python/nops.py", "--emit-obj", str(out), "--verify")
    assert r.returncode == 0, r.stderr
    assert "nops_loop_step: verified" in r.stdout
    obj = BpfObject.open(out)
    try:
        assert "nops_loop_step" in obj.programs
    finally:
        obj.close()


def test_error_is_one_line_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from uringbpf.lang import Module, u64\n"
                   "bpf = Module('bad')\n"
                   "@bpf.socket_filter\n"
                   "def prog(data, n) -> u64:\n"
                   "    return {}\n")
    r = _run(str(bad))
    assert r.returncode == 1
    assert r.stderr.strip() == f"{bad}:5: a dict is not supported in BPF programs"
