"""Read-modify-write atomics go where Linux 7.2's check_atomic_rmw lets them: the stack,
map values and helper memory (and the arena, tests/bpf/test_arena_atomics.py), never the
context or the packet -- which a socket filter's (and a syscall program's) data buffer
stands for here.  Before this test the buffer took atomics (looser than the kernel)."""

from __future__ import annotations

import pytest

from uringbpf.bpf import asm, isa
from uringbpf.bpf.verifier import verify
from uringbpf.errors import BpfVerifierError

OPS = ["lock *(u32 *)(r1 +0) += w3", "lock *(u64 *)(r1 +0) += r3",
       "lock *(u64 *)(r1 +0) |= r3", "r3 = atomic_fetch_add((u64 *)(r1 +0), r3)",
       "r3 = xchg_64(r1 +0, r3)", "r0 = cmpxchg_64(r1 +0, r0, r3)"]


def _prog(body: str, prog_type: str) -> isa.Program:
    text = f"""
        if r2 < 8 goto out
        r3 = 1
        r0 = 0
        {body}
    out:
        r0 = 0
        exit
    """
    return isa.Program("t", asm.assemble(text), section="socket", prog_type=prog_type)


@pytest.mark.parametrize("prog_type", ["socket_filter", "syscall"])
@pytest.mark.parametrize("op", OPS)
def test_atomics_on_the_data_buffer_are_refused(op, prog_type):
    with pytest.raises(BpfVerifierError, match=r"BPF_ATOMIC stores into R1 \w+ is not allowed"):
        verify(_prog(op, prog_type))


@pytest.mark.parametrize("op", OPS)
def test_the_same_atomics_on_the_stack_pass(op):
    body = "*(u64 *)(r10 -8) = r0\n        r1 = r10\n        r1 += -8\n        " + op
    verify(_prog(body, "socket_filter"))
