"""IORING_OP_BPF (Ming Lei's bpf_ext, v3 + v2 memcpy): examples/ops on both engines."""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import os
import struct
from pathlib import Path

import pytest

from uringbpf.bpf.cc import compile_c
from uringbpf.bpf.object import BpfObject
from uringbpf.designs import ops
from uringbpf.designs.kbuf import crc32c_bytes
from uringbpf.uring import uapi as u
from uringbpf.uring.ring import Ring

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("ops_drivers", ROOT / "examples/ops/drivers.py")
drivers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(drivers)

ENGINES = ["interp", "jit"]
LINK, HARD = u.IOSQE_IO_LINK, u.IOSQE_IO_HARDLINK


@pytest.mark.parametrize("engine", ENGINES)
def test_basic_two_ops_counters(engine):
    r = drivers.run_basic(engine, n=6)
    assert r["cqes"] == [(1000 + i, 42 if i % 2 == 0 else 43) for i in range(6)]
    assert (r["prep"], r["issue"], r["cleanup"], r["fail"]) == (6, 6, 6, 0)


@pytest.mark.parametrize("engine,kind", [
    ("jit", drivers.USER), ("jit", drivers.VEC), ("jit", drivers.FIXED),
    ("jit", drivers.REG_VEC), ("jit", drivers.KFIXED), ("interp", drivers.VEC)])
def test_memcpy_iterator_both_directions(engine, kind):
    r = drivers.run_memcpy(kind, engine)
    assert r["cqes"] == [(0xCAFEBABE, drivers.SIZE), (0xCAFEBABF, drivers.SIZE)], r["errors"]
    assert r["ok"] and r["cleanup"] == 2


@pytest.mark.parametrize("engine,kind", [
    ("jit", drivers.USER), ("jit", drivers.VEC), ("jit", drivers.FIXED),
    ("jit", drivers.REG_VEC), ("interp", drivers.FIXED)])
