"""Ming Lei's IORING_OP_BPF selftest cases (v2 basic_bpf_ops and bpf_memcpy, v3
bpf_ext_memcpy) from a selftest-style program (tests/designs/data/opbpf/selftests.bpf.c,
built against `uringbpf vmlinux --design opbpf`), on both engines, with the checks of the
series' drivers; plus v3's error codes (issue #14, Run)."""

from __future__ import annotations

import ctypes
import errno
import mmap
from pathlib import Path

import pytest

from uringbpf.bpf import cc
from uringbpf.bpf.object import BpfObject
from uringbpf.designs import ops
from uringbpf.tools import vmlinux
from uringbpf.uring import uapi as u

DATA = Path(__file__).resolve().parents[1] / "data" / "opbpf"
SIZE = 512 * 2050                      # the v3 selftest's buffer: 1,049,600 bytes
USER, FIXED, VEC, REG_VEC = (ops.IO_BPF_BUF_USER, ops.IO_BPF_BUF_FIXED, ops.IO_BPF_BUF_VEC,
                             ops.IO_BPF_BUF_REG_VEC)


@pytest.fixture(scope="module")
def selftest_obj(tmp_path_factory):
    d = tmp_path_factory.mktemp("opbpf")
    vmlinux.write("opbpf", d)
    return cc.compile_c(DATA / "selftests.bpf.c", d / "selftests.bpf.o", include_dirs=[d],
                        cpu="v4")


@pytest.fixture(params=["interp", "jit"])
def loaded(request, selftest_obj):
    ring = ops.create_ring(16)
    obj = BpfObject.open(selftest_obj)
    for m in obj.struct_ops:
        m.ring_fd = ring.fd
    obj.load(engine=request.param)
    links = [obj.attach_struct_ops(m.name) for m in obj.struct_ops]
    yield ring, obj
    for link in links:
        link.destroy()
    obj.close()
    ring.close()


def _run(ring, n):
    ring.submit()
    return {c.user_data: c.res for c in ring.wait(n)}


def test_void_fail_and_cleanup_members_verify(loaded):
    _, obj = loaded
    # clang leaves R0 unset in `void` members; the kernel's check_return_code skips R0 for them
    for name in ("basic_fail", "basic_cleanup"):
        assert obj.programs[name].verifier_result is not None


def test_basic_bpf_ops(loaded):
    """v2 basic_bpf_ops: ops 0 and 1; prep stores 0xdeadbeef in pdu, issue checks it and
    sets 42; the CQE keeps user_data, and prep/issue/cleanup ran once per request."""
    ring, obj = loaded
    for i in range(6):
        ring.prep_bpf(i % 2, user_data=0x100 + i)
    got = _run(ring, 6)
    assert got == {0x100 + i: 42 for i in range(6)}
    b = obj.bss
    assert (b.nr_prep, b.nr_issue, b.nr_cleanup, b.nr_fail) == (6, 6, 6, 0)


def test_v3_errors(loaded):
    ring, obj = loaded
    ring.prep_bpf(2, user_data=1)                 # ops without issue_fn: res 0
    ring.prep_bpf(16, user_data=2)                # id >= IO_RING_MAX_BPF_OPS: -EINVAL
    ring.prep_bpf(255, user_data=3)
    ring.prep_bpf(9, user_data=4)                 # empty slot: -EOPNOTSUPP (no ops)
    assert _run(ring, 4) == {1: 0, 2: -errno.EINVAL, 3: -errno.EINVAL, 4: -errno.EOPNOTSUPP}
    assert obj.bss.nr_cleanup == 1                # the prep-only request was cleaned up


def test_ring_without_bpf_ext_is_eopnotsupp():
    with ops.OpsRing(8) as plain:
        plain.prep_bpf(0, user_data=7)
        assert _run(plain, 1) == {7: -errno.EOPNOTSUPP}


def test_pdu_layout_is_v3_final():
    assert (ops.PDU_OFFSET, ops.PDU_SIZE, ops.ITER_SIZE) == (28, 36, 96)


def _pages(n):
    return mmap.mmap(-1, n)


def _addr(m):
    return ctypes.addressof(ctypes.c_char.from_buffer(m))


def _desc(kind, addr, index, keep, size):
    if kind == USER:
        return (USER, addr, size)
    if kind == FIXED:
        return (FIXED, addr, size, index)
    units = size // 512                                # five iovecs of unequal lengths,
    cuts = [0] + [512 * (units * c // 2050) for c in (100, 700, 701, 1500)] + [size]  # 512-multiples
    iov = (u.Iovec * 5)()
    for i in range(5):
        iov[i].iov_base, iov[i].iov_len = addr + cuts[i], cuts[i + 1] - cuts[i]
    keep.append(iov)
    return (kind, ctypes.addressof(iov), 5, index)


@pytest.mark.parametrize("kind", [USER, VEC, FIXED, REG_VEC])
def test_bpf_ext_memcpy(loaded, kind):
    """v3 bpf_ext_memcpy: buffer -> BPF memory (bpf_dynptr_slice) and back into a second
    buffer (bpf_dynptr_data) in 512-byte chunks; CQE user_data 0xCAFEBABE, res == size,
    the 0xAB pattern byte by byte. (The selftest's BPF memory is an arena; here it is
    global data, see docs/designs/ops.md.) The interpreter copies 1/10 of the size, with
    the same 512-byte-multiple cuts, to keep the suite fast."""
    ring, obj = loaded
    size = SIZE if obj.programs["ext_in_issue"].engine == "jit" else 512 * 205
    src_m, dst_m = _pages(SIZE + 8192), _pages(SIZE + 8192)
    src_m[:size] = b"\xab" * size
    keep: list = []
    if kind in (FIXED, REG_VEC):
        ring.register_buffers([memoryview(src_m)[:size], memoryview(dst_m)[:size]])
    try:
        ring.prep_bpf(4, ops.buf_descs(_desc(kind, _addr(src_m), 0, keep, size)),
                      user_data=0xCAFEBABE, flags=u.IOSQE_IO_LINK)
        ring.prep_bpf(5, ops.buf_descs(_desc(kind, _addr(dst_m), 1, keep, size)),
                      user_data=0xCAFEBABF)
        assert _run(ring, 2) == {0xCAFEBABE: size, 0xCAFEBABF: size}
        assert dst_m[:size] == b"\xab" * size
    finally:
        if kind in (FIXED, REG_VEC):
            ring.unregister_buffers()


@pytest.mark.parametrize("kind", [USER, FIXED])
def test_v2_bpf_memcpy(loaded, kind):
    """v2 bpf_memcpy: uring_bpf_memcpy between two descriptors; res = bytes copied."""
    ring, obj = loaded
    n = 3 * 4096 + 100
    src_m, dst_m = _pages(16384), _pages(16384)
    pattern = bytes((i * 13 + 1) & 0xFF for i in range(n))
    src_m[:n] = pattern
    if kind == FIXED:
        ring.register_buffers([memoryview(src_m), memoryview(dst_m)])
        d = ops.buf_descs((FIXED, _addr(dst_m), n, 1), (FIXED, _addr(src_m), n, 0))
    else:
        d = ops.buf_descs((USER, _addr(dst_m), n), (USER, _addr(src_m), n))
    try:
        ring.prep_bpf(3, d, user_data=0xC0)
        assert _run(ring, 1) == {0xC0: n}
        assert dst_m[:n] == pattern
    finally:
        if kind == FIXED:
            ring.unregister_buffers()
