"""The tutorial's first program (docs/python-programs.md) runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-programs.md"


def test_first_program_of_the_tutorial(tmp_path):
    text = DOC.read_text()
    block = re.search(r"## 1\. A first program.*?```python\n(.*?)```", text, re.S).group(1)
    src = tmp_path / "first.py"
    src.write_text(block)
    out = subprocess.run([sys.executable, str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "3", "3", "u32(3)"]
