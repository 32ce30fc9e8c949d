"""Task-level ("blind") cBPF filters: io_uring_register(-1, IORING_REGISTER_BPF_FILTER).

The kernel (io_uring/register.c io_register_bpf_filter_task, io_uring/bpf_filter.c
io_bpf_filter_clone/cow, io_uring_create, __io_uring_fork) keeps the set on the task;
every ring created later starts with a copy, a fork's child with a copy of the task's.
Task state cannot be undone, so every test runs in a forked child.  The same scenarios
run against Linux 7.2 in tests/kernel (``filter_task_*``).
"""

from __future__ import annotations

import ctypes
import errno
import os

from fork_child import run_forked
from uringbpf import Ring
from uringbpf.designs import filter as filt
from uringbpf.designs.filter import cbpf
from uringbpf.uring import uapi

NOP, READ = uapi.IORING_OP_NOP, uapi.IORING_OP_READ
ALLOW = [cbpf.stmt(cbpf.RET | cbpf.K, 1)]


def ud_not(v):
    return [cbpf.stmt(cbpf.LD | cbpf.W | cbpf.ABS, 0),
            cbpf.jump(cbpf.JMP | cbpf.JEQ | cbpf.K, v, 0, 1),
            cbpf.stmt(cbpf.RET | cbpf.K, 0), cbpf.stmt(cbpf.RET | cbpf.K, 1)]


def in_child(fn):
    """fn() in a forked child; its (picklable) result, or the child's exception re-raised."""
    kind, value = run_forked(fn)
    if kind == "raised":
        raise AssertionError(f"in the child: {value}")
    return value


def nops(ring, *uds):
    for ud in uds:
        ring.prep_nop(user_data=ud)
    ring.submit()
    got = {}
    while len(got) < len(uds):
        ring.wait_cqe(timeout=5)
        got.update((c.user_data, c.res) for c in ring.reap())
    return got


def test_rings_created_after_the_registration_inherit_it():
    def body():
        before = Ring(8)
        assert filt.register_task_bpf_filter(NOP, ud_not(8)) == 0
        after = Ring(8)
        return nops(before, 7, 8), nops(after, 7), nops(after, 8)
    assert in_child(body) == ({7: 0, 8: 0}, {7: 0}, {8: -errno.EACCES})


def test_later_task_filters_reach_rings_sharing_the_set():
    """7.2 shares the task's set with its rings and only the ring side is copy-on-write:
    a later task registration reaches rings made since the first one."""
    def body():
        assert filt.register_task_bpf_filter(NOP, ud_not(8)) == 0
        first = Ring(8)
        assert filt.register_task_bpf_filter(NOP, ud_not(9)) == 0
        second = Ring(8)
        return nops(first, 9), nops(first, 8), nops(second, 9), nops(second, 8)
    assert in_child(body) == ({9: -errno.EACCES}, {8: -errno.EACCES}, {9: -errno.EACCES},
                              {8: -errno.EACCES})


def test_ring_level_registration_detaches_the_ring_from_the_task_set():
    def body():
        assert filt.register_task_bpf_filter(NOP, ud_not(8)) == 0
        a = Ring(8)
        assert filt.register_bpf_filter(a, NOP, ud_not(7)) == 0
        assert filt.register_task_bpf_filter(NOP, ud_not(9)) == 0
        return nops(a, 9), nops(a, 7), nops(Ring(8), 9), nops(Ring(8), 7)
    assert in_child(body) == ({9: 0}, {7: -errno.EACCES}, {9: -errno.EACCES}, {7: 0})


def test_childs_registration_copies_the_set_first():
    def body():
        assert filt.register_task_bpf_filter(NOP, ud_not(8)) == 0

        def child():
            early = Ring(8)                  # shares the parent's set, copy-on-write
            assert filt.register_task_bpf_filter(NOP, ud_not(9)) == 0
            return nops(early, 9), nops(early, 8), nops(Ring(8), 9)
        return in_child(child), nops(Ring(8), 9)
    assert in_child(body) == (({9: 0}, {8: -errno.EACCES}, {9: -errno.EACCES}), {9: 0})


def test_ring_level_registration_on_an_inherited_ring_stays_there():
    def body():
        assert filt.register_task_bpf_filter(NOP, ud_not(8)) == 0
        a = Ring(8)
        assert filt.register_bpf_filter(a, NOP, ud_not(9)) == 0   # enable() done by inheritance
        b = Ring(8)
        return nops(a, 9), nops(a, 8), nops(b, 9), nops(b, 8)
    assert in_child(body) == ({9: -errno.EACCES}, {8: -errno.EACCES}, {9: 0}, {8: -errno.EACCES})


def test_fork_copies_the_set_and_the_child_keeps_its_own_additions():
    def body():
        assert filt.register_task_bpf_filter(NOP, ud_not(8)) == 0

        def grandchild():
            inherited = nops(Ring(8), 8)
            assert filt.register_task_bpf_filter(NOP, ud_not(9)) == 0
            return inherited, nops(Ring(8), 9)
        seen = in_child(grandchild)
        return seen, nops(Ring(8), 9)
    assert in_child(body) == (({8: -errno.EACCES}, {9: -errno.EACCES}), {9: 0})


def test_deny_rest_at_task_level():
    def body():
        assert filt.register_task_bpf_filter(NOP, ALLOW, filt.FILTER_DENY_REST) == 0
        ring = Ring(8)
        zero = os.open("/dev/zero", os.O_RDONLY)
        buf = ctypes.create_string_buffer(16)
        ring.prep_read(zero, buf, 0, nbytes=16, user_data=5)
        ring.submit()
        ring.wait_cqe(timeout=5)
        read = [(c.user_data, c.res) for c in ring.reap()]
        os.close(zero)
        return nops(ring, 1), read
    assert in_child(body) == ({1: 0}, [(5, -errno.EACCES)])


def test_refused_registrations_leave_the_task_unfiltered():
    def body():
        reg, _buf = filt.build_registration(NOP, ud_not(8))
        two = filt.register_task_bpf_filter_raw(ctypes.addressof(reg), 2)
        bad = filt.register_task_bpf_filter(NOP, [cbpf.stmt(cbpf.LD | cbpf.W | cbpf.ABS, 2)] + ALLOW)
        reg, _buf = filt.build_registration(uapi.IORING_OP_SOCKET, ALLOW, filt.FILTER_SZ_STRICT, 0)
        size = filt.register_task_bpf_filter_raw(ctypes.addressof(reg), 1)
        return two, bad, size, reg.filter.pdu_size, filt.task_filters(), nops(Ring(8), 8)
    assert in_child(body) == (-errno.EINVAL, -errno.EINVAL, -errno.EMSGSIZE, 12, None, {8: 0})


def test_unprivileged_task_needs_no_new_privs():
    libc = ctypes.CDLL(None, use_errno=True)

    def body():
        filt.lib()      # built/loaded while the cache directory is still ours
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)         # no CAP_SYS_ADMIN any more
        denied = filt.register_task_bpf_filter(NOP, ud_not(8))
        assert libc.prctl(38, 1, 0, 0, 0) == 0     # PR_SET_NO_NEW_PRIVS
        return denied, filt.register_task_bpf_filter(NOP, ud_not(8)), nops(Ring(8), 8)
    if os.geteuid() != 0:
        # not root: the first registration is already the unprivileged case
        assert in_child(lambda: filt.register_task_bpf_filter(NOP, ud_not(8))) == -errno.EACCES
        return
    assert in_child(body) == (-errno.EACCES, 0, {8: -errno.EACCES})
