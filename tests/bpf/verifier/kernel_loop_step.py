"""Load the loop_step cases of the corpus into a kernel that has io_uring_bpf_ops (the
7.2 guest of tools/kernel-vm) and print each kernel verdict as one JSON line.

    tools/kernel-vm/run -- env PYTHONPATH=src python3 tests/bpf/verifier/kernel_loop_step.py

Not a pytest module (the guest runs it); the recorded verdicts are compared with the
corpus by test_corpus.py::test_loop_step_kernel_verdicts (tests/bpf/verifier/kernel72_loop_step.json).
"""

from __future__ import annotations

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import corpus_lib  # noqa: E402
from uringbpf.bpf import isa  # noqa: E402
from uringbpf.bpf import kernel_exec as kx  # noqa: E402


def main() -> int:
    corpus_lib.register_test_env()
    vm = kx.vmlinux()
    ops = vm.struct("io_uring_bpf_ops")
    if ops is None:
        print(json.dumps({"error": "no struct io_uring_bpf_ops in this kernel"}))
        return 1
    member = ops.members["loop_step"]
    for case in corpus_lib.load_corpus():
        if case.prog_type != "struct_ops:io_uring_bpf_ops.loop_step":
            continue
        program = case.program()
        out = []
        for insn in program.insns:
            if insn.is_call and insn.src == isa.PSEUDO_KFUNC_CALL:
                insn = isa.Insn(insn.opcode, insn.dst, isa.PSEUDO_KFUNC_CALL, 0,
                                vm.funcs[program.kfuncs[insn.imm]])
            out.append(insn)
        for sleepable in (False, True):
            fd, log = kx.prog_load(kx.PROG_TYPES["struct_ops"], isa.encode(out), "GPL",
                                   name="t", expected_attach_type=member.index,
                                   attach_btf_id=ops.type_id,
                                   flags=kx.BPF_F_SLEEPABLE if sleepable else 0)
            tail = [ln for ln in log.strip().splitlines() if ln and not ln.startswith("processed")]
            print(json.dumps({"name": case.name, "sleepable": sleepable, "ok": fd >= 0,
                              "errno": -fd if fd < 0 else 0, "last": tail[-1] if tail else ""}),
                  flush=True)
            if fd >= 0:
                import os
                os.close(fd)
    return 0




def socket_filters(only: list[str] | None = None) -> int:
    """The socket-filter cases of the corpus and the held-out corpus that the host
    cross-check compares (test_kernel_crosscheck._comparable), with this kernel's verdicts.
    ``only``: corpus file names to limit the run to (a targeted batch in the slow guest)."""
    import kernel_bpf
    import test_kernel_crosscheck as xc
    corpus_lib.register_test_env()
    for directory in (corpus_lib.CORPUS_DIR, corpus_lib.HELDOUT_DIR):
        for case in corpus_lib.load_corpus(directory):
            if only and pathlib.Path(case.file).name not in only:
                continue
            if case.file.startswith("03_"):
                continue    # held-out corpus 3 has its own recorder, kernel_heldout3.py
            if xc._comparable(case) is not None:
                continue
            fd, log = kernel_bpf.load_case(case)
            tail = [ln for ln in log.strip().splitlines() if ln and not ln.startswith("processed")]
            print(json.dumps({"name": case.name, "ok": fd >= 0, "last": tail[-1] if tail else ""}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(socket_filters(sys.argv[2:]) if sys.argv[1:2] == ["socket"] else main())
