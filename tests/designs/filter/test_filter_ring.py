"""Linux 7.0 cBPF opcode filters on real rings: application SQEs and loop_step SQEs alike."""

from __future__ import annotations

import ctypes
import errno
import os
import random
import socket

import pytest
from hypothesis import given, settings, strategies as st

from loop_support import RING_FLAGS, make_ring, u32
from uringbpf import Ring
from uringbpf.designs import filter as flt, loop
from uringbpf.designs.filter import cbpf
from uringbpf.designs.filter.cbpf import (ABS, ALU, AND, JEQ, JGE, JGT, JMP, JSET, K, LD, RET, W, X,
                                   jump, stmt)
from uringbpf.uring import uapi

ALLOW = [stmt(RET | K, 1)]
DENY = [stmt(RET | K, 0)]
OFF_OPCODE, OFF_FLAGS, OFF_UD = 8, 8, 0


def deny_user_data(value):
    """Deny requests whose (low 32 bits of) user_data equal ``value``."""
    return [stmt(LD | W | ABS, OFF_UD), jump(JMP | JEQ | K, value, 0, 1),
            stmt(RET | K, 0), stmt(RET | K, 1)]


@pytest.fixture
def ring():
    r = Ring(8)
    yield r
    r.close()


def nop_results(ring, user_datas, flags=0):
    for ud in user_datas:
        ring.prep_nop(ud, flags)
    # a refused SQE ends a submission batch (tests/uring/test_filter_batch.py): submit
    # again until every SQE went in
    while ring.sq_ready():
        ring.submit()
    got = []
    while len(got) < len(user_datas):
        ring.wait_cqe(timeout=5.0)
        got.extend(ring.reap())
    return sorted((c.user_data, c.res) for c in got)


def test_no_filter_everything_passes(ring):
    assert nop_results(ring, [1, 2]) == [(1, 0), (2, 0)]


def test_allow_and_deny_filters(ring):
    assert flt.register_bpf_filter(ring, uapi.IORING_OP_NOP, deny_user_data(7)) == 0
    assert nop_results(ring, [6, 7, 8]) == [(6, 0), (7, -errno.EACCES), (8, 0)]
    # stacked: every filter must allow; the newest runs first
    assert flt.register_bpf_filter(ring, uapi.IORING_OP_NOP, deny_user_data(8)) == 0
    assert nop_results(ring, [6, 7, 8]) == [(6, 0), (7, -errno.EACCES), (8, -errno.EACCES)]


def test_deny_everything_for_one_opcode_leaves_others(ring, tmp_path):
    assert flt.register_bpf_filter(ring, uapi.IORING_OP_NOP, DENY) == 0
    assert nop_results(ring, [1]) == [(1, -errno.EACCES)]
    path = tmp_path / "data"
    path.write_bytes(b"hello")
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = bytearray(5)
        ring.prep_read(fd, buf, 0, user_data=2)
        ring.submit_and_wait(1)
        assert [(c.user_data, c.res) for c in ring.reap()] == [(2, 5)]
        assert bytes(buf) == b"hello"
    finally:
        os.close(fd)


def test_deny_rest(ring, tmp_path):
    assert flt.register_bpf_filter(ring, uapi.IORING_OP_NOP, ALLOW,
                                   flags=flt.FILTER_DENY_REST) == 0
    assert nop_results(ring, [1]) == [(1, 0)]
    path = tmp_path / "data"
    path.write_bytes(b"secret")
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = bytearray(6)
        ring.prep_read(fd, buf, 0, user_data=3)
        ring.submit_and_wait(1)
        assert [(c.user_data, c.res) for c in ring.reap()] == [(3, -errno.EACCES)]
        assert bytes(buf) == bytes(6)   # the read never ran
    finally:
        os.close(fd)
    # a filter added later on a DENY_REST opcode stacks on the deny: still denied
    assert flt.register_bpf_filter(ring, uapi.IORING_OP_READ, ALLOW) == 0
    fd = os.open(path, os.O_RDONLY)
    try:
        ring.prep_read(fd, bytearray(6), 0, user_data=4)
        ring.submit_and_wait(1)
        assert [(c.user_data, c.res) for c in ring.reap()] == [(4, -errno.EACCES)]
    finally:
        os.close(fd)


def test_denied_link_member_cancels_the_rest(ring):
    assert flt.register_bpf_filter(ring, uapi.IORING_OP_NOP, deny_user_data(1)) == 0
    ring.prep_nop(1, uapi.IOSQE_IO_LINK)
    ring.prep_nop(2)
    ring.submit_and_wait(2)
    got = sorted((c.user_data, c.res) for c in ring.reap())
    assert got == [(1, -errno.EACCES), (2, -errno.ECANCELED)]


