"""``__arena`` globals in a ``loop_step`` program (7.1 struct_ops): the application run and
the attached program on both engines step the same counters in the arena's last page and
leave the same arena pages behind."""

from __future__ import annotations

import pytest

from uringbpf.designs import loop
from uringbpf.lang import Module, arena_ptr, array, s32, u32, u64
from uringbpf.lang.loop import IOU_LOOP_CONTINUE, IOU_LOOP_STOP

bpf = Module("arena_loop_test")
arena = bpf.arena("arena", 3)


@bpf.arena_globals
class ag:
    steps: u32
    limit: u32 = 4
    page: u64                     # the page the first step allocated
    seen: array(u64, 8)           # each step's view of its own page


@bpf.loop_step("arena_loop_ops")
def step(ring, lp) -> s32:
    ag.steps += 1
    if ag.steps == 1:
        p = arena.alloc_pages(1)
        if not p:
            return IOU_LOOP_STOP
        ag.page = u64(p)
    words = arena_ptr[u64](ag.page)
    words[ag.steps & 7] = u64(ag.steps) * 11
    ag.seen[ag.steps & 7] = words[ag.steps & 7] + ag.page % 4096
    if ag.steps >= ag.limit:
        return IOU_LOOP_STOP
    lp.cq_wait_idx = 0            # nothing in flight: straight back
    return IOU_LOOP_CONTINUE


def _run(mode: str, limit: int) -> tuple:
    arena.close()
    ag.limit = limit
    ring = loop.make_ring(8)
    try:
        if mode == "app":
            ret = step.run_in_app(ring)
        else:
            with step.attach(ring, mode) as handle:
                ret = handle.enter()
    finally:
        ring.close()
    m = arena.map
    vals = ag.values()
    vals["page"] -= m.value_addr
    return ret, vals, bytes(m.memory()[:2 * 4096])


@pytest.mark.parametrize("limit", [1, 4, 7])
def test_loop_step_arena_globals_same_both_ways(limit):
    runs = {m: _run(m, limit) for m in ("app", "jit", "interp")}
    assert runs["app"] == runs["jit"] == runs["interp"]
    ret, vals, mem = runs["app"]
    assert vals["steps"] == limit and vals["page"] == 0
    assert vals["seen"][1:limit + 1] == [i * 11 for i in range(1, limit + 1)]
    assert int.from_bytes(mem[8 * limit:8 * limit + 8], "little") == limit * 11
