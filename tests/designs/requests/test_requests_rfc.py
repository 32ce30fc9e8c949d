"""The 2021 RFC v2's four scenarios (test1, counting, pingpong, write_file), from an
upstream-style program (tests/designs/data/rfc2021/rfc_uring.bpf.c: `#include "vmlinux.h"`
from `uringbpf vmlinux --design rfc2021`, helpers declared by id, a legacy map definition)
driven as the RFC's examples/bpf/uring.c drives them: what that driver asserts is asserted,
and what it prints is checked against the values the RFC's programs produce."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from uringbpf.bpf import cc
from uringbpf.bpf.object import BpfObject
from uringbpf.designs.requests import Ring
from uringbpf.tools import vmlinux
from uringbpf.uring import uapi as u

DATA = Path(__file__).resolve().parents[1] / "data" / "rfc2021"
PROGS = ("test", "counting", "pingpong", "write_file", "scribble")
FILL_QD, FILL_BLOCKS, FILL_BLOCK_SIZE = 4, 16, 4096 * 4


@pytest.fixture(scope="module")
def rfc_obj(tmp_path_factory):
    d = tmp_path_factory.mktemp("rfc2021")
    vmlinux.write("rfc2021", d)
    return cc.compile_c(DATA / "rfc_uring.bpf.c", d / "uring.bpf.o", include_dirs=[d])


@pytest.fixture(params=["interp", "jit"])
def ring_prep(request, rfc_obj):
    """ring_prep() of the RFC's driver: 8 SQEs, nr_cq = 2 of 128 entries, the programs
    registered as indexes 0..3 (plus our `scribble` at 4)."""
    obj = BpfObject.open(rfc_obj)
    obj.load(engine=request.param)
    ring = Ring(8, nr_cq=2, cq_sizes=[128, 128])
    assert ring.register_bpf([obj.programs[n] for n in PROGS]) == 0
    yield ring, obj
    ring.close()
    obj.close()


def _arr(obj, n=10):
    return [int.from_bytes(obj.maps["arr"][i], "little") for i in range(n)]


def test_legacy_map_and_program_types(ring_prep):
    ring, obj = ring_prep
    arr = obj.maps["arr"]
    assert (arr.key_size, arr.value_size, arr.max_entries) == (4, 8, 256)
    assert all(obj.programs[n].sleepable for n in PROGS[:4])
    assert not obj.programs["scribble"].sleepable


def test1_features(ring_prep):
    ring, obj = ring_prep
    secret = ctypes.c_uint64(29)
    ring.prep_bpf(0, user_data=ctypes.addressof(secret))
    assert ring.submit() == 1                           # the driver's only assertion
    ring.wait_cqe_nr(3)
    cqes = [tuple(c) for c in ring.reap()]
    # printed by the driver: the emitted CQE, the queued NOP's, the BPF request's
    assert cqes == [(3, 13, 0), (2, 0, 0), (ctypes.addressof(secret), 0, 0)]
    assert _arr(obj, 6) == [11, 4, 5, 21, ctypes.addressof(secret), 29]
    assert secret.value == 31                           # "new secret"


def test2_counting(ring_prep):
    ring, obj = ring_prep
    ts = u.KernelTimespec.from_seconds(0.01)            # struct counting_ctx { ts }
    ring.prep_bpf(1, user_data=ctypes.addressof(ts))
    assert ring.submit() == 1
    cqe = ring.wait_cqe(timeout=10)
    assert cqe is not None and cqe.res >= 0             # "wait_cqe" and res checked
    assert cqe.user_data == ctypes.addressof(ts)
    assert _arr(obj, 2) == [11, 5]                      # 11 ticks; last reaped user_data 5


def test3_pingpong(ring_prep):
    ring, obj = ring_prep

    class PingCtx(ctypes.Structure):
        _fields_ = [("idx", ctypes.c_int)]

    ctxs = [PingCtx(0), PingCtx(1)]
    for c in ctxs:
        ring.prep_bpf(2, user_data=ctypes.addressof(c))
    sqe = ring.get_sqe()
    sqe.opcode, sqe.fd, sqe.user_data = u.IORING_OP_NOP, -1, 0
    sqe.cq_idx = 1                                      # the kick-off, to program 0's CQ
    assert ring.submit() == 3
    ring.wait_cqe_nr(2)
    done = sorted(c.user_data for c in ring.reap())
    assert done == sorted(ctypes.addressof(c) for c in ctxs)
    assert _arr(obj, 7)[5:7] == [20, 21]


def test4_write_file(ring_prep, tmp_path):
    ring, obj = ring_prep
    buf = (ctypes.c_char * FILL_BLOCK_SIZE).from_buffer(bytearray(b"\xae" * FILL_BLOCK_SIZE))
    path = tmp_path / "file"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.unlink(path)                                     # as the driver: mkstemp + unlink
    try:
        ring.register_files([fd])
        ring.prep_bpf(3, user_data=ctypes.addressof(buf))
        assert ring.submit() == 1
        cqe = ring.wait_cqe(timeout=10)
        assert cqe is not None and cqe.res == 0
        for i in range(FILL_BLOCKS):                    # 16 reads of 16 KiB, pattern checked
            block = os.pread(fd, FILL_BLOCK_SIZE, i * FILL_BLOCK_SIZE)
            assert len(block) == FILL_BLOCK_SIZE
            assert block == b"\xae" * FILL_BLOCK_SIZE
        assert _arr(obj, 2) == [0, FILL_BLOCKS]         # nothing in flight, all issued
    finally:
        os.close(fd)


def test_ctx_user_data_is_writable_and_changes_nothing_outside(ring_prep):
    """io_bpf_is_valid_access checks offset and size only, so the write verifies; the
    request's CQE still carries the SQE's user_data."""
    ring, obj = ring_prep
    ring.prep_bpf(4, user_data=0x1234)
    assert ring.submit() == 1
    cqe = ring.wait_cqe(timeout=5)
    assert (cqe.user_data, cqe.res) == (0x1234, 0)
    arr = obj.maps["arr"]
    assert int.from_bytes(arr[20], "little") == 0x1234
    assert int.from_bytes(arr[21], "little") == 0xdead