def test_memcpy_kfunc_with_arena(engine, kind):
    r = drivers.run_memcpy(kind, engine, use_kfunc=True)
    assert r["cqes"] == [(0xCAFEBABE, drivers.SIZE), (0xCAFEBABF, drivers.SIZE)]
    assert r["ok"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fixed", [False, True])
def test_cksum_of_linked_read(tmp_path, engine, fixed):
    data = os.urandom(3 * 8192 + 1234)
    p = tmp_path / "data.bin"
    p.write_bytes(data)
    r = drivers.run_cksum(str(p), engine, fixed=fixed, block=8192)
    assert len(r["blocks"]) == 4
    for i, (nread, res, full) in enumerate(r["blocks"]):
        chunk = data[i * 8192:(i + 1) * 8192]
        assert nread == len(chunk)
        assert full == crc32c_bytes(chunk)
        assert res == full & 0x7FFFFFFF


@pytest.fixture(params=ENGINES)
def err_ring(request):
    ring = ops.create_ring(16)
    obj, links = ops.open_example("errors", ring, engine=request.param)
    yield ring, obj
    obj.close()
    ring.close()


def _one(ring, op_id, descs=None, flags=0, ud=1):
    ring.prep_bpf(op_id, descs, user_data=ud, flags=flags)


def _run(ring, n):
    ring.submit()
    return {c.user_data: c.res for c in ring.wait(n)}


def test_error_paths(err_ring, tmp_path):
    ring, obj = err_ring
    b = obj.bss
    _one(ring, 9, ud=9)                      # no ops in slot 9
    _one(ring, 0, ud=10)                     # prep fails
    _one(ring, 1, ud=11)                     # issue sets -EIO
    _one(ring, 2, ud=12)                     # issue_fn returns -ENOMEM
    _one(ring, 4, ud=14)                     # no prep_fn
    _one(ring, 5, ud=15)                     # fine
    got = _run(ring, 6)
    assert got == {9: -errno.EOPNOTSUPP, 10: -errno.EINVAL, 11: -errno.EIO,
                   12: -errno.ENOMEM, 14: -errno.EOPNOTSUPP, 15: 7}
    preps, issues, fails, cleanups = (struct.unpack("<8Q", bytes(getattr(b, n)))
                                      for n in ("preps", "issues", "fails", "cleanups"))
    assert list(preps[:6]) == [1, 1, 1, 0, 0, 1]
    assert list(issues[:6]) == [0, 1, 1, 0, 0, 1]
    assert list(fails[:6]) == [0, 0, 1, 0, 0, 0]           # fail_fn: issue error (io_req_defer_failed)
    assert list(cleanups[:6]) == [0, 1, 1, 0, 0, 1]        # only after a successful prep


def test_bad_descriptors(err_ring):
    ring, _ = err_ring
    buf = ctypes.create_string_buffer(5000)
    good = ops.buf_descs((ops.IO_BPF_BUF_USER, ctypes.addressof(buf), 5000))
    unreg = ops.buf_descs((ops.IO_BPF_BUF_FIXED, ctypes.addressof(buf), 100, 3))
    badtype = ops.buf_descs((9, ctypes.addressof(buf), 100))
    kfixed = ops.buf_descs((ops.IO_BPF_BUF_KFIXED, 0, 100, 0))
    vec = ops.buf_descs((ops.IO_BPF_BUF_VEC, 0x10, 2))
    for ud, d in enumerate((good, unreg, badtype, kfixed, vec)):
        _one(ring, 3, d, ud=ud)
    got = _run(ring, 5)
    assert got == {0: 5000, 1: -errno.EFAULT, 2: -errno.EINVAL, 3: -errno.EFAULT,
                   4: -errno.EFAULT}


def test_descriptors_resolve_at_prep_or_on_demand(err_ring):
    """The SQE's descriptors are resolved once at prep (the C kfuncs walk that table, no
    Python per call); one the program builds (op 6: the first half of the SQE's) is
    resolved on demand (USER in C, the others by one callback per iter_new), with the
    same results and errors."""
    ring, _ = err_ring
    buf = ctypes.create_string_buffer(9000)
    descs = [ops.buf_descs((ops.IO_BPF_BUF_USER, ctypes.addressof(buf), 9000)),
             ops.buf_descs((ops.IO_BPF_BUF_FIXED, ctypes.addressof(buf), 100, 3)),
             ops.buf_descs((9, ctypes.addressof(buf), 100)),
             ops.buf_descs((ops.IO_BPF_BUF_VEC, 0x10, 4))]
    before = ops.native_stats["resolve_fallbacks"]
    for ud, d in enumerate(descs):
        _one(ring, 3, d, ud=ud)
    assert _run(ring, 4) == {0: 9000, 1: -errno.EFAULT, 2: -errno.EINVAL, 3: -errno.EFAULT}
    assert ops.native_stats["resolve_fallbacks"] == before
    for ud, d in enumerate(descs):
        _one(ring, 6, d, ud=ud)
    assert _run(ring, 4) == {0: 4500, 1: -errno.EFAULT, 2: -errno.EINVAL, 3: -errno.EFAULT}
    # USER descriptors are resolved in C (one unchecked segment); on the Python submit path
    # (interpreter) the others call back once; the native path (JIT) resolves them in C
    assert ops.native_stats["resolve_fallbacks"] == before + (0 if ring.ops.native_path else 3)


def test_links_with_kernel_ops(err_ring, tmp_path):
    ring, obj = err_ring
    p = tmp_path / "f"
    p.write_bytes(b"x" * 100)
    fd = os.open(p, os.O_RDONLY)
    buf = bytearray(100)
    try:
        # a failed READ (bad fd) cancels the BPF op and what follows
        ring.prep_read(9999, buf, 0, user_data=1, flags=LINK)
        _one(ring, 5, flags=LINK, ud=2)
        ring.prep_nop(user_data=3)
        assert _run(ring, 3) == {1: -errno.EBADF, 2: -errno.ECANCELED, 3: -errno.ECANCELED}
        # READ -> BPF -> NOP -> BPF -> NOP: all run, in order
        ring.prep_read(fd, buf, 0, user_data=10, flags=LINK)
        _one(ring, 5, flags=LINK, ud=11)
        ring.prep_nop(user_data=12, flags=LINK)
        _one(ring, 5, flags=LINK, ud=13)
        ring.prep_nop(user_data=14)
        ring.submit()
        cqes = ring.wait(5)
        assert [(c.user_data, c.res) for c in cqes] == [(10, 100), (11, 7), (12, 0), (13, 7),
                                                        (14, 0)]
        # a failing BPF op breaks a LINK chain, not a HARDLINK one
        _one(ring, 1, flags=LINK, ud=20)
        ring.prep_nop(user_data=21)
        _one(ring, 1, flags=HARD, ud=22)
        ring.prep_nop(user_data=23)
        assert _run(ring, 4) == {20: -errno.EIO, 21: -errno.ECANCELED, 22: -errno.EIO, 23: 0}
        # a prep failure fails the whole chain at submit
        ring.prep_nop(user_data=30, flags=LINK)
        _one(ring, 0, flags=LINK, ud=31)
        ring.prep_nop(user_data=32)
        assert _run(ring, 3) == {30: -errno.ECANCELED, 31: -errno.EINVAL, 32: -errno.ECANCELED}
        # independent requests after a BPF op in the same submit still complete
        _one(ring, 5, ud=40)
        ring.prep_nop(user_data=41)
        assert _run(ring, 2) == {40: 7, 41: 0}
    finally:
        os.close(fd)


def test_registration_rules():
    with ops.create_ring(8) as ring:
        obj, links = ops.open_example("basic", ring, engine="interp")
        try:
            progs = obj.programs
            with pytest.raises(OSError) as e:
                ops.register_ops(ring, 16, progs["basic_prep0"], progs["basic_issue0"])
            assert e.value.errno == errno.EINVAL
            with pytest.raises(OSError) as e:
                ops.register_ops(ring, 0, progs["basic_prep0"], progs["basic_issue0"])
            assert e.value.errno == errno.EBUSY
            assert ring.features & ops.IORING_FEAT_BPF
            assert ring.flags & ops.IORING_SETUP_BPF_EXT
            # the 7.1 loop ops cannot share the ring
            with pytest.raises(OSError) as e:
                ring.set_enter_hook(lambda *a: 0)
            assert e.value.errno == errno.EINVAL
            # unregistering (no request in flight) frees the slot
            links[0].destroy()
            ring.prep_bpf(0, user_data=5)
            ring.prep_bpf(1, user_data=6)
            assert _run(ring, 2) == {5: -errno.EOPNOTSUPP, 6: 43}
            slot = ops.register_ops(ring, 0, progs["basic_prep0"], progs["basic_issue0"])
            ring.prep_bpf(0, user_data=7)
            assert _run(ring, 1) == {7: 42}
            slot.destroy()
        finally:
            obj.close()
    with ops.OpsRing(8) as plain:               # no IORING_SETUP_BPF_EXT
        with pytest.raises(OSError) as e:
            ops.register_ops(plain, 0)
        assert e.value.errno == errno.EINVAL
        plain.prep_bpf(0, user_data=1)
        assert _run(plain, 1) == {1: -errno.EOPNOTSUPP}    # v2/v3 prep without BPF_EXT
    with Ring(8) as other:
        with pytest.raises(OSError):
            ops.register_ops(other, 0)


LEAK = r"""
#include <linux/errno.h>
#include <io_uring/bpf_ext.h>
#include <bpf/bpf_tracing.h>
char LICENSE[] SEC("license") = "GPL";
SEC("struct_ops/p") int BPF_PROG(p, struct uring_bpf_data *d, const struct io_uring_sqe *s) { return 0; }
SEC("struct_ops/i") int BPF_PROG(i, struct uring_bpf_data *d)
{
	struct io_bpf_buf_desc desc = {};
	struct bpf_iter_uring_buf it;
	int *n;
	bpf_iter_uring_buf_new(&it, d, &desc, ITER_SOURCE);
	n = bpf_iter_uring_buf_next(&it);
#ifndef LEAK
	bpf_iter_uring_buf_destroy(&it);
#endif
	uring_bpf_set_result(d, n ? *n : 0);
	return 0;
}
SEC(".struct_ops.link") struct uring_bpf_ops o = { .id = 0, .prep_fn = (void *)p, .issue_fn = (void *)i };
"""


@pytest.mark.parametrize("leak", [False, True])
def test_verifier_iterator_lifecycle(tmp_path, leak):
    src = tmp_path / "leak.bpf.c"
    src.write_text(LEAK)
    out = tmp_path / "leak.bpf.o"
    compile_c(src, out, defines=("LEAK",) if leak else ())
    obj = BpfObject.open(str(out))
    try:
        if leak:
            with pytest.raises(Exception, match="(?i)unreleased|leak|reference|iter"):
                obj.load(engine="interp")
        else:
            obj.load(engine="interp")
            assert obj.programs["i"].verifier_result is not None
    finally:
        obj.close()


def test_silent_cancel_after_failed_skip_success_member(err_ring):
    ring, obj = err_ring
    buf = bytearray(16)
    ring.prep_read(9999, buf, 0, user_data=1, flags=LINK | u.IOSQE_CQE_SKIP_SUCCESS)
    _one(ring, 5, flags=LINK, ud=2)
    ring.prep_nop(user_data=3)
    ring.prep_nop(user_data=4)                 # a separate chain: still completes
    ring.submit()
    got = {c.user_data: c.res for c in ring.wait(2)}
    assert got == {1: -errno.EBADF, 4: 0}
    assert ring.peek_cqe() is None
    cleanups = struct.unpack("<8Q", bytes(obj.bss.cleanups))
    assert cleanups[5] == 1                    # prepped, cancelled, cleaned up


def _kernel_equivalent(chain):
    """Results of the same chain with every BPF op replaced by a NOP injecting its result."""
    with Ring(32) as ring:
        for ud, kind, fl in chain:
            ring.prep_nop(user_data=ud, flags=fl, inject={"ok": 7, "fail": -errno.EIO,
                                                          "bok": 7, "bfail": -errno.EIO}.get(kind, 0) if kind != "nop" else None)
        ring.submit()
        return {c.user_data: c.res for c in ring.wait(len(chain))}


@pytest.mark.parametrize("seed", range(12))
def test_links_match_the_kernel_rules(err_ring, seed):
    import random
    rnd = random.Random(seed)
    ring, _ = err_ring
    chain = []
    for i in range(rnd.randint(2, 9)):
        kind = rnd.choice(["nop", "fail", "bok", "bfail", "bok"])
        fl = rnd.choice([0, LINK, LINK, HARD])
        chain.append((100 + i, kind, fl))
    for ud, kind, fl in chain:
        if kind == "nop":
            ring.prep_nop(user_data=ud, flags=fl)
        elif kind == "fail":
            ring.prep_nop(user_data=ud, flags=fl, inject=-errno.EIO)
        else:
            _one(ring, 5 if kind == "bok" else 1, flags=fl, ud=ud)
    assert _run(ring, len(chain)) == _kernel_equivalent(chain)


def test_unregister_waits_for_requests_in_flight(err_ring):
    import threading
    ring, obj = err_ring
    r, w = os.pipe()
    try:
        buf = bytearray(4)
        ring.prep_read(r, buf, 0, user_data=1, flags=LINK)
        _one(ring, 5, ud=2)
        t1 = threading.Thread(target=ring.submit)
        t1.start()
        slot = ring.ops.slots[5]
        while slot.inflight == 0 and t1.is_alive():
            t1.join(0.01)
        assert slot.inflight == 1
        t2 = threading.Thread(target=slot.destroy)
        t2.start()
        t2.join(0.3)
        assert t2.is_alive()                   # still waiting for the request
        os.write(w, b"abcd")
        t1.join(10)
        t2.join(10)
        assert not t1.is_alive() and not t2.is_alive()
        assert {c.user_data: c.res for c in ring.wait(2)} == {1: 4, 2: 7}
        assert ring.ops.slots[5] is None
    finally:
        os.close(r)
        os.close(w)


def test_dynptr_accessors_check_program_memory():
    """The interpreter's entries refuse memory outside the run's regions before C runs."""
    from uringbpf.bpf.helpers import Runtime
    from uringbpf.bpf.memory import Buffer
    rt = Runtime()
    page = Buffer(4096)
    dp = Buffer(16)
    dst = Buffer(64)
    for b, w in ((page, True), (dp, True), (dst, True)):
        rt.mem.add_buffer(b, w, "t")
    page.write(0, bytes(range(64)))
    ctypes.c_uint64.from_address(dp.addr).value = page.addr
    ctypes.c_uint32.from_address(dp.addr + 8).value = 100
    ctypes.c_uint32.from_address(dp.addr + 12).value = (1 << 30) | (1 << 31)   # valid, read-only
    M = (1 << 64) - 1
    assert ops.h_dynptr_read(rt, dst.addr, 16, dp.addr, 8, 0) == 0
    assert dst.read(0, 16) == bytes(range(8, 24))
    assert ops.h_dynptr_read(rt, dst.addr, 16, dp.addr, 90, 0) == -errno.E2BIG & M
    assert ops.h_dynptr_read(rt, 0x1000, 16, dp.addr, 0, 0) == -errno.EINVAL & M   # wild dst
    assert ops.h_dynptr_write(rt, dp.addr, 0, dst.addr, 4, 0) == -errno.EINVAL & M  # read-only
    assert ops.h_dynptr_data(rt, dp.addr, 0, 4, 0, 0) == 0                              # read-only
    assert ops.kf_dynptr_slice(rt, dp.addr, 4, 0, 8, 0) == page.addr + 4
    assert ops.kf_dynptr_slice(rt, dp.addr, 96, 0, 8, 0) == 0
    assert ops.kf_dynptr_size(rt, dp.addr, 0, 0, 0, 0) == 100


@pytest.mark.parametrize("engine", ENGINES)
def test_kfixed_kernel_buffer_from_the_kbuf_table(engine):
    """KFIXED names a kernel-registered buffer (the zero-copy design's table) by offset;
    its direction is enforced (a READ-request buffer may only be written)."""
    import mmap
    from uringbpf.designs import kbuf as K
    pages = mmap.mmap(-1, 8192)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(pages))
    with ops.create_ring(8) as ring:
        table = K.attach_table(ring, 4)
        assert table.register_kbuf(1, addr, 8192, K.KBUF_DIR_DEST) == 0
        obj, _ = ops.open_example("memcpy", ring, engine=engine)
        try:
            store = obj.bss.address_of("store")
            ctypes.memmove(store, bytes(range(256)) * 8, 2048)
            ring.prep_bpf(1, ops.buf_descs((ops.IO_BPF_BUF_KFIXED, 1024, 2048, 1)), user_data=1)
            ring.prep_bpf(0, ops.buf_descs((ops.IO_BPF_BUF_KFIXED, 0, 512, 1)), user_data=2)
            ring.prep_bpf(1, ops.buf_descs((ops.IO_BPF_BUF_KFIXED, 8000, 512, 1)), user_data=3)
            ring.prep_bpf(1, ops.buf_descs((ops.IO_BPF_BUF_KFIXED, 0, 512, 2)), user_data=4)
            assert _run(ring, 4) == {1: 2048, 2: -errno.EFAULT, 3: -errno.EFAULT,
                                     4: -errno.EFAULT}
            assert pages[1024:1024 + 2048] == bytes(range(256)) * 8
            assert pages[:1024] == bytes(1024)
        finally:
            obj.close()
            table.unregister_kbuf(1)


