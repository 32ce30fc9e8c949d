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
