"""A hand-assembled loop_step on the native driver, through each BPF engine available."""

from __future__ import annotations

import pytest

from loop_support import make_ring, nops_asm_program
from uringbpf.bpf.helpers import Runtime
from uringbpf.designs import loop
from uringbpf.uring import uapi


def compile_jit(prog, checked=False):
    from uringbpf.bpf import jit
    return jit.compile(prog, Runtime(), checked=checked)


@pytest.fixture
def ring():
    r = make_ring()
    yield r
    att = loop.attachment_of(r)
    if att is not None:
        att.destroy()
    r.close()


@pytest.mark.parametrize("total,cap", [(1000, 8), (5000, 3), (1, 8)])
def test_jit_nops_state_in_param_region(ring, total, cap):
    region = loop.register_region(ring, 8)
    state = region.view().cast("I")
    state[0], state[1] = total, 0
    fn = compile_jit(nops_asm_program(ring, cap))
    link = loop.attach_loop(ring, fn)
    assert link.engine == "jit"
    assert ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS) == 0
    assert (state[0], state[1]) == (0, 0)
    assert link.stats()["sqes_submitted"] == total
    # run it again on the same attachment: the ring is reusable
    state[0] = 10
    assert ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS) == 0
    assert state[0] == 0
    link.destroy()


def test_jit_without_param_region_stops_at_once(ring):
    """get_region(IOU_REGION_MEM) is NULL without a registered region: the program stops."""
    fn = compile_jit(nops_asm_program(ring))
    link = loop.attach_loop(ring, fn)
    assert ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS) == 0
    assert link.stats() == {"steps": 1, "waits": 0, "submit_calls": 0, "sqes_submitted": 0,
                            "sqes_denied": 0}
    link.destroy()


def test_jit_checked_mode_fault_is_raised_not_crashed(ring):
    """A checked JIT program that touches memory nobody allowed stops the loop with an error."""
    from uringbpf.bpf import asm, isa
    prog = isa.Program("bad", asm.assemble("r1 = 16\nr0 = *(u64 *)(r1 + 0)\nr0 = 0\nexit"),
                       section="struct_ops.s/bad")
    fn = compile_jit(prog, checked=True)
    link = loop.attach_loop(ring, fn)
    with pytest.raises(loop.LoopError):
        ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS)
    link.destroy()
