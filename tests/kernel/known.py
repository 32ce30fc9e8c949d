"""Known, explained disagreements between the 7.2 kernel and uringbpf (docs/kernel.md).

Each entry: case name -> why.  The suite marks them xfail(strict=True): a listed case
that starts agreeing fails too, so this list stays true.
"""

DISAGREEMENTS: dict[str, str] = {}

# Verifier corpus cases where the 7.2 kernel and we differ beyond the ones
# tests/verifier/test_kernel_crosscheck.py already lists for the host kernel.
VERIFIER: dict[str, str] = {}
