"""Design hooks (SQE filters, enter hook, register hooks) and SQ_REWIND, on both backends."""

import ctypes
import errno
import os

import pytest
from hypothesis import given, settings, strategies as st

from uringbpf.uring import (ENTER_GETEVENTS, OP_NOP, OP_WRITE, REGISTER_PROBE,
                            SETUP_DEFER_TASKRUN, SETUP_NO_SQARRAY, SETUP_SINGLE_ISSUER,
                            SETUP_SQ_REWIND, SQE_IO_HARDLINK, SQE_IO_LINK, Completion, Ring)

WAIT = 5.0
REWIND = SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN | SETUP_NO_SQARRAY | SETUP_SQ_REWIND


def wait_all(ring, n):
    got = []
    while len(got) < n:
        ring.wait_cqe(timeout=WAIT)
        got.extend(ring.reap())
    return got


def by_ud(completions):
    return {c.user_data: c.res for c in completions}


def deny_writes(sqe):
    return -errno.EACCES if sqe.opcode == OP_WRITE else 0


def test_sqe_filter_denies_with_own_user_data(ring, tmp_path):
    path = tmp_path / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        seen = []
        ring.add_sqe_filter(lambda sqe: seen.append(sqe.user_data) or 0)
        ring.add_sqe_filter(deny_writes)
        ring.prep_nop(1)
        ring.prep_write(fd, b"secret", 0, user_data=2)
        ring.submit()
        assert by_ud(wait_all(ring, 2)) == {1: 0, 2: -errno.EACCES}
        assert seen == [1, 2]
        assert path.read_bytes() == b""          # the write never ran
    finally:
        os.close(fd)


def test_denied_link_member_cancels_rest_of_chain(ring, tmp_path):
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        ring.add_sqe_filter(deny_writes)
        ring.prep_nop(1, flags=SQE_IO_LINK)
        ring.prep_write(fd, b"x", 0, user_data=2, flags=SQE_IO_LINK)
        ring.prep_nop(3, flags=SQE_IO_LINK)
        ring.prep_nop(4)
        ring.prep_nop(5)
        ring.submit()
        # the kernel fails the whole chain, its head included (tests/uring/test_filter_chain.py)
        assert by_ud(wait_all(ring, 5)) == {1: -errno.ECANCELED, 2: -errno.EACCES,
                                            3: -errno.ECANCELED, 4: -errno.ECANCELED, 5: 0}
    finally:
        os.close(fd)


def test_filter_sees_sqes_written_directly_to_ring_memory(ring):
    """SQEs a native driver or BPF program puts in the ring are filtered at enter time."""
    ring.add_sqe_filter(lambda sqe: -errno.EPERM if sqe.user_data == 66 else 0)
    sqe = ring.get_sqe()
    sqe.opcode, sqe.fd, sqe.user_data = OP_NOP, -1, 66
    n = ring.flush_sq()
    assert ring.raw_enter(n, 1, ENTER_GETEVENTS) == 1
    assert wait_all(ring, 1) == [Completion(66, -errno.EPERM, 0)]


def test_enter_hook_replaces_enter(ring):
    calls = []

    def hook(r, to_submit, min_complete, flags):
        calls.append((to_submit, min_complete, flags))
        return r.raw_enter(to_submit, min_complete, flags)

    ring.set_enter_hook(hook)
    ring.prep_nop(1)
    assert ring.submit_and_wait(1) == 1
    assert calls == [(1, 1, ENTER_GETEVENTS)]
    assert wait_all(ring, 1) == [Completion(1, 0, 0)]
    ring.set_enter_hook(lambda *a: -errno.EOPNOTSUPP)
    ring.prep_nop(2)
    with pytest.raises(OSError) as ei:
        ring.submit()
    assert ei.value.errno == errno.EOPNOTSUPP
    ring.set_enter_hook(None)
    ring.prep_nop(3)
    assert ring.submit() == 2      # SQE 2 stayed published in the SQ: the kernel takes both
    assert by_ud(wait_all(ring, 2)) == {2: 0, 3: 0}
    with pytest.raises(TypeError):
        ring.set_enter_hook(42)


