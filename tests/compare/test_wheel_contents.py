"""The built wheel carries what the installed library, `uringbpf demo` and `uringbpf
compare` read at run time (a non-editable install has no source tree to fall back on).

.ci/wheel-check installs that wheel into a fresh venv and runs them; this test is the
fast half: build the wheel, list it, and compare it against the files the code looks for.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from uringbpf.compare import common

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--disable-pip-version-check", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, timeout=240)
    (whl,) = out.glob("uringbpf-*.whl")
    with zipfile.ZipFile(whl) as z:
        return set(z.namelist())


def test_python_examples_ship_for_compare(wheel_names):
    """compare's `lang` rows load examples/python/*.py: every one is in the wheel, as
    real files under uringbpf/compare/python_examples (not a dangling symlink)."""
    here = sorted(p.name for p in common.examples_python().glob("*.py"))
    assert {"cp.py", "nops.py", "crc32c_op.py", "pingpong.py"} <= set(here)
    for name in here:
        assert f"uringbpf/compare/python_examples/{name}" in wheel_names, name


def test_everything_read_at_run_time_ships(wheel_names):
    src = ROOT / "src"
    wanted = ["uringbpf/py.typed"]
    for pattern in ("uringbpf/designs/*/examples/**/*.bpf.c", "uringbpf/designs/*/*.c",
                    "uringbpf/native/*.c", "uringbpf/native/*.h", "uringbpf/include/**/*.h",
                    "uringbpf/compare/*.c", "uringbpf/uring/*.c"):
        found = [p.relative_to(src).as_posix() for p in src.glob(pattern)]
        assert found, pattern
        wanted += found
    missing = [w for w in wanted if w not in wheel_names]
    assert missing == []
