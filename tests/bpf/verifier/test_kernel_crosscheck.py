"""Cross-check the socket-filter subset of the corpus against the running kernel's verifier.

Runs when bpf(2) works (root on this machine and in CI).  Every case whose verdict
differs from the kernel's must be listed in KNOWN_DISAGREEMENTS with the reason (also
written up in docs/verifier.md); a new disagreement, or a listed one that went away,
fails the test.
"""

from __future__ import annotations

import os

import pytest

import corpus_lib
import kernel_bpf
from uringbpf.bpf import helpers, isa, verifier
from uringbpf.bpf.verifier.cfg import Cfg, CfgError

corpus_lib.register_test_env()

# name -> why we and the kernel (root, privileged) disagree.  Keep docs/verifier.md in sync.
LEAK = "root (CAP_BPF/CAP_PERFMON) may leak addresses; we refuse every pointer-to-scalar leak"
FRAMES_72 = "7.2 allows 16 call frames (MAX_CALL_FRAMES), as we do; 6.18 allows 8"
NEQ_72 = "7.2 decides a repeated `rX == K` test after its not-equal side; 6.18 does not"
UNINIT = "privileged kernels allow reading uninitialised stack (allow_uninit_stack); we refuse it"
KNOWN_DISAGREEMENTS = {
    # the kernel is more permissive for root: we refuse address leaks and uninitialised reads
    "regs_return_pointer_leak": LEAK,
    "regs_mov32_of_pointer": LEAK,
    "map_store_pointer_into_value": LEAK,
    "ptr_neg_prohibited": LEAK,
    "ptr_bswap_prohibited": LEAK,
    "ptr_compare_two_pointers": LEAK,
    "ptr_compare_with_const": LEAK,
    "ptr_jset_prohibited": LEAK,
    "ptr_leak_via_helper_arg": LEAK,
    "atomic_cmpxchg_r0_pointer": LEAK,
    "stack_overwrite_pointer_then_read_rest": LEAK,
    "stack_read_uninit": UNINIT,
    "stack_read_partially_init": UNINIT,
    "map_key_uninit": UNINIT,
    "map_update_value_uninit": UNINIT,
    "atomic_stack_uninit": UNINIT,
    "stack_var_offset_read_uninit": UNINIT,
    "stack_var_offset_pointer_store": "root may spill a pointer through a variable stack offset; "
                                      "we cannot track which slot holds it and refuse",
    "map_ptr_deref": "the kernel lets programs read struct bpf_map fields through BTF; our map "
                     "pointers are opaque",
    "ld_ind_pointer_offset": LEAK,
    "priv_compare_pointer_with_scalar": LEAK,
    "priv_uninit_stack_read": UNINIT,
    # this (6.18) kernel is stricter than Linux 7.2, whose verdicts we follow
    # (kernel72_socket.json, recorded in the tools/kernel-vm guest)
    "scalar_mod_bounds": "7.2 bounds x % c by c - 1 as we do; 6.18 treats the result as unknown",
    "scalar_div_bounds": "7.2 bounds x / c by max(x) / c as we do; 6.18 treats it as unknown",
    "scalar_sdiv_unknown": "7.2 bounds signed division by a constant as we do; 6.18 does not",
    "scalar_smod_bounded_by_divisor": "as scalar_sdiv_unknown, for signed modulo",
    # 7.2 remembers "rX != K" after the not-equal side of `if rX == K` and decides the same
    # test later (so a loop testing an unchanging value queues one branch); 6.18 does not
    "neq_remembered_same_const": NEQ_72,
    "neq_remembered_jne": NEQ_72,
    "jmpseq_cond_8193": NEQ_72,
    "jmpseq_two_per_iter_4097": NEQ_72,
    "neq_32bit": NEQ_72,
    "neq_against_constant_register": NEQ_72,
    "neq_copy_after": NEQ_72,
    "neq_copy_before": NEQ_72,
    "neq_through_spill": NEQ_72,
    "neq_two_constants": NEQ_72,
    "neq_shifted_by_add": NEQ_72,
    "neq_shifted_by_sub": NEQ_72,
    # 6.18 allows 8 call frames, 7.2 16 (its MAX_CALL_FRAMES, measured in the guest)
    "call_subprog_too_deep": FRAMES_72,
    "call_chain_10_frames": FRAMES_72,
    "call_chain_10_frames_stack": FRAMES_72,
    "call_chain_11_frames": FRAMES_72,
    "call_chain_16_frames": FRAMES_72,
}


def _comparable(case) -> str | None:
    """Why a case is left out of the cross-check, or None."""
    if case.prog_type != "socket_filter":
        return "not a socket filter"
    if case.kernel.startswith("skip"):
        return case.kernel
    program = case.program()
    if program.kfuncs:
        return "uses test kfuncs"
    def arg_count(insn):
        h = helpers.get_helper(insn.imm) if insn.src == isa.CALL_HELPER else None
        return 5 if h is None else len(h.proto.args)

    try:
        cfg = Cfg(program, arg_count)
    except CfgError:
        return None
    if cfg.live_in[0] & 0b110 and case.kernel != "compare":
        # "kernel: compare": r1 is only kept in r6 for LD_ABS/LD_IND (the context to both)
        # or passed along to subprograms that do not read it
        return "reads r1/r2 (our data buffer, the kernel's __sk_buff)"
    return None


CASES = [c for c in corpus_lib.load_corpus() if _comparable(c) is None]