def test_register_hook(ring):
    seen = []

    def hook(r, opcode, arg, nr):
        seen.append(opcode)
        return 7 if opcode == 37 else None

    ring.add_register_hook(hook)
    assert ring.register(37, 0, 1) == 7
    assert ring.register(999, 0, 0) == -errno.EINVAL     # passed on to the backend
    assert seen == [37, 999]
    assert REGISTER_PROBE in seen or ring.probe()


def test_sq_rewind_takes_sqes_from_slot_zero(make_ring, backend):
    r = make_ring(8, cq_entries=16, flags=REWIND)
    assert r.flags & SETUP_SQ_REWIND
    assert r.emulated_flags & SETUP_SQ_REWIND      # 6.18 lacks it; threads always emulate
    for rnd in range(3):
        for i in range(3):
            sqe = r.sqe_view(i)                     # raw slot i of the SQE region
            ctypes.memset(ctypes.addressof(sqe), 0, 64)
            sqe.opcode, sqe.fd, sqe.user_data = OP_NOP, -1, rnd * 10 + i
        assert r.sq_rewind_submit(3) == 3
        assert sorted(c.user_data for c in wait_all(r, 3)) == [rnd * 10 + i for i in range(3)]
    # the liburing-style API hands out slots 0.. again after every submit
    assert ctypes.addressof(r.get_sqe()) == r.sqes_addr
    assert ctypes.addressof(r.get_sqe()) == r.sqes_addr + 64
    r.submit()
    wait_all(r, 2)
    assert ctypes.addressof(r.prep_nop(1)) == r.sqes_addr


def test_sq_rewind_with_filters_and_full_ring(make_ring):
    r = make_ring(4, cq_entries=16, flags=REWIND)
    r.add_sqe_filter(lambda sqe: -errno.EACCES if sqe.user_data == 2 else 0)
    for i in range(4):
        r.prep_nop(i)
    with pytest.raises(Exception) as ei:
        r.get_sqe()
    assert "submit" in str(ei.value)
    assert r.submit() == 3          # the refused SQE ends the batch (test_filter_batch.py)
    assert by_ud(wait_all(r, 3)) == {0: 0, 1: 0, 2: -errno.EACCES}
    with pytest.raises(ValueError):
        r.sq_rewind_submit(5)


def test_sq_rewind_rejected_without_rewind(ring):
    with pytest.raises(ValueError):
        ring.sq_rewind_submit(1)


# --- link semantics against a model, on both backends -------------------------------
link_kind = st.sampled_from([0, SQE_IO_LINK, SQE_IO_HARDLINK])
request = st.tuples(st.sampled_from([0, 0, 5, -errno.EIO, -errno.EPERM]), link_kind)


def model(reqs):
    """What the kernel posts for a batch of NOPs with injected results and link flags."""
    out, failed = {}, False
    for i, (res, flags) in enumerate(reqs):
        if failed:
            out[i] = -errno.ECANCELED
        else:
            out[i] = res
            if res < 0 and not flags & SQE_IO_HARDLINK:
                failed = True
        if not flags & (SQE_IO_LINK | SQE_IO_HARDLINK):
            failed = False
    return out


@pytest.mark.parametrize("backend_name", ["kernel", "threads"])
@settings(max_examples=25, deadline=None)
@given(reqs=st.lists(request, min_size=1, max_size=12))
def test_link_semantics_match_model(backend_name, reqs):
    with Ring(16, backend=backend_name) as r:
        for i, (res, flags) in enumerate(reqs):
            r.prep_nop(i, flags=flags, inject=res)
        r.submit()
        assert by_ud(wait_all(r, len(reqs))) == model(reqs)


def test_sq_rewind_keeps_buffers_alive(make_ring):
    import gc
    import socket
    import weakref

    class Buf(bytearray):
        pass

    r = make_ring(4, cq_entries=8, flags=REWIND)
    a, b = socket.socketpair()
    try:
        buf = Buf(4)
        ref = weakref.ref(buf)
        r.prep_recv(a, buf, user_data=1)
        del buf
        assert r.sq_rewind_submit(1) == 1          # raw path: consumes slot 0
        r.prep_nop(2)                               # slot 0 again
        assert ctypes.addressof(r.sqe_view(0)) == r.sqes_addr
        r.submit()
        gc.collect()
        assert ref() is not None
        b.send(b"wxyz")
        got = by_ud(wait_all(r, 2))
        assert got == {1: 4, 2: 0}
        gc.collect()
        assert ref() is None
    finally:
        a.close()
        b.close()
