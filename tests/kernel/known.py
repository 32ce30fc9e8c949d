"""Known, explained disagreements between the 7.2 kernel and uringbpf (docs/kernel.md).

Each entry: case name -> why.  The suite marks them xfail(strict=True): a listed case
that starts agreeing fails too, so this list stays true.
"""

DISAGREEMENTS: dict[str, str] = {
    "loop_verifier_stack_uninit": "privileged loads may read uninitialised stack: kernel/bpf/"
                                  "verifier.c bpf_check() sets env->allow_uninit_stack = "
                                  "bpf_allow_uninit_stack(token), i.e. bpf_token_capable(token, "
                                  "CAP_PERFMON) (include/linux/bpf.h), and check_stack_read_fixed_off"
                                  "/check_stack_range_initialized skip the 'invalid read from "
                                  "stack' refusal; we always refuse it (stricter, docs/verifier.md)",
}

# Verifier corpus cases where the 7.2 kernel and we differ and tests/bpf/verifier's
# KNOWN_DISAGREEMENTS (written for the host kernel) does not say why.
VERIFIER: dict[str, str] = {
    "neq_shifted_by_add": "7.2 carries a remembered 'r6 != 7' through r6 += 5 (linked "
                          "registers with a delta) and decides the later 'r6 == 12'; we drop "
                          "the fact at any ALU write and explore that branch (stricter, not unsafe)",
}
