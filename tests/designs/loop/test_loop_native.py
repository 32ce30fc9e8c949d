"""The native loop driver (native/loop.c) and its kfuncs, driven by loop_steps written in Python.

These pin down io_uring/loop.c's semantics independently of the BPF engines: return
codes, waiting on cq_wait_idx, regions, SQ_REWIND submission, attach rules, signals.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
import threading

import pytest

from loop_support import RING_FLAGS, REQ_TOKEN, PyNops, make_ring, u32
from uringbpf.designs import loop
from uringbpf.uring import uapi

GETEVENTS = uapi.IORING_ENTER_GETEVENTS


@pytest.fixture
def ring():
    r = make_ring()
    yield r
    att = loop.attachment_of(r)
    if att is not None:
        att.destroy()
    r.close()


def args_of(args_addr):
    return (ctypes.c_uint64.from_address(args_addr).value,
            ctypes.c_uint64.from_address(args_addr + 8).value)


@pytest.mark.parametrize("total,cap", [(1000, 8), (37, 3), (1, 8)])
def test_nops_run_to_completion_in_one_enter(ring, total, cap):
    step = PyNops(ring, total, cap)
    link = loop.attach_loop(ring, step)
    assert ring.enter(0, 0, GETEVENTS) == 0
    assert step.to_run == 0 and step.bad == 0
    assert link.stats()["sqes_submitted"] == total
    link.destroy()


def test_stop_returns_zero_and_other_values_einval(ring):
    results = iter([loop.IOU_LOOP_CONTINUE, 7])
    link = loop.attach_loop(ring, lambda a: next(results))
    assert ring.enter(0, 0, GETEVENTS) == -errno.EINVAL
    link.destroy()
    for bad in (2, -1, 0xFFFFFFFF):
        link = loop.attach_loop(ring, lambda a, b=bad: b)
        assert ring.enter(0, 0, GETEVENTS) == -errno.EINVAL
        link.destroy()
    link = loop.attach_loop(ring, lambda a: loop.IOU_LOOP_STOP)
    assert ring.enter(5, 3, 0) == 0  # to_submit/min_complete are ignored
    link.destroy()


def test_args_are_ctx_and_params_and_ctx_is_stable(ring):
    seen = []

    def step(args_addr):
        seen.append(args_of(args_addr))
        return loop.IOU_LOOP_STOP if len(seen) == 3 else loop.IOU_LOOP_CONTINUE

    link = loop.attach_loop(ring, step)
    assert ring.enter(0, 0, GETEVENTS) == 0
    assert seen == [(link.addr, link.params_addr)] * 3
    link.destroy()


def test_get_region_sizes_and_unknown_ids(ring):
    lib = loop.lib()
    link = loop.attach_loop(ring, lambda a: 1)
    ctx, p = link.addr, ring.params
    # regions are whole pages, as io_create_region makes them in 7.1
    sq = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_SQ, 4096, 0, 0)
    assert sq == ring.sqes_addr
    assert lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_SQ, 4097, 0, 0) == 0
    cq_size = p.cq_off.cqes + 8 * 16
    cq = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_CQ, cq_size, 0, 0)
    assert cq == ring.cq_ring_addr
    # The CQ region is the ring header: the program reads the same head/tail as the ring.
    assert u32(cq + p.cq_off.ring_entries).value == 8
    assert lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_CQ, 4096, 0, 0) == cq
    assert lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_CQ, 1 << 30, 0, 0) == 0
    assert lib.uringbpf_kf_get_region(ctx, 3, 1, 0, 0) == 0
    assert lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_MEM, 1, 0, 0) == 0  # none yet
    region = loop.register_region(ring, 100)
    assert lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_MEM, 4096, 0, 0) == region.addr
    assert lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_MEM, 4097, 0, 0) == 0
    # a bogus ctx pointer is refused, not dereferenced blindly
    assert lib.uringbpf_kf_get_region(ctx + 8, loop.IOU_REGION_SQ, 1, 0, 0) == 0
    assert ctypes.c_int64(lib.uringbpf_kf_submit_sqes(ctx + 8, 1, 0, 0, 0)).value == -errno.EINVAL
    link.destroy()


def test_mem_region_registered_before_attach_is_shared_with_the_program(ring):
    region = loop.register_region(ring, 64)
    region.view()[:4] = b"\x05\x00\x00\x00"
    lib = loop.lib()

    def step(args_addr):
        ctx, _ = args_of(args_addr)
        mem = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_MEM, 8, 0, 0)
        u32(mem + 4).value = u32(mem).value * 3
        return loop.IOU_LOOP_STOP

    link = loop.attach_loop(ring, step)
    assert ring.enter(0, 0, GETEVENTS) == 0
    assert bytes(region.view()[4:8]) == (15).to_bytes(4, "little")
    link.destroy()
    with pytest.raises(OSError) as exc:
        loop.register_region(ring, 64)
    assert exc.value.errno == errno.EBUSY


def test_wait_blocks_until_cq_tail_reaches_cq_wait_idx(ring):
    """A TIMEOUT completes later: the driver must sleep in the kernel until its CQE."""
    lib = loop.lib()
    p = ring.params
    ts = (ctypes.c_int64 * 2)(0, 20_000_000)  # 20 ms
    state = {"phase": 0, "tails": []}

    def step(args_addr):
        ctx, params = args_of(args_addr)
        rings = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_CQ, 64, 0, 0)
        sqes = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_SQ, 64, 0, 0)
        head, tail = u32(rings + p.cq_off.head), u32(rings + p.cq_off.tail)
        state["tails"].append(tail.value)
        if state["phase"] == 0:
            ctypes.memset(sqes, 0, 64)
            sqe = uapi.Sqe.from_address(sqes)
            sqe.opcode = uapi.IORING_OP_TIMEOUT
            sqe.addr = ctypes.addressof(ts)
            sqe.len = 1
            sqe.user_data = 42
            assert ctypes.c_int64(lib.uringbpf_kf_submit_sqes(ctx, 1, 0, 0, 0)).value == 1
            state["phase"] = 1
            u32(params).value = head.value + 1
            return loop.IOU_LOOP_CONTINUE
        # after the wait the CQE must be there: no spinning through empty steps
        assert tail.value - head.value == 1
        cqe = uapi.Cqe.from_address(rings + p.cq_off.cqes + 16 * (head.value & 7))
        state["cqe"] = (cqe.user_data, cqe.res)
        head.value += 1
        return loop.IOU_LOOP_STOP

    link = loop.attach_loop(ring, step)
    assert ring.enter(0, 0, GETEVENTS) == 0
    assert state["cqe"] == (42, -errno.ETIME)
    assert len(state["tails"]) == 2 and link.stats()["waits"] == 1
    link.destroy()


def test_signal_during_wait_gives_eintr_and_python_handler_runs(ring):
    fired = []
    old = signal.signal(signal.SIGALRM, lambda s, f: fired.append(s))
    try:
        def step(args_addr):
            _, params = args_of(args_addr)
            u32(params).value = 1000  # wait for CQEs that never come
            return loop.IOU_LOOP_CONTINUE

        link = loop.attach_loop(ring, step)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        assert ring.enter(0, 0, GETEVENTS) == -errno.EINTR
        assert fired == [signal.SIGALRM]
        link.destroy()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_signal_while_never_waiting_still_stops_the_loop(ring):
    """A step that never waits (busy CONTINUE) must still notice a signal: Ctrl-C works."""
    old = signal.signal(signal.SIGUSR1, lambda s, f: None)
    try:
        count = [0]

        def step(args_addr):
            count[0] += 1
            if count[0] == 5:
                os.kill(os.getpid(), signal.SIGUSR1)
            return loop.IOU_LOOP_CONTINUE if count[0] < 100000 else loop.IOU_LOOP_STOP

        link = loop.attach_loop(ring, step)
        assert ring.enter(0, 0, GETEVENTS) == -errno.EINTR
        assert count[0] < 100
        link.destroy()
    finally:
        signal.signal(signal.SIGUSR1, old)
    # our chained handler is gone again: Python's handler is back
    assert signal.getsignal(signal.SIGUSR1) is old


def _signal_state() -> str:
    """What decides where a SIGINT goes: each thread's blocked and pending sets, the
    process-wide action, Python's handler, the unraisable hook and the live threads."""
    lines = []
    for tid in sorted(os.listdir("/proc/self/task"), key=int):
        with open(f"/proc/self/task/{tid}/status") as f:
            fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        lines.append(f"task {tid} {fields['Name'].strip()}: "
                     + " ".join(f"{k}={fields[k].strip()}" for k in ("SigBlk", "SigPnd",
                                                                      "ShdPnd", "SigIgn")))
    libc = ctypes.CDLL(None, use_errno=True)
    action = (ctypes.c_uint64 * 40)()             # struct sigaction, larger than needed
    libc.sigaction(signal.SIGINT, None, action)
    lines.append(f"SIGINT action: handler={action[0]:#x} flags={action[17]:#x}")
    lines.append(f"python handler: {signal.getsignal(signal.SIGINT)!r}")
    lines.append(f"unraisablehook: {sys.unraisablehook!r}")
    lines.append(f"threads: {threading.enumerate()!r}")
    return "\n".join(lines)


