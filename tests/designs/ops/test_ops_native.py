"""The native submit path of IORING_OP_BPF (ops_enter in designs/ops/ops.c, issue #17).

JIT programs run with no Python per operation; the Python path (the interpreter's, and
``allow_native = False``) is the reference: the same windows must give the same CQEs, in
the same order, and the same callback counts."""

from __future__ import annotations

import ctypes
import errno
import os
import random
import struct

import pytest

from uringbpf import Buffer
from uringbpf.designs import ops
from uringbpf.uring import uapi as u

LINK, HARD, SKIP = u.IOSQE_IO_LINK, u.IOSQE_IO_HARDLINK, u.IOSQE_CQE_SKIP_SUCCESS


@pytest.fixture
def jit_ring():
    ring = ops.create_ring(16)
    obj, _ = ops.open_example("errors", ring, engine="jit")
    yield ring, obj
    obj.close()
    ring.close()


def _counters(obj) -> tuple:
    return tuple(struct.unpack("<8Q", bytes(getattr(obj.bss, n)))
                 for n in ("preps", "issues", "fails", "cleanups"))


def test_native_path_only_for_unchecked_jit():
    with ops.create_ring(8) as ring:
        obj, _ = ops.open_example("basic", ring, engine="jit")
        try:
            assert ring.ops.native_path
            ring.prep_bpf(0, user_data=1)
            ring.prep_bpf(1, user_data=2)
            ring.submit()
            assert sorted((c.user_data, c.res) for c in ring.wait(2)) == [(1, 42), (2, 43)]
            st = ring.ops.path_stats()
            assert st["native"]["issue"] == 2 and st["python"]["issue"] == 0
            assert ring.ops.stats["issue"] == 2
        finally:
            obj.close()
    with ops.create_ring(8) as ring:
        obj, _ = ops.open_example("basic", ring, engine="interp")
        try:
            assert not ring.ops.native_path
            ring.prep_bpf(0, user_data=1)
            ring.submit()
            assert [(c.user_data, c.res) for c in ring.wait(1)] == [(1, 42)]
            assert ring.ops.path_stats()["python"]["issue"] == 1
        finally:
            obj.close()


def _window(rnd: random.Random, ring, fd: int, keep: list) -> int:
    """Queue a random window of kernel ops and BPF ops (errors.bpf.c ids 0-6 and an empty
    slot) with random link flags; returns how many CQEs at most it posts."""
    buf = Buffer(8192)
    keep.append(buf)
    descs = [ops.buf_descs((ops.IO_BPF_BUF_USER, buf.addr, 5000)),
             ops.buf_descs((ops.IO_BPF_BUF_FIXED, buf.addr, 100, 3)),       # not registered
             ops.buf_descs((ops.IO_BPF_BUF_VEC, 0x10, 2)),                  # wild iovecs
             ops.buf_descs((9, buf.addr, 100))]                             # bad type
    keep.extend(descs)
    n = rnd.randint(1, 12)
    for i in range(n):
        fl = rnd.choice([0, 0, LINK, LINK, HARD, LINK | SKIP, SKIP])
        if i == n - 1:       # close the last chain (an open one completes later, both paths)
            fl &= ~(LINK | HARD)
        kind = rnd.choice(["nop", "fail", "read", "badread", "bpf", "bpf", "bpf"])
        ud = 100 + i
        if kind == "nop":
            ring.prep_nop(user_data=ud, flags=fl)
        elif kind == "fail":
            ring.prep_nop(user_data=ud, flags=fl, inject=-errno.EIO)
        elif kind == "read":
            ring.prep_read(fd, buf, 0, nbytes=512, user_data=ud, flags=fl)
        elif kind == "badread":
            ring.prep_read(9999, buf, 0, nbytes=16, user_data=ud, flags=fl)
        else:
            op = rnd.choice([0, 1, 2, 3, 4, 5, 5, 6, 9])
            d = rnd.choice(descs) if op in (3, 6) else None
            ring.prep_bpf(op, d, user_data=ud, flags=fl & ~SKIP)
    return n


def _drain(ring) -> list:
    out = []
    c = ring.peek_cqe()
    while c is not None:
        out.append((c.user_data, c.res))
        ring.cqe_seen()
        c = ring.peek_cqe()
    return out


def _until_marker(ring) -> list:
    """Every CQE up to a marker NOP submitted on its own (a window may end in an open link
    chain, whose CQEs the kernel posts from task work: waiting runs it)."""
    ring.prep_nop(user_data=999)
    ring.submit()
    out = []
    while True:
        for c in ring.wait(1):
            if c.user_data == 999:
                return out + _drain(ring)
            out.append((c.user_data, c.res))


