"""uring/sqrewind.py + native/sqrewind.h: the one emulated SQ_REWIND (ring.py and loop.c)."""

import ctypes

import pytest

from uringbpf.uring import sqrewind

SQE = 64


def _ksq(entries, head, tail, with_array):
    words = (ctypes.c_uint32 * 2)(head, tail)
    array = (ctypes.c_uint32 * entries)(*([0xEEEE] * entries)) if with_array else None
    sqes = ctypes.create_string_buffer(entries * SQE)
    src = ctypes.create_string_buffer(b"".join(bytes([0x41 + i]) * SQE for i in range(entries)))
    rw = sqrewind.Rewinder(ctypes.addressof(words), ctypes.addressof(words) + 4,
                           ctypes.addressof(array) if array is not None else 0,
                           ctypes.addressof(sqes), entries, SQE, ctypes.addressof(src))
    return rw, words, array, sqes, src


@pytest.mark.parametrize("with_array", [True, False])
def test_stage_copies_slots_from_zero_at_the_tail_with_wraparound(with_array):
    rw, words, array, sqes, _ = _ksq(4, head=0xFFFFFFFE, tail=0xFFFFFFFF, with_array=with_array)
    n, tail = rw.stage(5)                     # one SQE in flight: room for 3, not 5 or 4
    assert (n, tail) == (3, 0xFFFFFFFF)
    slots = [(tail + i) & 3 for i in range(n)]
    assert slots == [3, 0, 1]
    for i, slot in enumerate(slots):          # copy i of src slot i, in kernel slot (tail+i)&mask
        assert sqes.raw[slot * SQE:(slot + 1) * SQE] == bytes([0x41 + i]) * SQE
    assert sqes.raw[2 * SQE:3 * SQE] == bytes(SQE)      # the in-flight slot is untouched
    if with_array:
        assert list(array) == [0, 1, 0xEEEE, 3]
    assert words[1] == 0xFFFFFFFF             # staged, not published
    rw.publish(tail + n)
    assert words[1] == 2                      # wraps as a u32
    rw.publish(tail + 1)                      # the kernel took one: the rest are dropped
    assert words[1] == 0


def test_stage_on_a_full_sq_stages_nothing():
    rw, words, _, sqes, _ = _ksq(4, head=10, tail=14, with_array=True)
    assert rw.stage(2) == (0, 14)
    assert sqes.raw == bytes(4 * SQE)