def test_keyboard_interrupt_propagates(ring):
    """A Ctrl-C raised inside a step ends the loop with KeyboardInterrupt at once.

    Regression (cold-cache full-suite runs, JIT tier ``auto``): the loop went on until the
    suite's timeout. The step gives up after many calls and the failure then says where
    the signal was (which thread blocks it, what the process does with it)."""
    calls = [0]
    state = []

    def step(args_addr):
        calls[0] += 1
        if calls[0] >= 200:
            state.append(_signal_state())
            return loop.IOU_LOOP_STOP
        os.kill(os.getpid(), signal.SIGINT)
        return loop.IOU_LOOP_CONTINUE

    link = loop.attach_loop(ring, step)
    try:
        ring.enter(0, 0, GETEVENTS)
    except KeyboardInterrupt:
        pass
    else:
        pytest.fail(f"no KeyboardInterrupt after {calls[0]} steps, each raising SIGINT:\n"
                    + "\n".join(state))
    finally:
        link.destroy()
    assert calls[0] <= 2, calls[0]


def test_exception_in_step_is_raised_by_enter(ring):
    def step(args_addr):
        raise ZeroDivisionError("boom")

    link = loop.attach_loop(ring, step)
    with pytest.raises(loop.LoopError) as exc:
        ring.enter(0, 0, GETEVENTS)
    assert isinstance(exc.value.__cause__, ZeroDivisionError)
    link.destroy()


