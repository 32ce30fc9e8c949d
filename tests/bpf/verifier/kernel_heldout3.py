"""Record Linux 7.2's verdicts on held-out corpus 3 (#20): the socket filters of
heldout/03_*.txt and the loop_step programs of heldout/ho3_loop/*.bpf.c.

Two steps, because the guest has no compiler::

    .venv/bin/python tests/bpf/verifier/kernel_heldout3.py build      # host: compile the C
    XDG_CACHE_HOME=build/kernel-vm/cache .venv/bin/python -c \\
        "from uringbpf.bpf import maps; maps.lib()"       # the guest has no C compiler either
    tools/kernel-vm/run -- env XDG_CACHE_HOME=$PWD/build/kernel-vm/cache \\
        python3 tests/bpf/verifier/kernel_heldout3.py guest > tests/bpf/verifier/kernel72_heldout3.json

The guest step prints one JSON line per program: name, kind ("socket" or "loop_step"),
ok, errno, the last line of the verifier log ("last", the refusal message) and the
processed-instruction count.  The loop_step objects are loaded the way libbpf loads
them (kernel_exec.load: the object's BTF and func_info, so global functions are
verified on their own; .rodata frozen).  Not a pytest module; test_heldout.py compares
the recorded verdicts with uringbpf's.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))

LOOP_DIR = HERE / "heldout" / "ho3_loop"
SOCKET_FILES = sorted((HERE / "heldout").glob("03_*.txt"))
BUILD_DIR = HERE.parents[2] / "build" / "ho3-loop"


def loop_sources() -> list[pathlib.Path]:
    """The loop_step programs of the corpus, in name order."""
    return sorted(LOOP_DIR.glob("*.bpf.c"))


def case_name(src: pathlib.Path) -> str:
    return src.name[: -len(".bpf.c")]


def summary(log: str) -> tuple[str, int | None]:
    """(last line of the log that is not the statistics line, processed count or None)."""
    lines = [ln for ln in log.strip().splitlines() if ln.strip()]
    m = next((re.search(r"processed (\d+) insns", ln) for ln in lines if ln.startswith("processed")), None)
    tail = [ln for ln in lines if not ln.startswith("processed") and not ln.startswith("verification time")
            and not ln.startswith("stack depth")]
    return (tail[-1] if tail else ""), (int(m.group(1)) if m else None)


def build() -> int:
    """Compile every loop_step program into BUILD_DIR (on the host)."""
    from uringbpf.bpf import cc
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    for src in loop_sources():
        cc.compile_c(src, BUILD_DIR / f"{case_name(src)}.o")
    return 0


def guest_loop_step() -> None:
    from uringbpf.bpf import kernel_exec as kx
    from uringbpf.bpf.object import BpfObject
    from uringbpf.errors import KernelLoadError
    for src in loop_sources():
        obj = BpfObject.open(str(BUILD_DIR / f"{case_name(src)}.o"))
        try:
            state = kx.load(obj)
        except KernelLoadError as exc:
            last, processed = summary(exc.log)
            row = {"ok": False, "errno": exc.errno, "last": last, "processed": processed}
        else:
            last, processed = summary(state.programs["step"].log)
            row = {"ok": True, "errno": 0, "last": "", "processed": processed}
            state.close()
        print(json.dumps({"name": case_name(src), "kind": "loop_step", **row}), flush=True)


def guest_socket(only: list[str] | None = None) -> None:
    """Socket filters of the corpus files (``only``: these file names, a short guest run)."""
    import corpus_lib
    import kernel_bpf
    corpus_lib.register_test_env()
    for path in SOCKET_FILES:
        if only and path.name not in only:
            continue
        for case in corpus_lib.load_corpus(path.parent):
            if case.file != path.name:
                continue
            fd, log = kernel_bpf.load_case(case)
            last, processed = summary(log)
            print(json.dumps({"name": case.name, "kind": "socket", "ok": fd >= 0,
                              "errno": -fd if fd < 0 else 0, "last": "" if fd >= 0 else last,
                              "processed": processed if fd >= 0 else None}), flush=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["build"]:
        return build()
    if argv[:1] == ["guest"]:
        # "guest" alone: both kinds; "guest socket [FILE...]" / "guest loop_step": one of them
        if argv[1:2] in ([], ["socket"]):
            guest_socket(argv[2:])
        if argv[1:] in ([], ["loop_step"]):
            guest_loop_step()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
