"""Ring buffers in Python-written programs: reserve/submit/discard and output act on one
native ring buffer in the application run and in the compiled run, with the same records,
the same NULL when the ring is full and the same verifier rules."""

from __future__ import annotations

import ctypes

import pytest

from uringbpf.bpf import maps as _maps
from uringbpf.lang import LangVerifierError, Module, ptr, s64, u32, u64


class Event(ctypes.Structure):
    _fields_ = [("key", ctypes.c_uint32), ("len", ctypes.c_uint32), ("tag", ctypes.c_uint64)]


bpf = Module("ringbuf_test")
events = bpf.ringbuf("events", 4096)


@bpf.bss
class st:
    full: u32
    discarded: u32


@bpf.socket_filter
def record(data, n) -> s64:
    if n < 4:
        return -1
    key = ptr[u32](data)[0]
    if key == 7:                        # bulk: fill the ring until reserve fails
        for i in range(200):
            f = events.reserve(Event)
            if not f:
                st.full += 1
                return i
            f.key = u32(i)
            f.tag = 0
            events.submit(f)
        return 200
    e = events.reserve(Event)
    if not e:
        st.full += 1
        return -2
    e.key = key
    e.len = u32(n)
    e.tag = u64(key) * 0x100000001
    if key & 1:
        events.discard(e)
        st.discarded += 1
        return 0
    events.submit(e)
    return events.output(data, 4)


def _records() -> list[bytes]:
    rb = _maps.RingBuffer(events.map)
    try:
        return rb.records()
    finally:
        rb.close()


def _run(mode: str, keys: list[int]) -> tuple:
    events.close()
    st.full = st.discarded = 0
    if mode == "app":
        rets = [record.run_in_app(k.to_bytes(4, "little") + b"xy") for k in keys]
    else:
        with record.loaded(mode) as run:
            rets = [run(k.to_bytes(4, "little") + b"xy") for k in keys]
    return rets, st.values(), _records()


def test_reserve_submit_discard_same_both_ways():
    keys = [2, 3, 4, 5, 10]
    runs = {m: _run(m, keys) for m in ("app", "jit", "interp")}
    assert runs["app"] == runs["jit"] == runs["interp"]
    rets, vals, recs = runs["app"]
    assert rets == [0, 0, 0, 0, 0] and vals == {"full": 0, "discarded": 2}
    evs = [Event.from_buffer_copy(r) for r in recs if len(r) == ctypes.sizeof(Event)]
    assert [(e.key, e.len, e.tag) for e in evs] == [(k, 6, k * 0x100000001) for k in (2, 4, 10)]
    assert [r for r in recs if len(r) == 4] == [k.to_bytes(4, "little") for k in (2, 4, 10)]


def test_full_ring_gives_null_at_the_same_record_both_ways():
    runs = {m: _run(m, [7]) for m in ("app", "jit", "interp")}
    assert runs["app"] == runs["jit"] == runs["interp"]
    rets, vals, recs = runs["app"]
    # 4096-byte ring, 8-byte header + 16-byte record each
    assert rets == [4096 // 24] and vals["full"] == 1 and len(recs) == 4096 // 24


def test_unreleased_record_is_refused_at_its_line():
    bad = Module("ringbuf_leak")
    rb = bad.ringbuf("rb", 4096)

    @bad.socket_filter
    def leak(data, n) -> u64:
        e = rb.reserve(Event)
        if not e:
            return 0
        e.key = 1
        if n > 3:
            rb.submit(e)
        return 1                         # the record leaks when n <= 3

    with pytest.raises(LangVerifierError) as ei:
        leak.run(b"ab", "interp")
    assert ei.value.filename.endswith("test_ringbuf.py")
    assert "unreleased" in str(ei.value) or "reference" in str(ei.value)


def test_reserve_outside_the_subset_is_a_compile_error():
    bad = Module("ringbuf_bad")
    arr = bad.array_map("arr", u32, u64, 4)

    @bad.socket_filter
    def wrong(data, n) -> u64:
        e = arr.reserve(Event)
        return 0

    from uringbpf.lang import LangCompileError
    with pytest.raises(LangCompileError, match="not a ring buffer"):
        bad.compile()