@pytest.mark.parametrize("seed", range(16))
def test_native_and_python_paths_agree(jit_ring, tmp_path, seed):
    ring, obj = jit_ring
    p = tmp_path / "data"
    p.write_bytes(os.urandom(4096))
    fd = os.open(p, os.O_RDONLY)
    keep: list = []
    try:
        results = []
        for native in (True, False):
            ring.ops.allow_native = native
            rnd = random.Random(seed)
            before = _counters(obj)
            cqes = []
            for _ in range(3):
                _window(rnd, ring, fd, keep)
                ring.submit()
                cqes.append(sorted(_until_marker(ring)))
            after = _counters(obj)
            results.append((cqes, [tuple(a - b for a, b in zip(x, y))
                                   for x, y in zip(after, before)]))
        assert results[0] == results[1]
        st = ring.ops.path_stats()
        assert st["native"]["prep"] == st["python"]["prep"]
        assert st["native"]["sentinels"] == st["python"]["sentinels"]
    finally:
        os.close(fd)


def test_registered_buffers_follow_registration(jit_ring):
    """The C mirror of the registered buffers is resynced after any io_uring_register;
    indices beyond it (1024+) are looked up through Python, with the same checks."""
    ring, _ = jit_ring
    small = {0: Buffer(4096), 1029: Buffer(4096)}
    ring.register_buffers_sparse(1030)
    ring.register_buffers_update(0, [small[0]])
    ring.register_buffers_update(1029, [small[1029]])
    try:
        for ud, (idx, length) in enumerate(((0, 3000), (1029, 2000), (1029, 5000))):
            d = ops.buf_descs((ops.IO_BPF_BUF_FIXED, small[idx].addr, length, idx))
            ring.prep_bpf(3, d, user_data=ud)
            ring.submit()
            got = ring.wait(1)[0].res
            assert got == (length if length <= 4096 else -errno.EFAULT)
    finally:
        ring.unregister_buffers()
    d = ops.buf_descs((ops.IO_BPF_BUF_FIXED, small[0].addr, 100, 0))
    ring.prep_bpf(3, d, user_data=9)
    ring.submit()
    assert ring.wait(1)[0].res == -errno.EFAULT             # unregistered since


def test_full_cq_while_a_chain_waits_is_ebusy_and_frees_the_requests():
    with ops.create_ring(8, cq_entries=16) as ring:
        obj, _ = ops.open_example("errors", ring, engine="jit")
        try:
            assert ring.ops.native_path
            for _ in range(2):
                for i in range(8):
                    ring.prep_nop(user_data=i)
                ring.submit()
            ring.prep_nop(user_data=50, flags=LINK)
            ring.prep_bpf(5, user_data=51)
            with pytest.raises(OSError) as ei:
                ring.submit()
            assert ei.value.errno == errno.EBUSY
            assert ring.ops.slots[5].inflight == 0              # cancelled and released
            assert len(_drain(ring)) >= 16
            ring.prep_bpf(5, user_data=60)
            ring.submit()
            assert [(c.user_data, c.res) for c in ring.wait(1)] == [(60, 7)]
        finally:
            obj.close()


def test_cksum_chain_native_equals_python(tmp_path):
    """READ -> OP_BPF crc32c on the native path gives the Python path's results."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("ops_drivers", ops.EXAMPLES_DIR / "drivers.py")
    drivers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(drivers)
    data = os.urandom(5 * 4096 + 77)
    p = tmp_path / "f"
    p.write_bytes(data)
    fd = os.open(p, os.O_RDONLY)
    buf = Buffer(8192)
    try:
        with ops.create_ring(8) as ring:
            obj, _ = ops.open_example("cksum", ring, engine="jit")
            try:
                out = []
                for native in (True, False):
                    ring.ops.allow_native = native
                    out.append(drivers.cksum_blocks(ring, obj, fd, len(data), buf, block=8192))
                assert out[0] == out[1] and len(out[0]) == 3
                st = ring.ops.path_stats()
                assert st["native"]["issue"] == st["python"]["issue"] == 3
            finally:
                obj.close()
    finally:
        os.close(fd)


def test_memory_probes_use_the_callers_pid_after_fork():
    """ops.c caches its pid for process_vm_readv (getpid is a syscall per probe); a forked
    child must probe its own memory, not its parent's."""
    lib = ops._lib()
    buf = ctypes.create_string_buffer(b"parent", 8)
    out = ctypes.create_string_buffer(8)
    assert lib.ops_read_user(ctypes.addressof(buf), ctypes.addressof(out), 8) == 1
    assert out.value == b"parent"
    pid = os.fork()
    if pid == 0:
        buf.value = b"child"
        ok = (lib.ops_read_user(ctypes.addressof(buf), ctypes.addressof(out), 8) == 1
              and out.value == b"child")
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_closed_jit_code_is_never_called_from_c():
    """Closing an attached program's JIT code (API misuse) must not let ops_enter jump into
    freed thunks: the ring falls back to the Python path, which refuses the run."""
    with ops.create_ring(8) as ring:
        obj, _ = ops.open_example("basic", ring, engine="jit")
        try:
            assert ring.ops.native_path
            ring.ops.slots[0].progs["issue_fn"].jit.close()
            ring.prep_bpf(0, user_data=1)
            ring.submit()
            assert [(c.user_data, c.res) for c in ring.wait(1)] == [(1, -errno.EFAULT)]
            assert not ring.ops.native_path and ring.ops.errors
        finally:
            obj.close()