@pytest.mark.parametrize("flags,missing", [
    (RING_FLAGS & ~uapi.IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"),
    (uapi.IORING_SETUP_SQPOLL | uapi.IORING_SETUP_NO_SQARRAY, "SQPOLL"),
])
def test_attach_needs_defer_taskrun_without_sqpoll(flags, missing):
    r = make_ring(flags=flags)
    try:
        with pytest.raises(OSError) as exc:
            loop.attach_loop(r, lambda a: 1)
        assert exc.value.errno == errno.EOPNOTSUPP, missing
    finally:
        r.close()


def test_iopoll_refused():
    r = make_ring(flags=RING_FLAGS | uapi.IORING_SETUP_IOPOLL)
    try:
        with pytest.raises(OSError) as exc:
            loop.attach_loop(r, lambda a: 1)
        assert exc.value.errno == errno.EOPNOTSUPP
    finally:
        r.close()


def test_second_ops_ebusy_and_destroy_restores_enter(ring):
    calls = []
    link = loop.attach_loop(ring, lambda a: calls.append(a) or 1)
    with pytest.raises(OSError) as exc:
        loop.attach_loop(ring, lambda a: 1)
    assert exc.value.errno == errno.EBUSY
    assert ring.enter(0, 0, GETEVENTS) == 0 and len(calls) == 1
    link.destroy()
    link.destroy()  # idempotent
    assert ring.enter(0, 0, GETEVENTS) == 0 and len(calls) == 1  # the normal syscall again
    again = loop.attach_loop(ring, lambda a: calls.append(a) or 1)  # re-attach after destroy
    assert ring.enter(0, 0, GETEVENTS) == 0 and len(calls) == 2
    again.destroy()


def test_ring_from_fd_errors(tmp_path):
    with pytest.raises(OSError) as exc:
        loop.ring_from_fd(987654)
    assert exc.value.errno == errno.EBADF
    with open(tmp_path / "f", "w") as f:
        with pytest.raises(OSError) as exc:
            loop.ring_from_fd(f.fileno())
    assert exc.value.errno == errno.EOPNOTSUPP
    r = make_ring()
    try:
        assert loop.ring_from_fd(r.fd) is r
    finally:
        r.close()


def test_unconsumed_sqes_are_dropped_rewind_style(ring):
    """submit_sqes(nr > entries) consumes at most sq_entries; slot 0 is reused next time."""
    lib = loop.lib()
    p = ring.params
    got = []

    def step(args_addr):
        ctx, _ = args_of(args_addr)
        sqes = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_SQ, 8 * 64, 0, 0)
        rings = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_CQ, 64, 0, 0)
        for i in range(8):
            ctypes.memset(sqes + 64 * i, 0, 64)
            ctypes.c_uint64.from_address(sqes + 64 * i + 32).value = 100 + i
        got.append(ctypes.c_int64(lib.uringbpf_kf_submit_sqes(ctx, 50, 0, 0, 0)).value)
        head = u32(rings + p.cq_off.head)
        tail = u32(rings + p.cq_off.tail).value
        got.append(sorted(ctypes.c_uint64.from_address(
            rings + p.cq_off.cqes + 16 * (i & 7)).value for i in range(head.value, tail)))
        head.value = tail
        return loop.IOU_LOOP_STOP

    link = loop.attach_loop(ring, step)
    assert ring.enter(0, 0, GETEVENTS) == 0
    assert got == [8, list(range(100, 108))]
    assert ring.enter(0, 0, GETEVENTS) == 0
    assert got[2:] == [8, list(range(100, 108))]
    link.destroy()


