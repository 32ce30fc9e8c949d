"""The 2021 BPF-requests RFC engine on the real kernel ring: CQs, routing, registration,
IORING_OP_BPF checks, parking, helpers, the live-lock guard and the Dietrich/Schirmeier
additions.  Programs here are hand-assembled and run on the reference interpreter; the
C examples (interpreter and JIT) are in test_requests_examples.py."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
import threading
import time

import pytest

from uringbpf import native
from uringbpf.bpf import asm, isa
from uringbpf.bpf.memory import BpfMemoryError
from uringbpf.callbacks import barrier
from uringbpf.designs import requests as R
from uringbpf.uring import uapi as u
from uringbpf.uring.ring import Ring as PlainRing


def prog(text: str, name: str = "p", sleepable: bool = False) -> isa.Program:
    sec = ("iouring.s/" if sleepable else "iouring/") + name
    return isa.Program(name, asm.assemble(text), section=sec, sleepable=sleepable)


# emit(CQ 1, user_data = ctx->user_data, res 7) and complete
EMIT1 = """
r6 = r1
r3 = *(u64 *)(r1 + 0)
r1 = r6
r2 = 1
r4 = 7
r5 = 0
call 165
r0 = 0
exit
"""

# First run: CQ 1 is empty -> park for 2 CQEs on CQ 1.  Second run: reap both and emit
# (sum of their user_data, res = ctx->wait_nr seen at entry, which must be 0) to CQ 0.
WAIT2 = """
r6 = r1
r7 = *(u32 *)(r6 + 8)
r1 = r6
r2 = 1
r3 = r10
r3 += -16
r4 = 16
call 166
if r0 == 0 goto second
*(u32 *)(r6 + 8) = 2
*(u32 *)(r6 + 12) = 1
r0 = 0
exit
second:
r8 = *(u64 *)(r10 - 16)
r1 = r6
r2 = 1
r3 = r10
r3 += -16
r4 = 16
call 166
r9 = *(u64 *)(r10 - 16)
r8 += r9
r1 = r6
r2 = 0
r3 = r8
r4 = r7
r5 = 0
call 165
r0 = 0
exit
"""

# Park forever on CQ 1 (wait for 1000 CQEs).
PARK = """
*(u32 *)(r1 + 8) = 1000
*(u32 *)(r1 + 12) = 1
r0 = 0
exit
"""

# r6 = ctx, a zeroed 64-byte SQE at r10 - 64 / queue it (helper 164) and complete
_SQE_ON_STACK = """
r6 = r1
r1 = 0
*(u64 *)(r10 - 64) = r1
*(u64 *)(r10 - 56) = r1
*(u64 *)(r10 - 48) = r1
*(u64 *)(r10 - 40) = r1
*(u64 *)(r10 - 32) = r1
*(u64 *)(r10 - 24) = r1
*(u64 *)(r10 - 16) = r1
*(u64 *)(r10 - 8) = r1
"""
_QUEUE_IT = """
r1 = r6
r2 = r10
r2 += -64
r3 = 64
call 164
r0 = 0
exit
"""

# Sleepable: queue a copy of itself (IORING_OP_BPF, slot 0, CQE to CQ 1), then complete.
REQUEUE = _SQE_ON_STACK + f"""
r1 = {R.IORING_OP_BPF}
*(u8 *)(r10 - 64) = r1
r1 = *(u64 *)(r6 + 0)
*(u64 *)(r10 - 32) = r1
r1 = 1
*(u16 *)(r10 - 16) = r1
""" + _QUEUE_IT

# Helper error codes, each emitted to CQ 0 as (user_data = case, res = return value).
HELPER_ERRORS = """
r6 = r1
r1 = r6
r2 = 9
r3 = 0
r4 = 0
r5 = 0
call 165
r1 = r6
r2 = 0
r3 = 1
r4 = r0
r5 = 0
call 165
r1 = -1
*(u64 *)(r10 - 16) = r1
*(u64 *)(r10 - 8) = r1
r1 = r6
r2 = 1
r3 = r10
r3 += -16
r4 = 16
call 166
r1 = r6
r2 = 0
r3 = 2
r4 = r0
r5 = 0
call 165
r1 = r6
r2 = 0
r3 = 3
r4 = *(u64 *)(r10 - 16)
r5 = 0
call 165
r1 = r6
r2 = 1
r3 = r10
r3 += -16
r4 = 8
call 166
r1 = r6
r2 = 0
r3 = 4
r4 = r0
r5 = 0
call 165
r1 = r6
r2 = 1
r3 = 50
r4 = 0
r5 = 0
call 165
r1 = r6
r2 = 1
r3 = 51
r4 = 0
r5 = 0
call 165
r1 = r6
r2 = 0
r3 = 5
r4 = r0
r5 = 0
call 165
r1 = r6
r2 = r10
r2 += -16
r3 = 16
call 164
r1 = r6
r2 = 0
r3 = 6
r4 = r0
r5 = 0
call 165
r0 = 0
exit
"""

# Read the CQ ring directly: ctx->user_data = address of a CQ; emit its tail to CQ 0.
READ_TAIL = """
r6 = r1
r2 = *(u64 *)(r6 + 0)
r4 = *(u32 *)(r2 + {tail})
r1 = r6
r2 = 0
r3 = 1
r5 = 0
call 165
r0 = 0
exit
"""

# Reap one CQE from CQ 1 and emit (user_data 100, res = its res + 1000) to CQ 0.
POSTPROCESS = """
r6 = r1
r1 = r6
r2 = {cq}
r3 = r10
r3 += -16
r4 = 16
call 166
r4 = -1
if r0 != 0 goto out
r4 = *(s32 *)(r10 - 8)
r4 += 1000
out:
r1 = r6
r2 = 0
r3 = 100
r5 = 0
call 165
r0 = 0
exit
"""

# Emit (ctx->user_data, 0) to CQ 2, then park on CQ 1 for one CQE; the second run reaps it.
MARK_AND_WAIT = """
r6 = r1
r1 = r6
r2 = 1
r3 = r10
r3 += -16
r4 = 16
call 166
if r0 == 0 goto done
r1 = r6
r2 = 2
r3 = *(u64 *)(r6 + 0)
r4 = 0
r5 = 0
call 165
*(u32 *)(r6 + 8) = 1
*(u32 *)(r6 + 12) = 1
done:
r0 = 0
exit
"""

BAD_LOAD = """
r2 = 0
r0 = *(u64 *)(r2 + 0)
r0 = 0
exit
"""


_MODE = {"native": False}


@pytest.fixture(autouse=True, params=["python-engine", "native-engine"])
def engine_kind(request):
    """Every test runs on both engines (designs/requests.py and native/requests.c)."""
    _MODE["native"] = request.param == "native-engine"
    yield request.param


def mkring(*args, **kwargs):
    r = R.Ring(*args, native=_MODE["native"], **kwargs)
    assert r.requests.native == _MODE["native"]
    return r


@pytest.fixture(params=["interp", "jit"])
def engine(request):
    return request.param


@pytest.fixture
def ring():
    r = mkring(8, nr_cq=2, cq_sizes=[16, 4])
    yield r
    r.close()


def nop(r, user_data, cq_idx=0, flags=0):
    sqe = r.get_sqe()
    sqe.opcode, sqe.fd, sqe.user_data, sqe.flags = u.IORING_OP_NOP, -1, user_data, flags
    sqe.cq_idx = cq_idx
    return sqe


# --- CQs and routing ------------------------------------------------------------------
def test_setup_validation_and_layout():
    for kwargs in ({"nr_cq": 1}, {"cq_sizes": [8]}, {"nr_cq": 2, "cq_sizes": [8]},
                   {"nr_cq": 1025, "cq_sizes": [8] * 1025}, {"nr_cq": 1, "cq_sizes": [0]}):
        with pytest.raises(OSError) as exc:
            mkring(4, **kwargs)
        assert exc.value.errno == errno.EINVAL
    r = mkring(4, nr_cq=2, cq_sizes=[5, 128])
    try:
        assert r.nr_cqs == 3
        co = r.params.cq_off
        for i, want in ((0, r.cq_entries), (1, 8), (2, 128)):
            cq = r.cq(i)
            assert cq.entries == want          # rounded up to a power of two
            assert ctypes.c_uint32.from_address(cq.addr + co.ring_entries).value == want
            assert ctypes.c_uint32.from_address(cq.addr + co.ring_mask).value == want - 1
            assert cq.size == co.cqes + want * r.cqe_size
        with pytest.raises(IndexError):
            r.cq(3)
    finally:
        r.close()
    r = mkring(4, nr_cq=1024, cq_sizes=[1] * 1024)    # IO_MAX_CQRINGS extra CQs
    try:
        nop(r, 7, cq_idx=1024)
        nop(r, 8, cq_idx=1025)
        r.submit()
        r.wait_cqe()
        assert r.reap() == [(8, -errno.EINVAL, 0)]
        assert r.cq(1024).drain() == [(7, 0, 0)]
    finally:
        r.close()


def test_cq_idx_routes_and_out_of_range_fails_on_cq0(ring):
    nop(ring, 2, cq_idx=1)
    nop(ring, 3, cq_idx=2)
    nop(ring, 4, cq_idx=3)        # out of range
    nop(ring, 5)
    # the out-of-range SQE fails in io_init_req, which ends the submission batch
    assert ring.submit() == 3
    ring.submit()   # the native engine's pump may already have handed nop 5 over (H15 report)
    ring.wait_cqe_nr(2)
    assert ring.reap() == [(4, -errno.EINVAL, 0), (5, 0, 0)]
    assert ring.cq(1).drain() == [(2, 0, 0)]
    assert ring.cq(2).drain() == [(3, 0, 0)]
    # the kernel CQ was drained: nothing left behind under a token
    assert ring.requests.tokens_in_flight() == 0


def test_only_cq0_keeps_overflow(ring):
    for i in range(6):
        nop(ring, 10 + i, cq_idx=2)   # CQ 2 has 4 entries
    ring.submit()
    ring.peek_cqe()
    assert [c[0] for c in ring.cq(2).drain()] == [10, 11, 12, 13]
    assert ring.cq(2).overflow == 2
    n0 = ring.cq_entries
    for batch in range(0, n0 + 3, 8):
        for i in range(batch, min(batch + 8, n0 + 3)):
            nop(ring, 1000 + i)
        ring.submit()
    ring.peek_cqe()
    assert ring.cq_ready() == n0 and ring.cq(0).overflow == 0
    got = [c.user_data for c in ring.reap()]
    got += [c.user_data for c in ring.reap()]      # the backlog moved in after the advance
    assert got == [1000 + i for i in range(n0 + 3)]


def test_cancel_finds_a_routed_request(ring):
    sqe = ring.get_sqe()
    ts = u.KernelTimespec.from_seconds(30)
    u_ts = ctypes.addressof(ts)
    sqe.opcode, sqe.fd, sqe.addr, sqe.len, sqe.user_data = u.IORING_OP_TIMEOUT, -1, u_ts, 1, 77
    sqe.cq_idx = 1
    ring.submit()
    ring.prep_cancel(77, user_data=78)
    ring.submit()
    assert ring.wait_cqe().res == 0 and ring.wait_cqe().user_data == 78
    ring.cqe_seen()
    ring.wait_cqe_nr(1, cq_idx=1)
    assert ring.cq(1).drain() == [(77, -errno.ECANCELED, 0)]


def test_enable_requests_on_an_open_ring():
    r = PlainRing(8)
    try:
        eng = R.enable_requests(r, 1, [8])
        assert isinstance(r, R.Ring) and r.requests is eng
        nop(r, 9, cq_idx=1)
        r.submit()
        r.peek_cqe()
        assert r.cq(1).drain() == [(9, 0, 0)]
        with pytest.raises(RuntimeError):
            R.enable_requests(r, 1, [8])
    finally:
        r.close()


# --- registration -----------------------------------------------------------------------
def test_register_errors(ring):
    assert ring.unregister_bpf() == -errno.ENXIO
    assert ring.register_bpf([]) == -errno.EINVAL
    assert ring.register_bpf([None] * 101) == -errno.EINVAL
    sock = isa.Program("s", asm.assemble("r0 = 0\nexit"), section="socket")
    assert ring.register_bpf([sock]) == -errno.EINVAL
    assert ring.register_bpf([prog(EMIT1), -1, None]) == 0
    assert ring.register_bpf([prog(EMIT1)]) == -errno.EBUSY
    assert ring.unregister_bpf() == 0
    assert ring.unregister_bpf() == -errno.ENXIO
    assert ring.register_bpf([None] * 100) == 0


def test_bpf_sqe_checks(ring, engine):
    assert ring.register_bpf([prog(EMIT1), None], engine) == 0
    cases = []

    def add(ud, **fields):
        sqe = R.prep_bpf(ring.get_sqe(), fields.pop("index", 0), ud, fields.pop("cq_idx", 0))
        for k, v in fields.items():
            setattr(sqe, k, v)
        cases.append(ud)

    add(1, index=1)                        # hole
    add(2, index=2)                        # past the table
    add(3, addr=8)
    add(4, len=1)
    add(5, ioprio=1)
    add(6, flags=u.IOSQE_FIXED_FILE)
    add(7, flags=u.IOSQE_BUFFER_SELECT)
    add(8, cq_idx=3)                       # bad cq_idx: fails on CQ 0
    ring.submit()
    ring.wait_cqe_nr(8)
    got = dict((c.user_data, c.res) for c in ring.reap())
    assert got == {1: -errno.EFAULT, 2: -errno.EFAULT, 3: -errno.EINVAL, 4: -errno.EINVAL,
                   5: -errno.EINVAL, 6: -errno.EINVAL, 7: -errno.EINVAL, 8: -errno.EINVAL}
    # an error goes to the request's own (valid) CQ
    R.prep_bpf(ring.get_sqe(), 1, 9, cq_idx=1)
    ring.submit()
    ring.wait_cqe_nr(1, cq_idx=1)
    assert ring.cq(1).drain() == [(9, -errno.EFAULT, 0)]
    assert ring.requests.stats["runs"] == 0


def test_bpf_request_runs_and_completes_on_its_cq(ring, engine):
    assert ring.register_bpf([prog(EMIT1)], engine) == 0
    ring.prep_bpf(0, user_data=0x55, cq_idx=2)
    ring.submit()
    ring.wait_cqe_nr(1, cq_idx=2)
    assert ring.cq(1).drain() == [(0x55, 7, 0)]
    assert ring.cq(2).drain() == [(0x55, 0, 0)]
    assert ring.cq_ready() == 0


def test_wait_nr_parks_and_reruns_with_a_fresh_ctx(ring, engine):
    assert ring.register_bpf([prog(WAIT2)], engine) == 0
    ring.prep_bpf(0, user_data=1)
    ring.submit()
    assert ring.requests.nr_parked() == 1 and ring.cq_ready() == 0
    nop(ring, 40, cq_idx=1)
    ring.submit()
    assert ring.requests.nr_parked() == 1 and ring.cq_ready() == 0
    nop(ring, 2, cq_idx=1)
    ring.submit()
    ring.wait_cqe_nr(2)
    assert ring.reap() == [(42, 0, 0), (1, 0, 0)]
    assert ring.requests.stats["runs"] == 2


def test_helper_error_codes(engine):
    r = mkring(8, nr_cq=1, cq_sizes=[1])
    try:
        assert r.register_bpf([prog(HELPER_ERRORS, sleepable=True)], engine) == 0
        r.prep_bpf(0, user_data=99)
        r.submit()
        r.wait_cqe_nr(7)
        got = {c.user_data: c.res for c in r.reap()}
        assert got == {1: -errno.EINVAL,            # emit to a missing CQ
                       2: -errno.ENOENT,            # reap from an empty CQ
                       3: 0,                        # ...which zeroes the output
                       4: -errno.EINVAL,            # reap with a bad length
                       5: -errno.ENOMEM,            # emit to a full extra CQ
                       6: -errno.EINVAL,            # queue_sqe with a bad length
                       99: 0}
        assert r.cq(1).drain() == [(50, 0, 0)]
    finally:
        r.close()


def test_programs_read_cq_memory_directly(ring, engine):
    text = READ_TAIL.format(tail=ring.params.cq_off.tail)
    assert ring.register_bpf([prog(text)], engine) == 0
    for i in range(3):
        nop(ring, i, cq_idx=1)
    ring.submit()
    ring.prep_bpf(0, user_data=ring.cq(1).addr)
    ring.submit()
    ring.wait_cqe_nr(2)
    assert ring.reap()[0] == (1, 3, 0)


def test_runtime_fault_fails_the_request(ring, engine):
    assert ring.register_bpf([prog(BAD_LOAD)], engine) == 0
    ring.prep_bpf(0, user_data=5)
    ring.submit()
    assert ring.wait_cqe().res == -errno.EFAULT
    assert isinstance(ring.requests.errors[0], BpfMemoryError)


def test_skip_success_and_async_cancel_of_a_parked_request(ring, engine):
    assert ring.register_bpf([prog(EMIT1), prog(PARK)], engine) == 0
    ring.prep_bpf(0, user_data=3, flags=u.IOSQE_CQE_SKIP_SUCCESS)
    ring.prep_bpf(1, user_data=4)
    ring.submit()
    assert ring.cq_ready() == 0 and ring.requests.pending() == 1
    ring.prep_cancel(4, user_data=5)
    ring.submit()
    ring.wait_cqe_nr(2)
    assert sorted(ring.reap()) == [(4, -errno.ECANCELED, 0), (5, 0, 0)]
    assert ring.cq(1).drain() == [(3, 7, 0)]


# --- live-lock guard ----------------------------------------------------------------------
def test_self_requeuing_program_does_not_starve_the_application(engine):
    r = mkring(8, nr_cq=1, cq_sizes=[2], max_runs_per_enter=50)
    try:
        assert r.register_bpf([prog(REQUEUE, sleepable=True)], engine) == 0
        r.prep_bpf(0, user_data=1, cq_idx=1)
        r.submit()
        assert r.requests.stats["runs"] <= 50
        for i in range(3):
            nop(r, 100 + i)
            r.submit()
            assert r.wait_cqe().user_data == 100 + i
            r.cqe_seen()
        assert r.requests.stats["runs"] <= 50 * 7
        assert r.requests.pending() >= 1          # still going
    finally:
        r.close()
    assert r.closed


def _interrupt_soon(delay=0.3):
    pid = os.getpid()
    t = threading.Timer(delay, lambda: os.kill(pid, signal.SIGINT))
    t.start()
    return t


@pytest.mark.parametrize("program", ["park", "requeue"])
def test_ctrl_c_interrupts_a_wait(program, engine):
    r = mkring(8, nr_cq=1, cq_sizes=[2])
    try:
        text, sleepable = (PARK, False) if program == "park" else (REQUEUE, True)
        assert r.register_bpf([prog(text, sleepable=sleepable)], engine) == 0
        r.prep_bpf(0, user_data=1, cq_idx=1)
        r.submit()
        t = _interrupt_soon()
        with pytest.raises(KeyboardInterrupt):
            r.wait_cqe()
        t.join()
        assert r.requests.pending() >= 1
        eng = r.requests
    finally:
        r.close()
    assert eng.pending() == 0 and eng.stats["cancelled"] >= 1


# Sleepable: queue one NOP (user_data 99, CQ 0), then complete.
QUEUE_NOP = _SQE_ON_STACK + """
r1 = 99
*(u64 *)(r10 - 32) = r1
""" + _QUEUE_IT


def _all_cqes(r, cq_idx):
    return sorted((c.user_data, c.res) for c in r.reap(cq_idx=cq_idx))


@pytest.mark.parametrize("flags", [0, u.IORING_SETUP_NO_SQARRAY])
def test_program_sqes_do_not_carry_unfiltered_sqes_of_a_cut_batch(engine, flags):
    """A refused SQE ends its batch (uring/ring.py): the SQEs after it wait in the kernel
    SQ for the next enter, not yet filtered.  A program's SQE must not hand them to the
    kernel behind the filters' back.  Regression: the native engine's C io_uring_enter
    (flush_sq) submitted them raw, so the NOP routed to CQ 1 completed on CQ 0."""
    r = mkring(8, nr_cq=1, cq_sizes=[4], flags=flags)
    try:
        assert r.register_bpf([prog(QUEUE_NOP, sleepable=True)], engine) == 0
        r.prep_bpf(0, user_data=10)
        nop(r, 1, cq_idx=5)                   # refused (-EINVAL): ends the first batch
        nop(r, 2, cq_idx=5)                   # refused: ends the next one
        nop(r, 3, cq_idx=1)                   # its CQE belongs on CQ 1
        assert r.submit() == 2
        deadline = time.monotonic() + 10
        while r.cq_ready(0) < 4 and time.monotonic() < deadline:
            r.requests.pump()                 # the program runs once its NOP completed
            r.submit()
        assert _all_cqes(r, 1) == [(3, 0)]
        assert _all_cqes(r, 0) == [(1, -errno.EINVAL), (2, -errno.EINVAL), (10, 0), (99, 0)]
        assert r.requests.errors == []
    finally:
        r.close()


# Spin for long (seconds interpreted, ms JIT), then park on CQ 1.
SPIN_THEN_PARK = """
r6 = r1
r2 = 0
spin:
r2 += 1
if r2 < 20000000 goto spin
*(u32 *)(r6 + 8) = 1000
*(u32 *)(r6 + 12) = 1
r0 = 0
exit
"""


def test_ctrl_c_during_a_program_run_stops_the_loop_and_keeps_the_request(engine):
    """SIGINT while a program runs (interpreted: inside the C -> Python trampoline; JIT:
    in C, then in io_uring_enter).  Regression: the native engine's trampoline once
    recorded the KeyboardInterrupt as a program fault, so C completed the request with
    -EFAULT, did not stop, and the wait blocked for ever (here: TimeoutError)."""
    r = mkring(8, nr_cq=1, cq_sizes=[2])
    try:
        assert r.register_bpf([prog(SPIN_THEN_PARK)], engine) == 0
        r.prep_bpf(0, user_data=1, cq_idx=1)
        t = _interrupt_soon()
        with pytest.raises(KeyboardInterrupt):
            r.submit()                        # programs run inside submit and wait
            r.wait_cqe(timeout=10)
        t.join()
        eng = r.requests
        assert eng.errors == [] and eng.stats.get("faults", 0) == 0
        assert eng.pending() == 1             # interrupted, not completed: it runs again
    finally:
        r.close()
    assert eng.pending() == 0 and eng.stats["cancelled"] == 1


def _filter_that_raises(exc_factory, on_call: int):
    """A Python SQE filter (another design's, as far as the engine knows) that raises on its
    ``on_call``-th SQE: the native engine then submits programs' SQEs through a C -> Python
    callback, so the exception is raised inside a program run, under C frames.  Counting
    starts when ``calls[0]`` is set to 0 (``None``: disarmed)."""
    calls: list = [None]

    def sqe_filter(sqe):
        if calls[0] is None:
            return 0
        calls[0] += 1
        if calls[0] == on_call:
            exc = exc_factory()
            if exc is None:                   # a real SIGINT, handled inside this frame
                signal.raise_signal(signal.SIGINT)
            else:
                raise exc
        return 0
    return sqe_filter, calls


def test_ctrl_c_inside_a_program_run_is_raised_and_the_request_survives(engine):
    """Deterministic Ctrl-C inside a C callback (no timing): it must come out of the wait
    as KeyboardInterrupt (not recorded as a program fault, which leaves the request
    completed with -EFAULT and the wait blocked), and the C loop must stop and keep the
    request, which runs on at the next wait."""
    r = mkring(8, nr_cq=1, cq_sizes=[2])
    try:
        sqe_filter, calls = _filter_that_raises(lambda: None, on_call=4)
        r.add_sqe_filter(sqe_filter)
        assert r.register_bpf([prog(REQUEUE, sleepable=True)], engine) == 0
        r.prep_bpf(0, user_data=1, cq_idx=1)
        r.submit()
        calls[0] = 0
        with pytest.raises(KeyboardInterrupt):
            r.wait_cqe(timeout=10)            # a lost interrupt ends as TimeoutError
        eng = r.requests
        assert eng.errors == [] and eng.stats.get("faults", 0) == 0   # native counts faults
        assert eng.pending() >= 1
        seen = calls[0]
        with pytest.raises(TimeoutError):     # the request is not lost: it runs on
            r.wait_cqe(timeout=0.05)
        assert calls[0] > seen
    finally:
        r.close()
    assert eng.pending() == 0


class _FilterBug(Exception):
    """What the test's buggy SQE filter raises."""


@pytest.mark.parametrize("exc_factory", [lambda: ValueError("filter bug"),
                                         lambda: _FilterBug("filter bug")])
def test_an_exception_inside_a_program_run_surfaces_from_the_wait(engine, exc_factory):
    """An exception a Python SQE filter raises while a program's helper submits is raised
    again once the run is over, as itself, on every engine: not printed and dropped, not
    the program's runtime error.  Regression: on the Python engine with the interpreter
    (the helper runs in Python there) it became the program's error, the request completed
    with -EFAULT and the wait timed out; with the JIT the Python engine dropped the
    request from its run queue.  The request is kept and runs on."""
    r = mkring(8, nr_cq=1, cq_sizes=[2])
    try:
        sqe_filter, calls = _filter_that_raises(exc_factory, on_call=3)
        r.add_sqe_filter(sqe_filter)
        assert r.register_bpf([prog(REQUEUE, sleepable=True)], engine) == 0
        r.prep_bpf(0, user_data=1, cq_idx=1)
        r.submit()
        calls[0] = 0
        kind = type(exc_factory())
        with pytest.raises(kind, match="filter bug") as got:
            r.wait_cqe(timeout=10)
        assert type(got.value) is kind
        eng = r.requests
        assert eng.errors == [] and eng.stats.get("faults", 0) == 0
        assert eng.pending() == 1
        seen = calls[0]
        with pytest.raises(TimeoutError):     # not lost: it runs on (REQUEUE never ends)
            r.wait_cqe(timeout=0.05)
        assert calls[0] > seen and eng.errors == []
    finally:
        r.close()


def test_close_cancels_parked_requests(engine):
    r = mkring(8, nr_cq=1, cq_sizes=[2])
    assert r.register_bpf([prog(PARK)], engine) == 0
    for i in range(3):
        r.prep_bpf(0, user_data=i)
    r.submit()
    eng = r.requests
    assert eng.nr_parked() == 3
    r.close()
    assert eng.nr_parked() == 0 and eng.pending() == 0 and eng.stats["cancelled"] == 3
    assert all(q.engine is not eng for q in R._CTX_OWNERS.values())


def test_wait_timeout(ring, engine):
    assert ring.register_bpf([prog(PARK)], engine) == 0
    ring.prep_bpf(0, user_data=1)
    ring.submit()
    with pytest.raises(TimeoutError):
        ring.wait_cqe(timeout=0.05)


# --- the Dietrich/Schirmeier model ------------------------------------------------------------
def test_linked_postprocess_with_suppressed_cqe(tmp_path, engine):
    """READ with its CQE on the private CQ, linked to a BPF request that turns it into
    one CQE for the application: the 'Postprocess' use case."""
    path = tmp_path / "data"
    path.write_bytes(b"x" * 300)
    r = mkring(8, private_cq=True)
    fd = os.open(path, os.O_RDONLY)
    buf = ctypes.create_string_buffer(4096)
    try:
        pcq = r.private_cq
        assert pcq == 1 and r.nr_cqs == 2
        assert r.register_bpf([prog(POSTPROCESS.format(cq=pcq))], engine) == 0
        sqe = r.get_sqe()
        sqe.opcode, sqe.fd, sqe.addr, sqe.len, sqe.user_data = (
            u.IORING_OP_READ, fd, ctypes.addressof(buf), 300, 7)
        sqe.flags = u.IOSQE_IO_LINK
        sqe.cq_idx = pcq
        r.prep_bpf(0, user_data=8, flags=u.IOSQE_CQE_SKIP_SUCCESS)
        r.submit()
        r.wait_cqe()
        assert r.reap() == [(100, 1300, 0)]
        assert r.cq(pcq).ready() == 0
    finally:
        r.close()
        os.close(fd)


def test_broken_link_cancels_the_bpf_request_without_running_it(ring, engine):
    assert ring.register_bpf([prog(EMIT1)], engine) == 0
    sqe = ring.get_sqe()
    sqe.opcode, sqe.fd, sqe.user_data, sqe.flags = u.IORING_OP_READ, -1, 1, u.IOSQE_IO_LINK
    sqe.addr, sqe.len = 0, 8
    ring.prep_bpf(0, user_data=2)
    ring.submit()
    ring.wait_cqe_nr(2)
    assert ring.reap() == [(1, -errno.EBADF, 0), (2, -errno.ECANCELED, 0)]
    assert ring.requests.stats["runs"] == 0


@pytest.mark.parametrize("serialize", [False, True])
def test_serialisation_flag(serialize, engine):
    r = mkring(8, nr_cq=2, cq_sizes=[8, 8], serialize=serialize)
    try:
        assert r.register_bpf([prog(MARK_AND_WAIT)], engine) == 0
        r.prep_bpf(0, user_data=1)
        r.prep_bpf(0, user_data=2)
        r.submit()
        first = [c[0] for c in r.cq(2).drain()]
        assert first == ([1] if serialize else [1, 2])
        nop(r, 0, cq_idx=1)
        r.submit()
        r.wait_cqe()
        assert r.reap() == [(1, 0, 0)]
        # serialised: B runs for the first time only now; otherwise B was woken with A,
        # found CQ 1 already reaped, and marked and parked again
        assert [c[0] for c in r.cq(2).drain()] == [2]
        nop(r, 0, cq_idx=1)
        r.submit()
        r.wait_cqe()
        assert r.reap() == [(2, 0, 0)]
    finally:
        r.close()


def test_thread_pool_backend_uses_the_python_engine():
    r = R.Ring(8, nr_cq=1, cq_sizes=[4], backend="threads")
    try:
        assert r.backend == "threads" and not r.requests.native
        nop(r, 5, cq_idx=1)
        nop(r, 6)
        r.submit()
        assert r.wait_cqe(timeout=5).user_data == 6
        r.cqe_seen()
        r.wait_cqe_nr(1, timeout=5, cq_idx=1)
        assert r.cq(1).drain() == [(5, 0, 0)]
    finally:
        r.close()
    with pytest.raises(ValueError):
        R.Ring(8, backend="threads", native=True)


def test_unregister_cancels_a_request_waiting_in_a_link_chain(engine):
    r = mkring(8)
    try:
        assert r.register_bpf([prog(EMIT1)], engine) == 0
        ts = u.KernelTimespec.from_seconds(0.05)
        sqe = r.get_sqe()
        sqe.opcode, sqe.fd, sqe.addr, sqe.len, sqe.user_data = (
            u.IORING_OP_TIMEOUT, -1, ctypes.addressof(ts), 1, 1)
        sqe.flags = u.IOSQE_IO_LINK
        r.prep_bpf(0, user_data=2)
        r.submit()
        assert r.requests.pending() == 1
        assert r.unregister_bpf() == 0
        assert r.reap() == [(2, -errno.ECANCELED, 0)]
        assert r.register_bpf([prog(EMIT1)], engine) == 0
        r.prep_bpf(0, user_data=3)          # may reuse the cancelled request's slot
        r.submit()
        r.wait_cqe_nr(1)
        assert r.reap() == [(3, 0, 0)]
        r.wait_cqe()                        # the timeout fires; its NOP's CQE is dropped
        assert r.reap() == [(1, -errno.ETIME, 0)]
        assert r.requests.stats["runs"] == 1
        assert r.requests.tokens_in_flight() == 0
        assert r.peek_cqe() is None
    finally:
        r.close()


def test_cancel_a_request_queued_behind_a_serialised_one(engine):
    r = mkring(8, nr_cq=1, cq_sizes=[4], serialize=True)
    try:
        assert r.register_bpf([prog(PARK)], engine) == 0
        r.prep_bpf(0, user_data=1)
        r.prep_bpf(0, user_data=2)
        r.submit()
        assert r.requests.nr_parked() == 1 and r.requests.pending() == 2
        r.prep_cancel(2, user_data=3)
        r.submit()
        r.wait_cqe_nr(2)
        assert sorted(r.reap()) == [(2, -errno.ECANCELED, 0), (3, 0, 0)]
        assert r.requests.pending() == 1 and r.requests.stats["runs"] == 1
    finally:
        r.close()


def test_ring_prep_helpers_with_cq_idx_keep_their_buffers_right(tmp_path, engine):
    """prep_read keeps its buffer alive by user_data: routing swaps user_data for a token
    in the kernel and restores it before the ring's bookkeeping sees the CQE."""
    path = tmp_path / "f"
    path.write_bytes(b"0123456789" * 100)
    r = mkring(8, nr_cq=1, cq_sizes=[8])
    fd = os.open(path, os.O_RDONLY)
    try:
        assert r.register_bpf([prog(EMIT1)], engine) == 0
        bufs = [bytearray(10) for _ in range(3)]
        for i, b in enumerate(bufs):
            sqe = r.prep_read(fd, b, 10 * i, user_data=500 + i)
            sqe.cq_idx = 1
        r.prep_bpf(0, user_data=9)
        r.submit()
        r.wait_cqe()                       # the BPF request's completion on CQ 0
        assert r.reap() == [(9, 0, 0)]
        r.wait_cqe_nr(4, timeout=10, cq_idx=1)
        got = sorted(r.cq(1).drain())
        assert got == [(9, 7, 0), (500, 10, 0), (501, 10, 0), (502, 10, 0)]
        assert all(bytes(b) == b"0123456789" for b in bufs)
        assert r.requests.tokens_in_flight() == 0
    finally:
        r.close()
        os.close(fd)


def test_requests_linked_after_a_bpf_request_wait_for_it(engine):
    r = mkring(8, nr_cq=2, cq_sizes=[8, 8])
    try:
        assert r.register_bpf([prog(MARK_AND_WAIT), None], engine) == 0
        r.prep_bpf(0, user_data=1, flags=u.IOSQE_IO_LINK)      # parks on CQ 1
        nop(r, 77)
        r.submit()
        assert r.requests.nr_parked() == 1
        assert r.peek_cqe() is None                             # the NOP waits
        nop(r, 5, cq_idx=1)                                     # wake the program
        r.submit()
        r.wait_cqe_nr(2, timeout=10)
        assert r.reap() == [(1, 0, 0), (77, 0, 0)]
        # a failing BPF request breaks its chain, like any failed linked request
        r.prep_bpf(1, user_data=2, flags=u.IOSQE_IO_LINK)      # empty slot: -EFAULT
        nop(r, 78)
        r.submit()
        r.wait_cqe_nr(2, timeout=10)
        assert r.reap() == [(2, -errno.EFAULT, 0), (78, -errno.ECANCELED, 0)]
        assert r.requests.tokens_in_flight() == 0
    finally:
        r.close()


def test_stray_gate_sqe_is_refused(ring):
    R.prep_bpf_gate(ring.get_sqe())
    ring.get_sqe().user_data = 0
    ring.submit()
    ring.wait_cqe_nr(1)
    assert ring.reap()[0].res == -errno.EINVAL


@pytest.mark.parametrize("flags", ["CQE32", "SQ_REWIND"])
def test_other_ring_layouts(flags, engine):
    setup = {"CQE32": u.IORING_SETUP_CQE32, "SQ_REWIND": u.IORING_SETUP_SQ_REWIND}[flags]
    r = mkring(8, flags=setup, nr_cq=2, cq_sizes=[8, 8])
    try:
        assert r.cq(1).cqe_size == r.cqe_size
        assert r.register_bpf([prog(WAIT2), prog(EMIT1)], engine) == 0
        r.prep_bpf(0, user_data=1)
        r.prep_bpf(1, user_data=30, cq_idx=2)
        r.submit()
        nop(r, 10, cq_idx=1)
        r.submit()
        r.wait_cqe_nr(2, timeout=10)         # WAIT2 reaps EMIT1's CQE (30) and the NOP (10)
        assert r.reap() == [(40, 0, 0), (1, 0, 0)]
        assert r.cq(2).drain() == [(30, 0, 0)]
        assert r.cq(1).ready() == 0
    finally:
        r.close()


# --- a signal that arrives while C runs, then C calls back into Python ----------------------
_SIGNAL_THEN_CALL_C = r"""
#include <signal.h>
#include <stdint.h>
uint64_t signal_then_call(uint64_t (*cb)(uint64_t), uint64_t arg, int sig)
{
	raise(sig);
	return cb(arg);
}
"""


class _Boom(Exception):
    """Raised by the test's SIGUSR1 handler."""


@pytest.fixture(scope="module")
def signal_lib(tmp_path_factory):
    src = tmp_path_factory.mktemp("sig") / "signal_then_call.c"
    src.write_text(_SIGNAL_THEN_CALL_C)
    lib = native.load(src)
    lib.signal_then_call.restype = ctypes.c_uint64
    lib.signal_then_call.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int]
    return lib


