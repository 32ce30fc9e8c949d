"""examples/loop: cp (short reads), cksum (data-dependent), nops; bytes checked on disk."""

from __future__ import annotations

import os
import random
import socket
import sys
import threading

import pytest

from uringbpf.designs import loop

sys.path.insert(0, str(loop.EXAMPLES_DIR))
ENGINES = ["interp", "jit"]


def feed(fd_w, data, seed, max_piece=9000, close=True):
    """Write ``data`` to a pipe/socket in random pieces from a thread."""
    def run():
        rnd = random.Random(seed)
        i = 0
        try:
            while i < len(data):
                n = rnd.randint(1, max_piece)
                os.write(fd_w, data[i:i + n])
                i += n
        except OSError:   # the reader went away (a failing test): do not hang
            pass
        finally:
            if close:
                os.close(fd_w)
    t = threading.Thread(target=run)
    t.start()
    return t


@pytest.mark.parametrize("engine", ENGINES)
def test_cp_file_to_file(tmp_path, engine):
    import cp
    data = random.Random(3).randbytes(200_000 + 123)   # not a multiple of the chunk
    (tmp_path / "src").write_bytes(data)
    res = cp.copy(str(tmp_path / "src"), str(tmp_path / "dst"), chunk=16384, engine=engine)
    assert (tmp_path / "dst").read_bytes() == data
    assert res.error == 0 and res.done and res.copied == len(data) and res.engine == engine
    assert res.short_reads == 1   # the tail of the file


@pytest.mark.parametrize("engine", ENGINES)
def test_cp_pipe_every_read_short(tmp_path, engine):
    """A 128 KiB chunk from a 64 KiB pipe: every read is short; each write matches its read."""
    data = random.Random(4).randbytes(600_000)
    r, w = os.pipe()
    t = feed(w, data, seed=5)
    out = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        res = loop.copy_fd(r, out, chunk=128 * 1024, engine=engine)
    finally:
        os.close(r)
        t.join()
        os.close(out)
    assert (tmp_path / "dst").read_bytes() == data
    assert res.error == 0 and res.copied == len(data)
    assert res.short_reads == res.reads - 1 > 1   # all but the final 0-byte read were short


def test_cp_socket_stream(tmp_path):
    data = random.Random(6).randbytes(100_000)
    a, b = socket.socketpair()
    t = feed(b.detach(), data, seed=7, max_piece=3000)
    out = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        res = loop.copy_fd(a.fileno(), out, chunk=8192)
    finally:
        a.close()
        t.join()
        os.close(out)
    assert (tmp_path / "dst").read_bytes() == data and res.error == 0


def test_cp_error_is_reported(tmp_path):
    """Writing to a read-only fd: the write CQE's -EBADF stops the loop and is recorded."""
    (tmp_path / "src").write_bytes(b"x" * 5000)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    ro = os.open(tmp_path / "src", os.O_RDONLY)
    try:
        res = loop.copy_fd(src, ro, chunk=4096)
    finally:
        os.close(src)
        os.close(ro)
    assert res.error == -9 and not res.done and res.copied == 0


CHUNK = 4096
ODD_SIZES = [0, 1, CHUNK - 1, CHUNK + 1, 5 * CHUNK + 17]
BIG_SIZE = 3 * (1 << 20) + 12345          # several MiB, not a multiple of the chunk


def copy_file(tmp_path, data, *, depth, engine, chunk=CHUNK, skip=0):
    """Copy tmp_path/src (from offset ``skip``) to tmp_path/dst with cp.bpf.c at ``depth``."""
    (tmp_path / "src").write_bytes(data)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    out = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.lseek(src, skip, os.SEEK_SET)
        res = loop.copy_fd(src, out, chunk=chunk, depth=depth, engine=engine)
        end = os.lseek(src, 0, os.SEEK_CUR)
    finally:
        os.close(src)
        os.close(out)
    return res, end


def expected_reads(size, chunk, depth):
    """Each slot reads its chunks in turn, then one read at end of file (0 bytes)."""
    full, tail = divmod(size, chunk)
    if depth == 1:
        return full + (1 if tail else 0) + 1
    # the slot holding the tail reads it short, then asks for the rest of its chunk
    return full + (2 if tail else 0) + depth - (1 if tail else 0)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("depth", [1, 4, 8])
@pytest.mark.parametrize("size", ODD_SIZES)
def test_cp_depth_odd_sizes(tmp_path, engine, depth, size):
    data = random.Random(size * 10 + depth).randbytes(size)
    res, end = copy_file(tmp_path, data, depth=depth, engine=engine)
    assert (tmp_path / "dst").read_bytes() == data
    assert res.error == 0 and res.done and res.copied == size
    assert res.depth == depth and res.engine == engine
    assert end == size                         # the input offset moved past the copy
    assert res.short_reads == (1 if size % CHUNK else 0)
    assert res.reads == expected_reads(size, CHUNK, depth)


@pytest.mark.parametrize("engine", ENGINES)
def test_cp_driver_depth(tmp_path, engine):
    import cp
    data = random.Random(16).randbytes(2 * 16384 + 3)
    (tmp_path / "src").write_bytes(data)
    res = cp.copy(str(tmp_path / "src"), str(tmp_path / "dst"), chunk=16384, engine=engine,
                  depth=4)
    assert (tmp_path / "dst").read_bytes() == data
    assert res.depth == 4 and res.done and res.copied == len(data)