def test_socket_filter_sees_family(ring):
    """Deny AF_INET6 sockets, allow AF_INET: the opcode payload reaches the filter."""
    prog = [stmt(LD | W | ABS, 16), jump(JMP | JEQ | K, socket.AF_INET6, 0, 1),
            stmt(RET | K, 0), stmt(RET | K, 1)]
    assert flt.register_bpf_filter(ring, uapi.IORING_OP_SOCKET, prog) == 0
    for ud, fam in ((1, socket.AF_INET), (2, socket.AF_INET6)):
        sqe = ring.get_sqe()
        ctypes.memset(ctypes.addressof(sqe), 0, 64)
        sqe.opcode = uapi.IORING_OP_SOCKET
        sqe.fd = fam
        sqe.off = socket.SOCK_STREAM
        sqe.user_data = ud
    ring.submit_and_wait(2)
    res = {c.user_data: c.res for c in ring.reap()}
    assert res[2] == -errno.EACCES and res[1] >= 0
    os.close(res[1])


@pytest.mark.parametrize("insns", [
    [stmt(LD | W | ABS, 40), stmt(RET | K, 1)],         # context load past the end
    [stmt(LD | W | ABS, 2), stmt(RET | K, 1)],          # unaligned context load
    [stmt(LD | 0x08 | ABS, 0), stmt(RET | K, 1)],       # half-word load: not whitelisted
    [stmt(ALU | 0x90 | K, 3), stmt(RET | K, 1)],        # MOD: not whitelisted
    [stmt(LD | W | ABS, 0)],                            # no return
    [],                                                 # empty
])
def test_malformed_filters_einval_and_nothing_installed(ring, insns):
    assert flt.register_bpf_filter(ring, uapi.IORING_OP_NOP, insns) == -errno.EINVAL
    assert nop_results(ring, [5]) == [(5, 0)]


def test_bad_header_fields_and_pdu_size(ring):
    assert flt.register_bpf_filter(ring, uapi.IORING_OP_LAST, ALLOW) == -errno.EINVAL
    assert flt.register_bpf_filter(ring, uapi.IORING_OP_NOP, ALLOW, flags=0x80) == -errno.EINVAL
    # NOP has no payload: asking for one is -EMSGSIZE
    assert flt.register_bpf_filter(ring, uapi.IORING_OP_NOP, ALLOW, pdu_size=4) == -errno.EMSGSIZE
    # a smaller payload than the kernel's is fine unless SZ_STRICT
    assert flt.register_bpf_filter(ring, uapi.IORING_OP_SOCKET, ALLOW, pdu_size=0) == 0
    assert flt.register_bpf_filter(ring, uapi.IORING_OP_SOCKET, ALLOW, pdu_size=0,
                                   flags=flt.FILTER_SZ_STRICT) == -errno.EMSGSIZE


def test_register_through_the_ring(ring):
    """``ring.register(IORING_REGISTER_BPF_FILTER, ...)`` once the design is enabled."""
    flt.enable(ring)
    code = cbpf.pack(DENY)
    prog = ctypes.create_string_buffer(code, len(code))
    reg = flt.IoUringBpf(cmd_type=flt.BPF_CMD_FILTER)
    reg.filter.opcode = uapi.IORING_OP_NOP
    reg.filter.filter_len = 1
    reg.filter.filter_ptr = ctypes.addressof(prog)
    assert ring.register(flt.IORING_REGISTER_BPF_FILTER, ctypes.addressof(reg), 1) == 0
    assert ring.register(flt.IORING_REGISTER_BPF_FILTER, ctypes.addressof(reg), 2) == -errno.EINVAL
    assert ring.register(flt.IORING_REGISTER_BPF_FILTER, 8, 1) == -errno.EFAULT
    assert nop_results(ring, [1]) == [(1, -errno.EACCES)]


# --- SQEs submitted by a loop_step program ------------------------------------------------
def _loop_submit(r, user_datas, opcode=uapi.IORING_OP_NOP, expect=None, flags=None):
    """A Python loop_step submitting one SQE per user_data (``flags``: their sqe flags) and
    collecting the CQEs."""
    lib = loop.lib()
    p = r.params
    out = []

    def step(args_addr):
        ctx = ctypes.c_uint64.from_address(args_addr).value
        sqes = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_SQ, 8 * 64, 0, 0)
        rings = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_CQ, 64, 0, 0)
        for i, ud in enumerate(user_datas):
            ctypes.memset(sqes + 64 * i, 0, 64)
            ctypes.c_uint8.from_address(sqes + 64 * i).value = opcode
            ctypes.c_uint64.from_address(sqes + 64 * i + 32).value = ud
            ctypes.c_uint8.from_address(sqes + 64 * i + 1).value = flags[i] if flags else 0
        n = ctypes.c_int64(lib.uringbpf_kf_submit_sqes(ctx, len(user_datas), 0, 0, 0)).value
        assert n == (len(user_datas) if expect is None else expect)
        head, tail = u32(rings + p.cq_off.head), u32(rings + p.cq_off.tail)
        for i in range(head.value, tail.value):
            cqe = uapi.Cqe.from_address(rings + p.cq_off.cqes + 16 * (i & 7))
            out.append((cqe.user_data, cqe.res))
        head.value = tail.value
        return loop.IOU_LOOP_STOP

    link = loop.attach_loop(r, step)
    assert r.enter(0, 0, uapi.IORING_ENTER_GETEVENTS) == 0
    stats = link.stats()
    link.destroy()
    return sorted(out), stats


