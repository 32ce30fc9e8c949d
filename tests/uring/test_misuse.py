"""Misuse must raise a clear Python error or give the kernel's -errno: never crash or hang."""

import errno
import gc
import os
import logging

import pytest

from uringbpf.uring import (SETUP_CQSIZE, SETUP_SQ_REWIND, SETUP_SQPOLL, Ring, RingClosedError,
                            SubmissionQueueFull)
from uringbpf.uring import syscalls


def test_use_after_close(make_ring):
    r = make_ring(4)
    sqe = r.prep_nop(1)
    r.close()
    r.close()                                   # idempotent
    assert r.closed and r.fd == -1
    for call in (lambda: r.get_sqe(), lambda: r.submit(), lambda: r.peek_cqe(),
                 lambda: r.prep_nop(2), lambda: r.probe(),
                 lambda: r.enter(0, 0, 0), lambda: r.register(0, 0, 0), lambda: r.reap(),
                 lambda: r.cq_advance(1), lambda: r.wait_cqe(timeout=0)):
        with pytest.raises(RingClosedError):
            call()
    with pytest.raises(RingClosedError):
        with r:
            pass
    sqe.user_data = 5                           # a stale view: harmless, no segfault
    assert sqe.user_data == 5
    del r
    gc.collect()
    sqe.user_data = 6                           # still fine once the ring object is gone
    assert sqe.user_data == 6


def test_context_manager_closes(backend):
    with Ring(4, backend=backend) as r:
        r.prep_nop(1)
        r.submit_and_wait(1)
    assert r.closed
    with pytest.raises(RingClosedError):
        r.submit()


def test_full_sq_raises(make_ring):
    r = make_ring(4)
    for i in range(4):
        r.prep_nop(i)
    assert r.sq_space_left() == 0
    with pytest.raises(SubmissionQueueFull):
        r.get_sqe()
    assert r.submit() == 4
    r.get_sqe()                                # room again
    r.submit()


@pytest.mark.parametrize("args,kwargs,exc", [
    ((0,), {}, ValueError),
    ((70000,), {}, ValueError),
    (("8",), {}, TypeError),
    ((8,), {"flags": 1 << 30}, ValueError),
    ((8,), {"cq_entries": 4}, ValueError),
    ((8,), {"flags": SETUP_CQSIZE}, ValueError),
    ((8,), {"flags": SETUP_SQ_REWIND | SETUP_SQPOLL}, ValueError),
    ((8,), {"backend": "gpu"}, ValueError),
])
def test_bad_ring_arguments(args, kwargs, exc):
    with pytest.raises(exc):
        Ring(*args, **kwargs)


def test_bad_prep_arguments(ring, tmp_path):
    with pytest.raises(TypeError):
        ring.prep_read(0, b"read-only")             # the kernel would write into bytes
    with pytest.raises(TypeError):
        ring.prep_write(0, "text")
    with pytest.raises(ValueError):
        ring.prep_write(0, b"abc", nbytes=10)     # wrong size
    with pytest.raises(ValueError):
        ring.prep_nop(-1)
    with pytest.raises(ValueError):
        ring.prep_nop(1 << 64)
    with pytest.raises(ValueError):
        ring.prep_nop(1, flags=0x80)
    with pytest.raises(ValueError):
        ring.prep_read(0, bytearray(4), offset=-5)
    with pytest.raises(ValueError):
        ring.prep_readv(0, [])
    with pytest.raises(ValueError):
        ring.prep_openat("a\0b")
    with pytest.raises(ValueError):
        ring.prep_timeout(-1)
    with pytest.raises(ValueError):
        ring.prep_read_fixed(0, 0, 4)             # nothing registered
    with pytest.raises(TypeError):
        ring.prep_read(object(), bytearray(4))
    with pytest.raises(ValueError):
        ring.cq_advance(1)                        # nothing to advance
    with pytest.raises(ValueError):
        ring.wait_cqe(timeout=-1)
    # nothing half-prepared was left behind by the failed calls
    assert ring.sq_ready() == 0