@pytest.mark.parametrize("kw", [{"backend": "threads"},
                                {"flags": u.IORING_SETUP_DEFER_TASKRUN | u.IORING_SETUP_SINGLE_ISSUER}],
                         ids=["threads-backend", "defer-taskrun"])
def test_other_ring_kinds_and_wild_descriptor_array(kw):
    flags = ops.IORING_SETUP_BPF_EXT | kw.get("flags", 0)
    with ops.OpsRing(16, flags=flags, **{k: v for k, v in kw.items() if k != "flags"}) as ring:
        obj, _ = ops.open_example("errors", ring, engine="jit")
        try:
            ring.prep_nop(user_data=1, flags=LINK)
            ring.prep_bpf(5, user_data=2, flags=LINK)
            ring.prep_nop(user_data=3)
            ring.prep_bpf(1, user_data=4, flags=LINK)
            ring.prep_nop(user_data=5)
            ring.prep_bpf(3, 0xDEAD000, nr=1, user_data=6)     # sqe->addr is a wild pointer
            assert _run(ring, 6) == {1: 0, 2: 7, 3: 0, 4: -errno.EIO, 5: -errno.ECANCELED,
                                     6: -errno.EFAULT}
        finally:
            obj.close()


def test_native_kfuncs_refuse_unknown_requests_and_forged_iterators():
    """The C twins look requests and iterators up in their own tables: a pointer that is
    not a live request, a zeroed or forged iterator, give the documented errors (never a
    crash); called here through the interpreter's entries with no runtime (pure C)."""
    M = (1 << 64) - 1
    data = ctypes.create_string_buffer(64)
    it = (ctypes.c_uint64 * 8)()
    dp = (ctypes.c_uint64 * 2)()
    desc = ops.buf_descs((ops.IO_BPF_BUF_USER, ctypes.addressof(data), 64))
    a_it, a_dp, a_data = ctypes.addressof(it), ctypes.addressof(dp), ctypes.addressof(data)
    assert ops.kf_set_result(None, a_data, 5, 0, 0, 0) == 0
    assert ops.kf_iter_new(None, a_it, a_data, ctypes.addressof(desc), 1, 0) == -errno.EINVAL & M
    assert it[0] == ops._ITER_MAGIC                      # still an iterator: next is NULL
    assert ops.kf_iter_next(None, a_it, 0, 0, 0, 0) == 0
    assert ops.kf_buf_dynptr(None, a_it, a_dp, 0, 0, 0) == -errno.EINVAL & M
    assert ops.kf_iter_destroy(None, a_it, 0, 0, 0, 0) == 0
    assert it[0] == 0 and ops.kf_iter_next(None, a_it, 0, 0, 0, 0) == 0   # destroyed
    it[0], it[1] = ops._ITER_MAGIC, 0xFFFF_FFFF_0000_0003                 # forged id
    assert ops.kf_iter_next(None, a_it, 0, 0, 0, 0) == 0
    assert ops.kf_buf_dynptr_rdwr(None, a_it, a_dp, 0, 0, 0) == -errno.EINVAL & M
    assert ops.kf_memcpy(None, a_data, ctypes.addressof(desc), ctypes.addressof(desc),
                         0, 0) == -errno.EINVAL & M


