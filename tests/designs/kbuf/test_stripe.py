"""The stripe target on the request source, without NBD: mapping, data, errors, integrity."""

from __future__ import annotations

import errno
import os
import random

import pytest
from hypothesis import given, settings, strategies as st

from stripe.integrity import IntegrityLog, read_log
from stripe.layout import StripeLayout
from stripe.target import StripeTarget, start, stop
from uringbpf.designs import kbuf as K


def make_files(tmp_path, n, size):
    paths = []
    for i in range(n):
        p = tmp_path / f"disk{i}"
        with open(p, "wb") as f:
            f.truncate(size)
        paths.append(p)
    return paths


@given(nr=st.integers(1, 4), chunk_log=st.integers(12, 19), data=st.data())
@settings(max_examples=60, deadline=None)
def test_layout_split_covers_every_byte_once(nr, chunk_log, data):
    chunk = 1 << chunk_log
    lay = StripeLayout(nr, chunk, chunk * 3 + 100)
    assert lay.file_size == chunk * 3 and lay.size == chunk * 3 * nr
    off = data.draw(st.integers(0, lay.size - 1))
    length = data.draw(st.integers(0, min(lay.size - off, 3 * chunk * nr)))
    ops = lay.split(off, length)
    assert len(ops) <= nr and len({o.file for o in ops}) == len(ops)
    covered = sorted(p for o in ops for p in o.pieces)
    pos = 0
    for boff, n in covered:
        assert boff == pos
        pos += n
    assert pos == length
    # each byte lands where the RAID-0 formula says
    for o in ops:
        fpos = o.file_offset
        for boff, n in o.pieces:
            dev = off + boff
            unit = chunk * nr
            assert (dev % unit) // chunk == o.file
            assert fpos == (dev // unit) * chunk + dev % chunk
            fpos += n


def test_layout_rejects_bad_geometry():
    with pytest.raises(ValueError):
        StripeLayout(5, 65536, 1 << 20)
    with pytest.raises(ValueError):
        StripeLayout(2, 3 * 4096, 1 << 20)
    with pytest.raises(ValueError):
        StripeLayout(2, 1 << 20, 1 << 22)
    with pytest.raises(ValueError):
        StripeLayout(2, 65536, 4096)
    with pytest.raises(ValueError):
        StripeLayout(2, 4096, 1 << 20).split(2 << 20, 1)


def test_target_refuses_unequal_files(tmp_path):
    a, b = make_files(tmp_path, 2, 1 << 20)
    with open(b, "ab") as f:
        f.truncate(2 << 20)
    with pytest.raises(ValueError):
        StripeTarget([a, b], 65536)


@pytest.mark.parametrize("mode,pin", [("copy", "region"), ("zc", "region"),
                                      ("zc", "request"), ("auto_zc", "region"),
                                      ("auto_zc", "request")])
def test_random_io_matches_shadow_and_files(tmp_path, mode, pin):
    paths = make_files(tmp_path, 3, 512 * 1024)
    log = IntegrityLog(tmp_path / "log", engine="auto")
    target = StripeTarget(paths, 16384, mode, queue_depth=4, max_io_bytes=256 * 1024,
                          integrity=log, pin=pin)
    source, ring, thread = start(target)
    rnd = random.Random(7)
    shadow = bytearray(target.size)
    writes = []
    try:
        for _ in range(120):
            off = rnd.randrange(target.size // 512) * 512
            n = min(rnd.randrange(1, 512) * 512, target.size - off)
            if rnd.random() < 0.5:
                data = os.urandom(n)
                assert source.submit(K.UBLK_IO_OP_WRITE, off, data) == (n, b"")
                shadow[off:off + n] = data
                writes.append((off, data))
            else:
                res, got = source.submit(K.UBLK_IO_OP_READ, off, n)
                assert res == n and got == shadow[off:off + n]
        assert source.submit(K.UBLK_IO_OP_FLUSH, 0, 0)[0] == 0
        if mode == "copy":
            assert source.stats["copied_bytes"] > 0
        else:
            assert source.stats["copied_bytes"] == 0 and ring.stats["kbuf_import"] > 0
    finally:
        stop(source, ring, thread, target)
    assert target.layout.read_files([str(p) for p in paths], 0, target.size) == shadow
    # the integrity log has the crc32c of every write, in order
    logged = read_log(tmp_path / "log")
    assert [(o, n) for o, n, _ in logged] == [(o, len(d)) for o, d in writes]
    assert [c for _, _, c in logged] == [K.crc32c_bytes(d) for _, d in writes]


@pytest.mark.parametrize("mode", ["copy", "zc"])
def test_short_result_is_eio_and_bad_range_einval(tmp_path, mode):
    paths = make_files(tmp_path, 2, 256 * 1024)
    target = StripeTarget(paths, 4096, mode, queue_depth=2)
    source, ring, thread = start(target)
    try:
        os.truncate(paths[1], 4096)          # file 1 now ends early: reads there come up short
        res, _ = source.submit(K.UBLK_IO_OP_READ, 0, 4 * 4096)
        assert res == -errno.EIO
        res, _ = source.submit(K.UBLK_IO_OP_READ, 0, 4096)       # file 0 only: fine
        assert res == 4096
        res, _ = source.submit(K.UBLK_IO_OP_READ, target.size - 512, 1024)
        assert res == -errno.EINVAL
        res, _ = source.submit(K.UBLK_IO_OP_DISCARD, 0, 0)
        assert res == -errno.EOPNOTSUPP
    finally:
        stop(source, ring, thread, target)


def test_integrity_engine_reports_its_choice(tmp_path):
    log = IntegrityLog(None, engine="auto")
    assert log.engine == "bpf", log.engine_reason      # the loader, verifier and JIT exist
    assert log.engine_reason
    native = IntegrityLog(None, engine="native")
    import ctypes
    data = os.urandom(70000)
    buf = ctypes.create_string_buffer(data, len(data))
    assert log.crc(ctypes.addressof(buf), len(data)) == \
        native.crc(ctypes.addressof(buf), len(data)) == K.crc32c_bytes(data)
    with pytest.raises(ValueError):
        IntegrityLog(None, engine="python")


@pytest.mark.parametrize("bpf_engine", ["jit", "interp"])
def test_bpf_crc32c_program_matches_native(bpf_engine):
    """The integrity program (C -> uringbpf cc -> BpfObject, verified) on both engines."""
    import ctypes
    log = IntegrityLog(None, engine="bpf", bpf_engine=bpf_engine)
    assert log.engine == "bpf" and bpf_engine in log.engine_reason
    rnd = random.Random(3)
    sizes = [8, 512, 4096, 4104, 3 * 4096 + 512] + ([65536] if bpf_engine == "jit" else [])
    for n in sizes:
        data = bytes(rnd.getrandbits(8) for _ in range(n))
        buf = ctypes.create_string_buffer(data, n)
        assert log.crc(ctypes.addressof(buf), n) == K.crc32c_bytes(data), n