@pytest.mark.parametrize("depth", [1, 4, 8])
def test_cp_depth_several_mib_jit(tmp_path, depth):
    data = random.Random(depth).randbytes(BIG_SIZE)
    res, _ = copy_file(tmp_path, data, depth=depth, engine="jit", chunk=64 * 1024 + 512)
    assert (tmp_path / "dst").read_bytes() == data
    assert res.error == 0 and res.done and res.copied == BIG_SIZE and res.depth == depth
    assert res.reads == expected_reads(BIG_SIZE, 64 * 1024 + 512, depth)


@pytest.mark.parametrize("engine", ENGINES)
def test_cp_depth_starts_at_input_offset(tmp_path, engine):
    """Deeper copies read at explicit offsets from where the input fd stands, like depth 1."""
    data = random.Random(11).randbytes(3 * CHUNK + 5)
    res, end = copy_file(tmp_path, data, depth=4, engine=engine, skip=1000)
    assert (tmp_path / "dst").read_bytes() == data[1000:]
    assert res.copied == len(data) - 1000 and end == len(data) and res.depth == 4


def test_cp_depth_clamped_to_1_on_a_pipe(tmp_path):
    """Pipes have no offsets: depth is clamped to 1 and short reads are written as read."""
    data = random.Random(12).randbytes(300_000)
    r, w = os.pipe()
    t = feed(w, data, seed=13)
    out = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        res = loop.copy_fd(r, out, chunk=128 * 1024, depth=8)
    finally:
        os.close(r)
        t.join()
        os.close(out)
    assert (tmp_path / "dst").read_bytes() == data
    assert res.depth == 1 and res.error == 0 and res.copied == len(data)
    assert res.short_reads == res.reads - 1 > 1


def test_cp_depth_pipe_output_clamped_to_1(tmp_path):
    """A pipe as OUTPUT has no offsets either (chunks would land out of order): depth 1."""
    data = random.Random(14).randbytes(400_000)
    (tmp_path / "src").write_bytes(data)
    r, w = os.pipe()
    got = bytearray()

    def drain():
        while chunk := os.read(r, 5000):
            got.extend(chunk)
    t = threading.Thread(target=drain)
    t.start()
    src = os.open(tmp_path / "src", os.O_RDONLY)
    try:
        res = loop.copy_fd(src, w, chunk=128 * 1024, depth=4)
    finally:
        os.close(src)
        os.close(w)
        t.join()
        os.close(r)
    assert bytes(got) == data and res.error == 0 and res.copied == len(data)
    assert res.depth == 1 and res.writes >= res.reads - 1


@pytest.mark.parametrize("depth", [1, 4])
def test_cp_short_write_at_file_size_limit(tmp_path, depth):
    """RLIMIT_FSIZE cuts the write that crosses it short; resuming it gets -EFBIG.

    At depth 1 that is exact: the limit's bytes are on disk, one short write, then the
    error.  Deeper, other chunks may be written past the cut or not at all when the loop
    stops, but every byte on disk is the source's (or a hole) and the error is reported.
    """
    import resource
    import signal
    limit = 3 * CHUNK + 100
    data = random.Random(15).randbytes(10 * CHUNK)
    (tmp_path / "src").write_bytes(data)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    out = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old_limit[1]))
        res = loop.copy_fd(src, out, chunk=CHUNK, depth=depth)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
        os.close(src)
        os.close(out)
    got = (tmp_path / "dst").read_bytes()
    assert res.error == -27 and not res.done and res.depth == depth   # EFBIG
    assert len(got) <= limit
    if depth == 1:
        assert got == data[:limit] and res.copied == limit and res.short_writes == 1
    else:
        assert all(b == 0 or b == d for b, d in zip(got, data)) and res.copied <= limit


def test_cp_depth_error_is_reported(tmp_path):
    (tmp_path / "src").write_bytes(b"y" * 50_000)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    ro = os.open(tmp_path / "src", os.O_RDONLY)
    try:
        res = loop.copy_fd(src, ro, chunk=4096, depth=4)
    finally:
        os.close(src)
        os.close(ro)
    assert res.error == -9 and not res.done and res.copied == 0


@pytest.mark.parametrize("bad", [0, 9, -1, 2.0])
def test_cp_depth_out_of_range(tmp_path, bad):
    with pytest.raises(ValueError, match="depth"):
        loop.copy_fd(0, 1, depth=bad)


@pytest.mark.parametrize("engine", ENGINES)
def test_cksum_stream(tmp_path, engine):
    import cksum
    data = random.Random(8).randbytes(50_000)
    (tmp_path / "src").write_bytes(data)
    res = cksum.copy_and_hash(str(tmp_path / "src"), str(tmp_path / "dst"), engine=engine)
    assert (tmp_path / "dst").read_bytes() == data
    assert res.fnv1a == loop.fnv1a32(data) and res.copied == len(data) and res.engine == engine


def test_cksum_pipe_with_short_reads(tmp_path):
    data = random.Random(9).randbytes(120_000)
    r, w = os.pipe()
    t = feed(w, data, seed=10, max_piece=1500)
    out = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        res = loop.copy_fd(r, out, checksum=True)
    finally:
        os.close(r)
        t.join()
        os.close(out)
    assert (tmp_path / "dst").read_bytes() == data
    assert res.fnv1a == loop.fnv1a32(data)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("k", [1, 8])
def test_nops_driver(engine, k):
    import nops
    left, secs, used = nops.run(3000 if engine == "jit" else 500, k, engine)
    assert left == 0 and used == engine and secs > 0