@pytest.mark.parametrize("engine", ENGINES)
def test_memcpy_kfunc_wild_memory_is_efault(engine):
    """uring_bpf_memcpy (C twin) copies like copy_from/to_user: a wild source copies
    nothing and is -EFAULT, a wild destination is -EFAULT, never a crash (v2 op 2)."""
    dst = ctypes.create_string_buffer(b"\x11" * 64, 64)
    src = ctypes.create_string_buffer(b"\x22" * 64, 64)
    wild = 0xDEAD000
    with ops.create_ring(8) as ring:
        obj, _ = ops.open_example("memcpy", ring, engine=engine)
        try:
            U = ops.IO_BPF_BUF_USER
            ring.prep_bpf(2, ops.buf_descs((U, ctypes.addressof(dst), 64), (U, wild, 64)),
                          user_data=1)
            ring.prep_bpf(2, ops.buf_descs((U, wild, 64), (U, ctypes.addressof(src), 64)),
                          user_data=2)
            ring.prep_bpf(2, ops.buf_descs((U, ctypes.addressof(dst), 64),
                                           (U, ctypes.addressof(src), 32)), user_data=3)
            assert _run(ring, 3) == {1: -errno.EFAULT, 2: -errno.EFAULT, 3: 32}
            assert dst.raw == b"\x22" * 32 + b"\x11" * 32
        finally:
            obj.close()


def test_native_kfuncs_on_rings_in_several_threads(tmp_path):
    """The C twins share one set of tables (one mutex): JIT programs of two rings running
    on two threads at once still see only their own requests and iterators."""
    import threading
    results, errors = {}, []

    def worker(k: int) -> None:
        try:
            data = os.urandom(16 * 4096 + 100 * k)
            p = tmp_path / f"t{k}.bin"
            p.write_bytes(data)
            r = drivers.run_cksum(str(p), "jit", fixed=bool(k % 2), block=8192)
            results[k] = (data, r["blocks"])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 3
    for data, blocks in results.values():
        assert len(blocks) == (len(data) + 8191) // 8192
        for i, (nread, res, full) in enumerate(blocks):
            chunk = data[i * 8192:(i + 1) * 8192]
            assert (nread, full, res) == (len(chunk), crc32c_bytes(chunk), full & 0x7FFFFFFF)
