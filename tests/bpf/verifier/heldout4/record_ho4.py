"""Record the kernels' verdicts on held-out corpus 4 (#20 re-check): the socket filters of
heldout4/04_*.txt and the loop_step programs of heldout4/loop/*.bpf.c.

Linux 7.2 in the tools/kernel-vm guest (no compiler there, so the C is built first)::

    .venv/bin/python tests/bpf/verifier/heldout4/record_ho4.py build
    XDG_CACHE_HOME=build/kernel-vm/cache .venv/bin/python -c "from uringbpf.bpf import maps; maps.lib()"
    tools/kernel-vm/run -- env XDG_CACHE_HOME=$PWD/build/kernel-vm/cache \\
        python3 tests/bpf/verifier/heldout4/record_ho4.py guest > /tmp/ho4-72.jsonl
    .venv/bin/python tests/bpf/verifier/heldout4/record_ho4.py host /tmp/ho4-72.jsonl \\
        > tests/bpf/verifier/kernel72_heldout4.json

``guest`` prints one JSON row per program (name, kind, ok, errno, the last line of the
log, the processed count), loading loop_step objects as libbpf does (kernel_exec.load:
BTF, func_info, frozen .rodata) and socket filters with bpf(2).  ``host`` adds the host
kernel's (6.18) verdict and last line to every socket-filter row (``ok618``, ``last618``)
and prints the merged rows.  Not a pytest module: test_heldout4.py reads the result.
"""

from __future__ import annotations

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

import kernel_heldout3 as kh3  # noqa: E402  (summary(): the log's last line and count)

LOOP_DIR = HERE / "loop"
BUILD_DIR = HERE.parents[3] / "build" / "ho4-loop"


def loop_sources() -> list[pathlib.Path]:
    """The loop_step programs of the corpus, in name order."""
    return sorted(LOOP_DIR.glob("*.bpf.c"))


def socket_cases() -> list:
    """The socket filters of the corpus (corpus_lib.Case), in file order."""
    import corpus_lib
    corpus_lib.register_test_env()
    return corpus_lib.load_corpus(HERE)


def _socket_row(case) -> dict:
    import kernel_bpf
    fd, log = kernel_bpf.load_case(case)
    last, processed = kh3.summary(log)
    return {"ok": fd >= 0, "errno": -fd if fd < 0 else 0, "last": "" if fd >= 0 else last,
            "processed": processed if fd >= 0 else None}


def build() -> None:
    from uringbpf.bpf import cc
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    for src in loop_sources():
        cc.compile_c(src, BUILD_DIR / f"{kh3.case_name(src)}.o")


def guest() -> None:
    from uringbpf.bpf import kernel_exec as kx
    from uringbpf.bpf.object import BpfObject
    from uringbpf.errors import KernelLoadError
    for case in socket_cases():
        print(json.dumps({"name": case.name, "kind": "socket", **_socket_row(case)}), flush=True)
    for src in loop_sources():
        obj = BpfObject.open(str(BUILD_DIR / f"{kh3.case_name(src)}.o"))
        try:
            state = kx.load(obj)
        except KernelLoadError as exc:
            last, processed = kh3.summary(exc.log)
            row = {"ok": False, "errno": exc.errno, "last": last, "processed": processed}
        else:
            last, processed = kh3.summary(state.programs["step"].log)
            row = {"ok": True, "errno": 0, "last": "", "processed": processed}
            state.close()
        print(json.dumps({"name": kh3.case_name(src), "kind": "loop_step", **row}), flush=True)


def host(guest_rows: pathlib.Path) -> None:
    cases = {c.name: c for c in socket_cases()}
    for line in guest_rows.read_text().splitlines():
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        if row["kind"] == "socket":
            r618 = _socket_row(cases[row["name"]])
            row["ok618"], row["last618"] = r618["ok"], r618["last"]
        print(json.dumps(row))


if __name__ == "__main__":
    cmd = sys.argv[1:2]
    if cmd == ["build"]:
        build()
    elif cmd == ["guest"]:
        guest()
    elif cmd == ["host"]:
        host(pathlib.Path(sys.argv[2]))
    else:
        sys.exit(__doc__)
