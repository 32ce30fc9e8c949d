"""Known, explained disagreements between the 7.2 kernel and uringbpf (docs/kernel.md).

Each entry: case name -> why.  The suite marks them xfail(strict=True): a listed case
that starts agreeing fails too, so this list stays true.
"""

DISAGREEMENTS: dict[str, str] = {
    "loop_verifier_stack_uninit": "privileged kernels allow reading uninitialised stack "
                                  "(env->allow_uninit_stack for CAP_PERFMON); we refuse it, as "
                                  "for socket filters (docs/verifier.md)",
}

# Verifier corpus cases where the 7.2 kernel and we differ and tests/bpf/verifier's
# KNOWN_DISAGREEMENTS (written for the host kernel) does not say why.
VERIFIER: dict[str, str] = {
    "call_subprog_too_deep": "7.2 accepts a chain of 9 call frames; we stop at 8 "
                             "(isa.MAX_CALL_DEPTH; stricter, not unsafe)",
}
