"""Known, explained disagreements between the 7.2 kernel and uringbpf (docs/kernel.md).

Each entry: case name -> why.  The suite marks them xfail(strict=True): a listed case
that starts agreeing fails too, so this list stays true.
"""

_TWO_CHAINS = ("the kernel posts all later members of a failed chain in one task-work pass "
               "(io_uring/io_uring.c io_fail_links -> io_req_tw_fail_links); we rewrite them "
               "into hard-linked NOPs, one task-work pass per member, so when the batch holds "
               "another link chain (failed or not) the later members of the two alternate. "
               "Same CQEs (user_data, res), other order; a failed chain alone in its batch "
               "keeps the kernel's order (docs/kernel.md)")

DISAGREEMENTS: dict[str, str] = {
    "loop_verifier_stack_uninit": "privileged loads may read uninitialised stack: kernel/bpf/"
                                  "verifier.c bpf_check() sets env->allow_uninit_stack = "
                                  "bpf_allow_uninit_stack(token), i.e. bpf_token_capable(token, "
                                  "CAP_PERFMON) (include/linux/bpf.h), and check_stack_read_fixed_off"
                                  "/check_stack_range_initialized skip the 'invalid read from "
                                  "stack' refusal; we always refuse it (stricter, docs/verifier.md)",
    # A failed link chain beside another chain in one batch: same CQEs, other order.
    "filter_chain_two_failed_chains": _TWO_CHAINS,
    "loop_filter_chain_two_failed_chains": _TWO_CHAINS,
}

# Verifier corpus cases where the 7.2 kernel and we differ and tests/bpf/verifier's
# KNOWN_DISAGREEMENTS (written for the host kernel) does not say why.
VERIFIER: dict[str, str] = {
}
