"""The language's SQE helpers fill an SQE exactly as uringbpf.uring.prep (liburing's
io_uring_prep_*) does, in the application and compiled."""

from __future__ import annotations

import pytest

from uringbpf.lang import Module, ptr
from uringbpf.lang import prep as L
from uringbpf.uring import prep as P
from uringbpf.uring.uapi import Sqe

bpf = Module("prep_test")


@bpf.socket_filter
def fill(data, n) -> int:
    if n < 64 * 8:
        return 0
    sqes = ptr[Sqe](data)
    L.prep_nop(sqes + 0)
    L.prep_read(sqes + 1, 5, 0x1000, 4096, 77)
    L.prep_write(sqes + 2, -3, 0xFFFF_FFFF_0000, 1, 0xFFFFFFFFFFFFFFFF)
    L.prep_fsync(sqes + 3, 9, 1)
    L.prep_timeout(sqes + 4, 0x7000, 3, 2)
    L.prep_poll_add(sqes + 5, 4, 0x41)
    L.prep_msg_ring(sqes + 6, 8, 123, 0xABCDEF, 0)
    L.prep_cancel(sqes + 7, 0x1234, 1)
    return 8


def _expected() -> bytes:
    out = b""
    for f in (lambda s: P.prep_nop(s), lambda s: P.prep_rw(s, 22, 5, 0x1000, 4096, 77),
              lambda s: P.prep_rw(s, 23, -3, 0xFFFF_FFFF_0000, 1, 0xFFFFFFFFFFFFFFFF),
              lambda s: (P.prep_rw(s, 3, 9, 0, 0, 0), setattr(s, "fsync_flags", 1)),
              lambda s: P.prep_timeout(s, 0x7000, 3, 2), lambda s: P.prep_poll_add(s, 4, 0x41),
              lambda s: P.prep_msg_ring(s, 8, 123, 0xABCDEF, 0),
              lambda s: P.prep_cancel(s, 0x1234, 1)):
        s = Sqe()
        f(s)
        out += bytes(s)
    return out


@pytest.mark.parametrize("mode", ["app", "jit", "interp"])
def test_prep_helpers_match_uring_prep(mode):
    garbage = bytes(range(256)) * 2            # SQE slots hold old contents
    if mode == "app":
        assert fill.run_in_app(garbage) == 8
    else:
        assert fill.run(garbage, mode) == 8
    got = fill.last_data
    want = _expected()
    for i in range(8):
        assert got[64 * i:64 * (i + 1)] == want[64 * i:64 * (i + 1)], f"SQE {i}"
