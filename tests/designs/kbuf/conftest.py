"""Make ``examples/kbuf/stripe`` importable as ``stripe`` for the kbuf tests."""

import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "kbuf"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))
