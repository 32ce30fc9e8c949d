"""The stripe target refuses one backing file named twice (issue #13 item 14): two stripes
on one file alias chunks, so acknowledged writes through one would be lost to the other."""

from __future__ import annotations

import os

import pytest

from stripe.target import StripeTarget


def _disk(path, size=1 << 20):
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def _open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("how", ["same path", "other spelling", "hard link", "symlink"])
def test_the_same_file_twice_is_refused_at_start(tmp_path, how):
    a = _disk(tmp_path / "a")
    b = _disk(tmp_path / "b")
    if how == "same path":
        dup = a
    elif how == "other spelling":
        dup = tmp_path / "." / "a"
    elif how == "hard link":
        dup = tmp_path / "a-link"
        os.link(a, dup)
    else:
        dup = tmp_path / "a-sym"
        os.symlink(a, dup)
    before = _open_fds()
    with pytest.raises(ValueError, match="same file"):
        StripeTarget([a, b, dup], 65536)
    assert _open_fds() == before                  # nothing left open


def test_distinct_files_are_accepted(tmp_path):
    t = StripeTarget([_disk(tmp_path / "a"), _disk(tmp_path / "b")], 65536)
    try:
        assert len(t.fds) == 2
    finally:
        t.close()