def _kernel_verdict(case) -> tuple[bool, str]:
    fds = []
    try:
        for m in case.maps:
            fd = kernel_bpf.map_create(m.type, m.key_size, m.value_size, m.max_entries, m.map_flags)
            assert fd >= 0, f"map create failed for {case.name}: errno {-fd}"
            fds.append(fd)
        program = case.program()
        fd, log = kernel_bpf.prog_load(kernel_bpf.kernel_form(program.insns, fds))
        return fd >= 0, log
    finally:
        for fd in fds:
            os.close(fd)


def _ours(case) -> tuple[bool, str]:
    try:
        verifier.verify(case.program(), max_insns=case.budget)
        return True, ""
    except verifier.BpfVerifierError as exc:
        return False, exc.message


@pytest.fixture(scope="module")
def kernel():
    why = kernel_bpf.available()
    if why is not None:
        pytest.skip(f"bpf(2) unusable here: {why}")


def test_subset_is_substantial():
    assert len(CASES) >= 150


def test_crosscheck_against_kernel(kernel):
    new, stale, agreed = [], [], 0
    for case in CASES:
        k_ok, k_log = _kernel_verdict(case)
        o_ok, o_msg = _ours(case)
        if k_ok == o_ok:
            agreed += 1
            if case.name in KNOWN_DISAGREEMENTS:
                stale.append(case.name)
            continue
        if case.name not in KNOWN_DISAGREEMENTS:
            tail = "\n".join(k_log.strip().splitlines()[-3:])
            new.append(f"{case.name}: kernel {'accepts' if k_ok else 'rejects'}, we "
                       f"{'accept' if o_ok else 'reject'} ({o_msg})\n    kernel: {tail}")
    assert not new, "new disagreements with the kernel verifier:\n" + "\n".join(new)
    assert not stale, f"listed disagreements that now agree (remove them): {stale}"
    assert agreed >= 150


# name -> why the processed-instruction counts differ although both accept
COUNT_DIFFERS = {
    "jmpseq_cond_8192": NEQ_72,
}


def _processed(log: str) -> int:
    import re
    return int(re.search(r"processed (\d+) insns", log).group(1))


def test_processed_counts_match_kernel(kernel):
    """Where both accept, we process as many instructions as the kernel: the checkpoint
    bookkeeping (prune points, spacing, eviction) is the kernel's, so the complexity
    budget runs out on the same programs (#20)."""
    differ, stale, equal = [], [], 0
    for case in CASES:
        k_ok, k_log = _kernel_verdict(case)
        if not k_ok:
            continue
        try:
            ours = verifier.verify(case.program(), max_insns=case.budget).processed_insns
        except verifier.BpfVerifierError:
            continue
        k = _processed(k_log)
        if k == ours:
            equal += 1
            if case.name in COUNT_DIFFERS:
                stale.append(case.name)
        elif case.name not in COUNT_DIFFERS:
            differ.append(f"{case.name}: kernel {k}, ours {ours}")
    assert not differ, "processed counts differ from the kernel's:\n" + "\n".join(differ)
    assert not stale, f"listed count differences that went away (remove them): {stale}"
    assert equal >= 100


def test_kernel_form_round_trip():
    """Our relocated forms map back to the kernel's (fd, offset) forms."""
    insns = isa.lddw_pair(1, 0 | (8 << 32), isa.PSEUDO_MAP_IDX_VALUE) + isa.lddw_pair(2, 0, isa.PSEUDO_MAP_IDX)
    out = kernel_bpf.kernel_form(insns, [77])
    assert out[0].src == isa.PSEUDO_MAP_VALUE and out[0].imm64 == 77 | (8 << 32)
    assert out[2].src == isa.PSEUDO_MAP_FD and out[2].imm64 == 77
    assert len(out) == 4


# Linux 7.2 (the reference of #20) differs from the 6.18 host on a few rules; its verdicts,
# recorded in the tools/kernel-vm guest by kernel_loop_step.py (`... socket`), are checked
# here without a kernel.  Listed: the deliberate differences that remain against 7.2.
ONLY_6_18 = {name for name, why in KNOWN_DISAGREEMENTS.items()
             if why in (NEQ_72, FRAMES_72) or name.startswith("scalar_")}
KNOWN_72 = {name: why for name, why in KNOWN_DISAGREEMENTS.items() if name not in ONLY_6_18}
KNOWN_72.update({
    "ho_map_lookup_key_uninit_partial": UNINIT,
})


def test_verdicts_match_linux_7_2():
    import json
    import pathlib
    rows = [json.loads(ln) for ln in (pathlib.Path(__file__).parent / "kernel72_socket.json")
            .read_text().splitlines() if ln.strip()]
    cases = {c.name: c for c in corpus_lib.load_corpus() + corpus_lib.load_corpus(corpus_lib.HELDOUT_DIR)}
    assert len(rows) >= 250
    new, stale = [], []
    for r in rows:
        o_ok, o_msg = _ours(cases[r["name"]])
        if o_ok == r["ok"]:
            if r["name"] in KNOWN_72:
                stale.append(r["name"])
        elif r["name"] not in KNOWN_72:
            new.append(f"{r['name']}: 7.2 {'accepts' if r['ok'] else 'rejects'} ({r['last']}), "
                       f"we {'accept' if o_ok else 'reject'} ({o_msg})")
    assert not new, "disagreements with Linux 7.2:\n" + "\n".join(new)
    assert not stale, f"listed 7.2 differences that now agree: {stale}"