def test_filters_apply_to_program_submissions_natively():
    r = make_ring()
    try:
        assert flt.register_bpf_filter(r, uapi.IORING_OP_NOP, deny_user_data(2)) == 0
        got, stats = _loop_submit(r, [1, 3, 2])
        assert got == [(1, 0), (2, -errno.EACCES), (3, 0)]
        assert stats["sqes_denied"] == 1   # decided in C, no trip to Python
        # a refusal ends the batch, as bpf_io_uring_submit_sqes -> io_submit_sqes does
        got, stats = _loop_submit(r, [1, 2, 3], expect=2)
        assert got == [(1, 0), (2, -errno.EACCES)] and stats["sqes_denied"] == 1
    finally:
        r.close()


def test_program_submitted_chain_with_a_refused_member_fails_whole():
    """The native submit path follows io_submit_fail_init like Ring's filter path
    (tests/uring/test_filter_chain.py): head -ECANCELED, refused -EACCES, rest -ECANCELED,
    HARDLINK too; the batch ends only at a refused SQE that does not link on."""
    L, H = uapi.IOSQE_IO_LINK, uapi.IOSQE_IO_HARDLINK
    r = make_ring()
    try:
        assert flt.register_bpf_filter(r, uapi.IORING_OP_NOP, deny_user_data(2)) == 0
        got, stats = _loop_submit(r, [1, 2, 3, 4], flags=[L, L, 0, 0])
        assert got == [(1, -errno.ECANCELED), (2, -errno.EACCES), (3, -errno.ECANCELED), (4, 0)]
        assert stats["sqes_denied"] == 1
        got, _ = _loop_submit(r, [1, 2, 3], flags=[H, 0, 0], expect=2)
        assert got == [(1, -errno.ECANCELED), (2, -errno.EACCES)]
        got, _ = _loop_submit(r, [2, 1, 5], flags=[H, H, 0])
        assert got == [(1, -errno.ECANCELED), (2, -errno.EACCES), (5, -errno.ECANCELED)]
        got, _ = _loop_submit(r, [1, 5, 2], flags=[0, L, L])    # open at the batch's end
        assert got == [(1, 0), (2, -errno.EACCES), (5, -errno.ECANCELED)]
    finally:
        r.close()


def test_filter_registered_while_attached_is_seen_by_the_native_path():
    r = make_ring()
    try:
        got, _ = _loop_submit(r, [1, 2])
        assert got == [(1, 0), (2, 0)]
        lib = loop.lib()
        ran = []

        def step(args_addr):
            ran.append(1)
            return loop.IOU_LOOP_STOP

        link = loop.attach_loop(r, step)
        assert flt.register_bpf_filter(r, uapi.IORING_OP_NOP, DENY,
                                       flags=flt.FILTER_DENY_REST) == 0
        assert link.ctx.filters != 0
        assert lib.uringbpf_filter_check(link.ctx.filters, bytes(64)) == -errno.EACCES
        link.destroy()
        got, stats = _loop_submit(r, [4])
        assert got == [(4, -errno.EACCES)] and stats["sqes_denied"] == 1
    finally:
        r.close()


def test_other_python_sqe_filters_route_program_submissions_through_python():
    r = make_ring(flags=RING_FLAGS)
    try:
        seen = []

        def my_filter(sqe):
            seen.append(sqe.user_data)
            return -errno.EPERM if sqe.user_data == 3 else 0

        r.add_sqe_filter(my_filter)
        got, stats = _loop_submit(r, [4, 3])
        assert got == [(3, -errno.EPERM), (4, 0)]
        assert sorted(seen) == [3, 4] and stats["sqes_denied"] == 0
        # the refusal ends the program's batch as in the kernel: 1 of 2 consumed
        got, stats = _loop_submit(r, [3, 4], expect=1)
        assert got == [(3, -errno.EPERM)] and seen[-1] == 3
    finally:
        r.close()


# --- the C VM agrees with the Python VM -----------------------------------------------------
_ops = st.sampled_from([JEQ, JGT, JGE, JSET])


