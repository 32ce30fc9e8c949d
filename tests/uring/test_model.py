"""Random batches of real requests against a model of the kernel's link rules.

Each batch mixes NOPs with injected results, reads of a 100-byte file (some short or past
EOF), reads from a bad fd and writes to /dev/null, with random IO_LINK / IO_HARDLINK /
CQE_SKIP_SUCCESS flags. The model says which CQEs appear and with which result; both
backends must agree with it (and so with each other).
"""

import errno
import os

import pytest
from hypothesis import given, settings, strategies as st

from uringbpf.uring import SQE_CQE_SKIP_SUCCESS, SQE_IO_HARDLINK, SQE_IO_LINK, Ring

SIZE = 100
LINKS = SQE_IO_LINK | SQE_IO_HARDLINK

op = st.one_of(
    st.tuples(st.just("nop"), st.sampled_from([0, 3, -errno.EIO])),
    st.tuples(st.just("read"), st.integers(0, 120), st.integers(1, 64)),
    st.tuples(st.just("badread")),
    st.tuples(st.just("write"), st.integers(1, 64)),
)
flags = st.sampled_from([0, 0, SQE_IO_LINK, SQE_IO_HARDLINK, SQE_CQE_SKIP_SUCCESS,
                         SQE_IO_LINK | SQE_CQE_SKIP_SUCCESS])


def outcome(o):
    """(result, failed) of one request that runs."""
    kind = o[0]
    if kind == "nop":
        return o[1], o[1] < 0
    if kind == "read":
        res = max(0, min(o[2], SIZE - o[1]))
        return res, res != o[2]
    if kind == "badread":
        return -errno.EBADF, True
    return o[1], False


def model(batch):
    """Kernel rules: a failed (non-hard) link member cancels the rest of its chain with
    -ECANCELED; skip-success hides successes only; and when the failing member itself
    has CQE_SKIP_SUCCESS the cancellations are silent (one CQE per chain)."""
    expected, ran, failed, silent = {}, {}, False, False
    for i, (o, fl) in enumerate(batch):
        if failed:
            if not silent:
                expected[i] = -errno.ECANCELED
        else:
            res, bad = outcome(o)
            ran[i] = res
            if bad or not fl & SQE_CQE_SKIP_SUCCESS:
                expected[i] = res
            if bad and not fl & SQE_IO_HARDLINK:
                failed, silent = True, bool(fl & SQE_CQE_SKIP_SUCCESS)
        if not fl & LINKS:
            failed = False
    return expected, ran


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "data"
    path.write_bytes(bytes(range(SIZE)))
    fd = os.open(path, os.O_RDONLY)
    null = os.open(os.devnull, os.O_WRONLY)
    yield fd, null
    os.close(fd)
    os.close(null)


@pytest.mark.parametrize("backend_name", ["kernel", "threads"])
@settings(max_examples=30, deadline=None)
@given(batch=st.lists(st.tuples(op, flags), min_size=1, max_size=10))
def test_batches_match_model(backend_name, files, batch):
    fd, null = files
    bufs = []
    with Ring(16, backend=backend_name) as ring:
        for i, (o, fl) in enumerate(batch):
            if o[0] == "nop":
                ring.prep_nop(i, flags=fl, inject=o[1])
            elif o[0] == "read":
                buf = bytearray(o[2])
                bufs.append((i, buf, o[1]))
                ring.prep_read(fd, buf, o[1], user_data=i, flags=fl)
            elif o[0] == "badread":
                ring.prep_read(98765, bytearray(8), user_data=i, flags=fl)
            else:
                ring.prep_write(null, bytes(o[1]), -1, user_data=i, flags=fl)
        ring.submit()
        expected, ran = model(batch)
        got = {}
        while len(got) < len(expected):
            ring.wait_cqe(timeout=5)
            for c in ring.reap():
                assert c.user_data not in got
                got[c.user_data] = c.res
        assert ring.peek_cqe() is None
        assert got == expected
    for i, buf, off in bufs:   # what the completed reads returned is the file's content
        n = got.get(i, 0)   # skip-success reads give no completion signal: not checked
        if n > 0:
            assert bytes(buf[:n]) == bytes(range(off, off + n))
