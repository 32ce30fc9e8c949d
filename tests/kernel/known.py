"""Known, explained disagreements between the 7.2 kernel and uringbpf (docs/kernel.md).

Each entry: case name -> why.  The suite marks them xfail(strict=True): a listed case
that starts agreeing fails too, so this list stays true.
"""

_TWO_CHAINS = ("the kernel posts all later members of a failed chain in one task-work pass "
               "(io_uring/io_uring.c io_fail_links -> io_req_tw_fail_links), so chain A's "
               "members come before chain B's; we rewrite members into hard-linked NOPs, each "
               "queued as task work when the one before it completes, so A's and B's members "
               "alternate. The CQEs (user_data, res) are the same; a single failed chain per "
               "batch keeps the kernel's order (docs/kernel.md)")

DISAGREEMENTS: dict[str, str] = {
    "loop_verifier_stack_uninit": "privileged loads may read uninitialised stack: kernel/bpf/"
                                  "verifier.c bpf_check() sets env->allow_uninit_stack = "
                                  "bpf_allow_uninit_stack(token), i.e. bpf_token_capable(token, "
                                  "CAP_PERFMON) (include/linux/bpf.h), and check_stack_read_fixed_off"
                                  "/check_stack_range_initialized skip the 'invalid read from "
                                  "stack' refusal; we always refuse it (stricter, docs/verifier.md)",
    # Two link chains failed by filter refusals in one batch: same CQEs, other order.
    "filter_chain_two_failed_chains": _TWO_CHAINS,
    "loop_filter_chain_two_failed_chains": _TWO_CHAINS,
}

# Verifier corpus cases where the 7.2 kernel and we differ and tests/bpf/verifier's
# KNOWN_DISAGREEMENTS (written for the host kernel) does not say why.
VERIFIER: dict[str, str] = {
    "neq_shifted_by_add": "7.2 carries a remembered 'r6 != 7' through r6 += 5 (linked "
                          "registers with a delta) and decides the later 'r6 == 12'; we drop "
                          "the fact at any ALU write and explore that branch (stricter, not unsafe)",
}
