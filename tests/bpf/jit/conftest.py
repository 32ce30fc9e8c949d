import sys
from pathlib import Path

# progen.py (the random program generator) sits beside the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent))