def test_user_data_token_roundtrip_with_cq_larger_than_sq():
    r = make_ring(entries=4, cq_entries=16)
    try:
        step = PyNops(r, 200, cap=4)
        link = loop.attach_loop(r, step)
        assert r.enter(0, 0, GETEVENTS) == 0
        assert step.to_run == 0 and step.bad == 0 and REQ_TOKEN
        link.destroy()
    finally:
        r.close()


def test_enter_from_another_thread_eexist(ring):
    """DEFER_TASKRUN: only the ring's task may run its loop (-EEXIST), the step never runs."""
    import threading
    calls, result = [], []
    link = loop.attach_loop(ring, lambda a: calls.append(a) or 1)
    t = threading.Thread(target=lambda: result.append(ring.enter(0, 0, GETEVENTS)))
    t.start()
    t.join()
    assert result == [-errno.EEXIST] and calls == []
    assert ring.enter(0, 0, GETEVENTS) == 0 and len(calls) == 1
    link.destroy()


def test_ops_without_loop_step_efault(ring):
    link = loop.attach_loop(ring, None)
    assert ring.enter(0, 0, GETEVENTS) == -errno.EFAULT
    link.destroy()


def test_thread_pool_backend_refused():
    """Without a kernel ring there is nothing to drive: EOPNOTSUPP, like a non-ring fd."""
    from uringbpf import Ring
    r = Ring(8, cq_entries=8, flags=RING_FLAGS, backend="threads")
    try:
        with pytest.raises(OSError) as exc:
            loop.attach_loop(r, lambda a: 1)
        assert exc.value.errno == errno.EOPNOTSUPP
    finally:
        r.close()


def test_enter_after_ring_close_is_ebadf_not_a_crash():
    r = make_ring()
    step = PyNops(r, 100)
    link = loop.attach_loop(r, step)
    hook = link.enter_hook
    r.close()
    assert hook(r, 0, 0, GETEVENTS) == -errno.EBADF and step.calls == 0
    assert loop.attachment_of(r) is None


@pytest.mark.parametrize("deny", [False, True])
def test_ring_without_sq_rewind_program_queues_by_head_tail(deny):
    """Without SQ_REWIND the program fills SQEs at the SQ tail itself (7.1 rules)."""
    from uringbpf.designs import filter as flt
    r = make_ring(flags=RING_FLAGS & ~uapi.IORING_SETUP_SQ_REWIND)
    try:
        if deny:
            assert flt.register_bpf_filter(r, uapi.IORING_OP_NOP, [flt.cbpf.stmt(0x06, 0)]) == 0
        lib = loop.lib()
        p = r.params
        out = []

        def step(args_addr):
            ctx, _ = args_of(args_addr)
            sqes = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_SQ, 4096, 0, 0)
            hdr = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_CQ, 4096, 0, 0)
            tail = u32(hdr + p.sq_off.tail)
            for ud in (11, 12):
                slot = tail.value & (p.sq_entries - 1)
                ctypes.memset(sqes + 64 * slot, 0, 64)
                ctypes.c_uint64.from_address(sqes + 64 * slot + 32).value = ud
                tail.value += 1
            # a refusal ends the batch (io_submit_sqes): 12 stays queued
            want = 1 if deny else 2
            assert ctypes.c_int64(lib.uringbpf_kf_submit_sqes(ctx, 2, 0, 0, 0)).value == want
            head, ctail = u32(hdr + p.cq_off.head), u32(hdr + p.cq_off.tail)
            for i in range(head.value, ctail.value):
                cqe = uapi.Cqe.from_address(hdr + p.cq_off.cqes + 16 * (i & 7))
                out.append((cqe.user_data, cqe.res))
            head.value = ctail.value
            return loop.IOU_LOOP_STOP

        link = loop.attach_loop(r, step)
        assert link.ctx.sq_mode == 0
        assert r.enter(0, 0, GETEVENTS) == 0
        assert sorted(out) == ([(11, -errno.EACCES)] if deny else [(11, 0), (12, 0)])
        assert link.stats()["sqes_denied"] == (1 if deny else 0)
        link.destroy()
    finally:
        r.close()
