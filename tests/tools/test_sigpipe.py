"""Output into a closed pipe ends the command like a Unix tool: no traceback."""

from __future__ import annotations

import signal
import subprocess
import sys


def _first_line_then_close(args: list[str]) -> tuple[str, str, int]:
    """``uringbpf ARGS | head -1``: read one line, close the pipe, collect stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "uringbpf", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    return first, err, proc.returncode


def test_disasm_into_head(tmp_path):
    big = tmp_path / "big.bin"      # ~3 MB of listing: far more than a pipe holds
    big.write_bytes(bytes.fromhex("b700000007000000") * 100_000)
    first, err, status = _first_line_then_close(["disasm", str(big)])
    assert first.strip() == "0: r0 = 7"
    assert err == ""
    assert status == -signal.SIGPIPE


def test_demo_into_head():
    first, err, status = _first_line_then_close(["demo", "--only", "copy", "--size-mb", "1"])
    assert first.startswith("engine: ")        # the demo says which engine runs programs
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert status == -signal.SIGPIPE
