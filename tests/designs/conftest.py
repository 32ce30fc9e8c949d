"""tests/designs/<design>/ mirror src/uringbpf/designs/<design>/; helpers shared by several
designs' tests (loop_support) and the test-only design (tiny_design) live here."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