class _ProgramThatCallsC:
    """A loaded program as far as the engine knows (``prog(ctx)`` with ``.program``) whose
    run goes through C that takes a signal and then calls back into Python through a
    barrier that holds what it catches for the engine (as the design's own callbacks do)."""

    def __init__(self, lib, sig: int):
        self.program = prog("r0 = 0\nexit")
        self.lib, self.sig, self.ran = lib, sig, []

        def held(exc, _args):
            R.hold_interrupt(exc)
            return 0
        self.cb = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)(
            barrier(self.ran.append, held))

    def __call__(self, ctx: int) -> int:
        return self.lib.signal_then_call(ctypes.cast(self.cb, ctypes.c_void_p), 1, self.sig)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGUSR1])
def test_a_signal_handled_as_a_callback_starts_surfaces_from_the_wait(signal_lib, sig):
    """Whatever a signal handler raises while C runs (Ctrl-C's KeyboardInterrupt, or a
    handler's own exception) fires as the callback's frame starts, before the barrier's
    try: the engine runs programs inside callbacks.route_escapes, so it reaches the
    barrier's on_error and comes out of the wait.  Regression: the Python engine had its
    own hook that kept only KeyboardInterrupt; anything else was printed and lost."""
    def boom(_signum, _frame):
        raise _Boom("from the handler")
    prev_handler = signal.signal(signal.SIGUSR1, boom)
    escaped = []
    prev_hook = sys.unraisablehook
    sys.unraisablehook = lambda unr: escaped.append(unr.exc_type)
    r = mkring(8, nr_cq=1, cq_sizes=[2])
    try:
        p = _ProgramThatCallsC(signal_lib, sig)
        assert r.register_bpf([p]) == 0
        r.prep_bpf(0, user_data=1)
        with pytest.raises(KeyboardInterrupt if sig == signal.SIGINT else _Boom):
            r.submit()
            r.wait_cqe(timeout=5)
        assert escaped == [] and p.ran == []
        assert r.requests.pending() == 1          # interrupted, not completed
    finally:
        sys.unraisablehook = prev_hook
        signal.signal(signal.SIGUSR1, prev_handler)
        r.close()
