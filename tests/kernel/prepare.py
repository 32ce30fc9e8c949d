"""Host side of ``make kernel-test``: build what the guest cannot (it has no compilers).

Compiles every BPF C object the suite uses into build/kernel-vm/objs/ and every native
module into the shared cache build/kernel-vm/cache/uringbpf (the guest sets
XDG_CACHE_HOME to build/kernel-vm/cache, and native modules are keyed by their sources,
not by the compiler, so the guest finds them).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "build" / "kernel-vm"


def main() -> None:
    os.environ["XDG_CACHE_HOME"] = str(OUT / "cache")
    # build from this checkout's sources (what the guest imports through PYTHONPATH), not
    # from wherever the venv's editable install points
    sys.path.insert(0, str(REPO / "src"))
    from uringbpf import native
    from uringbpf.bpf import cc
    objs = OUT / "objs"
    objs.mkdir(parents=True, exist_ok=True)
    sources = sorted((REPO / "examples" / "loop").glob("*.bpf.c"))
    sources += sorted((REPO / "tests" / "kernel" / "bpf").glob("*.bpf.c"))
    for src in sources:
        obj = cc.compile_cached(src)
        shutil.copyfile(obj, objs / (src.name[:-len(".bpf.c")] + ".o"))
    # every C file of the package: wherever a native module lives (native/, a design's
    # folder), the guest finds it built (none of them takes extra flags today)
    natives = sorted(p for p in (REPO / "src" / "uringbpf").rglob("*.c")
                     if not p.name.endswith(".bpf.c"))
    skipped = []
    for src in natives:
        try:
            native.build(src)
        except native.NativeBuildError:
            # modules built with their own flags (a CPython extension needs Python.h of
            # the guest's Python, which the host does not have): the guest cannot use
            # them, and a case that needs one fails there, naming it
            skipped.append(src.name)
    if skipped:
        print(f"not prebuilt for the guest (need their own flags): {', '.join(skipped)}",
              file=sys.stderr)
    print(f"prepared {len(sources)} objects, {len(natives)} native modules in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