@st.composite
def filter_programs(draw):
    n = draw(st.integers(1, 12))
    insns = []
    for pc in range(n):
        left = n - pc   # instructions after this one, the final RET included
        kind = draw(st.integers(0, 3))
        if kind == 0:
            insns.append(stmt(LD | W | ABS, 4 * draw(st.integers(0, 9))))
        elif kind == 1 and left > 1:
            insns.append(jump(JMP | draw(_ops) | draw(st.sampled_from([K, X])),
                              draw(st.integers(0, 2**32 - 1)),
                              draw(st.integers(0, left - 1)), draw(st.integers(0, left - 1))))
        elif kind == 2:
            op = draw(st.sampled_from([0x00, 0x10, 0x20, 0x40, AND, 0xA0, 0x60, 0x70, 0x30]))
            k = draw(st.integers(1, 31)) if op in (0x60, 0x70, 0x30) else draw(
                st.integers(0, 2**32 - 1))
            insns.append(stmt(ALU | op | K, k))
        else:
            insns.append(stmt(0x07, 0))   # TAX
    insns.append(stmt(RET | 0x10, 0))     # RET A
    return insns


@settings(max_examples=150, deadline=None)
@given(filter_programs(), st.binary(min_size=64, max_size=64))
def test_native_filter_matches_python(insns, sqe):
    try:
        prog = flt.compile_filter(insns)
    except cbpf.CbpfError:
        return
    sqe = bytes([uapi.IORING_OP_SOCKET if sqe[0] & 1 else uapi.IORING_OP_NOP]) + sqe[1:]
    ctx = flt.build_ctx(sqe)
    packed = cbpf.pack(prog.insns)
    buf = ctypes.create_string_buffer(packed, len(packed))
    native = loop.lib().uringbpf_cbpf_run(buf, len(prog.insns), ctx, len(ctx))
    assert native == prog.run(ctx)
    table = flt.FilterTable()
    table.install(sqe[0], prog, 0)
    assert loop.lib().uringbpf_filter_check(table.native_addr(), sqe) == table.check(sqe)


def test_native_ctx_matches_python_for_open_requests():
    rnd = random.Random(5)
    for opcode in (uapi.IORING_OP_OPENAT, uapi.IORING_OP_SOCKET, uapi.IORING_OP_NOP):
        for _ in range(50):
            sqe = bytearray(rnd.randbytes(64))
            sqe[0] = opcode
            want = flt.build_ctx(bytes(sqe))
            # a filter that returns each context word in turn must agree word by word
            for off in range(0, 40, 4):
                prog = flt.compile_filter([stmt(LD | W | ABS, off), stmt(RET | 0x10, 0)])
                table = flt.FilterTable()
                table.install(opcode, prog, 0)
                word = int.from_bytes(want[off:off + 4], "little")
                got = loop.lib().uringbpf_filter_check(table.native_addr(), bytes(sqe))
                assert got == (0 if word else -errno.EACCES), (opcode, off)


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_filters_see_every_sqe_of_a_c_program(engine):
    """nops.bpf.c under a NOP filter: every SQE it submits is checked (in C) and denied.

    SUBMIT_ALL: without it the first refusal ends each batch, bpf_io_uring_submit_sqes
    returns less than asked and nops.bpf.c stops (as on the kernel; see below)."""
    r = loop.make_ring(8, flags=loop.RING_FLAGS | uapi.IORING_SETUP_SUBMIT_ALL)
    try:
        assert flt.register_bpf_filter(r, uapi.IORING_OP_NOP, DENY) == 0
        obj, link = loop.nops_example(r, 200, engine=engine)
        assert r.enter(0, 0, uapi.IORING_ENTER_GETEVENTS) == 0
        # the program only checks the token, which a denied CQE keeps
        assert obj.bss.reqs_to_run == 0 and obj.bss.bad_cqes == 0
        assert link.stats()["sqes_denied"] == 200 == link.stats()["sqes_submitted"]
        link.destroy()
        obj.close()
    finally:
        r.close()


def test_refusal_ends_a_c_programs_batch():
    """Without SUBMIT_ALL, submit_sqes(n) consumes up to the refused SQE and returns that
    count; nops.bpf.c treats a short submit as an error and stops with work left."""
    r = loop.make_ring(8)
    try:
        assert flt.register_bpf_filter(r, uapi.IORING_OP_NOP, DENY) == 0
        obj, link = loop.nops_example(r, 200, engine="interp")
        r.enter(0, 0, uapi.IORING_ENTER_GETEVENTS)
        st_ = link.stats()
        assert st_["sqes_denied"] == 1 == st_["sqes_submitted"]
        assert obj.bss.reqs_to_run == 200
        link.destroy()
        obj.close()
    finally:
        r.close()
