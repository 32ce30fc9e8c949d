"""bpf_iter_num_new/next (native/base.c, both engines call it) against the kernel's
kernel/bpf/bpf_iter.c: next() computes cur + 1 as a wrapping int before widening it, so a
range starting at INT_MIN runs (a 64-bit cur + 1 ended it before its first step)."""

import ctypes

from uringbpf.bpf.base_helpers import _base_call

INT_MIN, INT_MAX = -2 ** 31, 2 ** 31 - 1


def _values(start: int, end: int, limit: int = 20) -> tuple[int, list[int]]:
    it = (ctypes.c_int32 * 2)()
    ret = _base_call("ubpf_kfunc_iter_num_new", ctypes.addressof(it), start, end)
    out = []
    for _ in range(limit):
        p = _base_call("ubpf_kfunc_iter_num_next", ctypes.addressof(it))
        if not p:
            break
        out.append(ctypes.c_int32.from_address(p).value)
    _base_call("ubpf_kfunc_iter_num_destroy", ctypes.addressof(it))
    return ctypes.c_int64(ret).value, out


def test_range_from_int_min_runs():
    assert _values(INT_MIN, INT_MIN + 3) == (0, [INT_MIN, INT_MIN + 1, INT_MIN + 2])


def test_ordinary_and_edge_ranges():
    assert _values(0, 3) == (0, [0, 1, 2])
    assert _values(-2, 1) == (0, [-2, -1, 0])
    assert _values(5, 5) == (0, [])
    assert _values(INT_MAX - 2, INT_MAX) == (0, [INT_MAX - 2, INT_MAX - 1])
    assert _values(3, 1)[0] == -22                       # -EINVAL
    assert _values(INT_MIN, INT_MAX)[0] == -7            # -E2BIG
