"""Load the may_goto corpus cases (corpus/22_may_goto.txt) into the running kernel and
print, per case, its verdict, last log line and processed-instruction count as JSON lines.

    tools/kernel-vm/run -- env PYTHONPATH=src python3 tests/bpf/verifier/may_goto_guest.py

Not a pytest module: the Linux 7.2 guest runs it; test_may_goto_verifier.py compares our
verdicts and counts with the recorded output (may_goto_kernel72.json).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import corpus_lib  # noqa: E402
import kernel_bpf  # noqa: E402

FILE = "22_may_goto.txt"


def main() -> int:
    corpus_lib.register_test_env()
    for case in corpus_lib.load_corpus():
        if (pathlib.Path(case.file).name != FILE or case.kernel.startswith("skip")
                or case.prog_type != "socket_filter"):
            continue    # (loop_step cases: kernel_loop_step.py)
        fds = [kernel_bpf.map_create(m.type, m.key_size, m.value_size, m.max_entries, m.map_flags)
               for m in case.maps]
        fd, log = kernel_bpf.prog_load(kernel_bpf.kernel_form(case.program().insns, fds))
        for f in fds:
            os.close(f)
        m = re.search(r"processed (\d+) insns", log)
        tail = [ln for ln in log.strip().splitlines() if ln and not ln.startswith("processed")]
        print(json.dumps({"name": case.name, "ok": fd >= 0, "last": tail[-1] if tail else "",
                          "processed": int(m.group(1)) if m else None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