def test_wait_timeout_raises(ring):
    with pytest.raises(TimeoutError):
        ring.wait_cqe(timeout=0.01)


def test_register_errors_are_oserrors(ring):
    with pytest.raises(OSError) as ei:
        ring.register_files([123456])
    assert ei.value.errno == errno.EBADF
    with pytest.raises(OSError) as ei:
        ring.unregister_files()
    assert ei.value.errno == errno.ENXIO
    with pytest.raises(TypeError):
        ring.register_buffers([b"read-only"])
    assert ring.register(9999, 0, 0) == -errno.EINVAL


def test_raw_enter_bad_flags(ring):
    assert ring.enter(0, 0, 1 << 30) == -errno.EINVAL


def test_fallback_to_threads_when_io_uring_is_unavailable(monkeypatch, caplog):
    monkeypatch.setattr(syscalls, "io_uring_setup", lambda entries, addr: -errno.ENOSYS)
    with caplog.at_level(logging.WARNING, logger="uringbpf"):
        r = Ring(8)
    assert "using the thread-pool backend" in caplog.text
    with r:
        assert r.backend == "threads"
        r.prep_nop(3)
        assert r.submit_and_wait(1) == 1
        assert [c.user_data for c in r.reap()] == [3]
    with pytest.raises(OSError) as ei:
        Ring(8, backend="kernel")
    assert ei.value.errno == errno.ENOSYS
    monkeypatch.setattr(syscalls, "io_uring_setup", lambda entries, addr: -errno.EPERM)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="uringbpf"):
        with Ring(4) as r2:
            assert r2.backend == "threads"
    assert "io_uring unavailable" in caplog.text


def test_closing_with_requests_in_flight_is_safe(make_ring):
    import socket
    a, b = socket.socketpair()
    try:
        r = make_ring(4)
        buf = bytearray(16)
        r.prep_recv(a, buf, user_data=1)
        r.submit()
        r.close()                 # the kernel may still own `buf`: it is parked, not freed
        del buf
        gc.collect()
        b.send(b"late data")
    finally:
        a.close()
        b.close()


def test_closed_fd_in_sqe_does_not_crash(ring, tmp_path):
    fd = os.open(tmp_path / "x", os.O_RDWR | os.O_CREAT)
    os.close(fd)
    ring.prep_write(fd, b"x", user_data=1)
    ring.submit()
    ring.wait_cqe(timeout=5)
    assert [c.res for c in ring.reap()] == [-errno.EBADF]


def test_sqpoll_kernel_only():
    from uringbpf.uring import SETUP_SQPOLL
    with Ring(8, flags=SETUP_SQPOLL, backend="kernel") as r:
        r.prep_nop(11)
        assert r.submit() == 1
        r.wait_cqe(timeout=5)
        assert [c.user_data for c in r.reap()] == [11]
        with pytest.raises(ValueError):
            r.add_sqe_filter(lambda sqe: 0)
    with pytest.raises(OSError) as ei:
        Ring(8, flags=SETUP_SQPOLL, backend="threads")
    assert ei.value.errno == errno.EINVAL


def test_failed_setup_leaves_nothing_for_del_to_close():
    """io_uring_setup refusing the flags (DEFER_TASKRUN without SINGLE_ISSUER: -EINVAL)
    raises OSError, and the half-built Ring's __del__ must not fail afterwards."""
    import sys

    from uringbpf.uring import uapi as u

    seen = []
    old = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        with pytest.raises(OSError) as info:
            Ring(8, flags=u.IORING_SETUP_DEFER_TASKRUN, backend="kernel")
        assert info.value.errno == errno.EINVAL
        del info
        gc.collect()
    finally:
        sys.unraisablehook = old
    assert [repr(a.exc_value) for a in seen] == []
