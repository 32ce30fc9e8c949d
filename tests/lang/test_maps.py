"""Maps shared by both runs: the application's calls and the compiled program's helper
calls act on the same native map."""

from __future__ import annotations

import ctypes

from uringbpf.bpf import maps as _maps
from uringbpf.lang import Module, ptr, s64, stack, u32, u64


class Pair(ctypes.Structure):
    _fields_ = [("count", ctypes.c_uint64), ("last", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


bpf = Module("maps_test")
counts = bpf.array_map("counts", u32, u64, 8)
pairs = bpf.hash_map("pairs", u32, Pair, 16)
events = bpf.ringbuf("events", 4096)


@bpf.bss
class st:
    missing: u32
    deleted: s64


@bpf.socket_filter
def tally(data, n) -> u64:
    if n < 4:
        return 0
    key = ptr[u32](data)[0]
    slot = counts.lookup(key & 7)
    if slot:
        slot[0] += 1
    p = pairs.lookup(key)
    if not p:
        st.missing += 1
        fresh = stack(Pair)
        fresh.count = 1
        pairs.update(key, fresh)
    else:
        p.count += 1
        p.last = key
    if key == 99:
        st.deleted = pairs.delete(key)
    events.output(data, 4)
    last = counts.lookup(key & 7)
    if last:
        return last[0]
    return 0


def _run(run, keys):
    return [run((k).to_bytes(4, "little")) for k in keys]


def test_maps_same_contents_both_ways():
    keys = [1, 9, 1, 3, 99, 99, 17]
    snapshots = {}
    for mode in ("app", "jit", "interp"):
        for m in (counts, pairs):
            m.close()                       # fresh maps per run
        events.close()
        st.missing = 0
        st.deleted = 0
        if mode == "app":
            rets = _run(tally.run_in_app, keys)
        else:
            with tally.loaded(mode) as run:
                rets = _run(run, keys)
        arr = [counts.map.lookup_int(i) for i in range(8)]
        hashed = {int.from_bytes(k, "little"): Pair.from_buffer_copy(v).count
                  for k, v in pairs.map.items()}
        rb = _maps.RingBuffer(events.map)
        records = rb.records()
        rb.close()
        snapshots[mode] = (rets, arr, hashed, st.values(), records)
    assert snapshots["app"] == snapshots["jit"] == snapshots["interp"]
    rets, arr, hashed, vals, records = snapshots["app"]
    assert arr[1] == 4 and arr[3] == 3       # 1, 9, 1, 17 share slot 1; 3, 99, 99 slot 3
    assert hashed == {1: 2, 9: 1, 3: 1, 17: 1}    # 99 is deleted each time
    assert vals["missing"] == 6 and vals["deleted"] == 0
    assert rets == [1, 2, 3, 1, 2, 3, 4]
    assert [int.from_bytes(r, "little") for r in records] == keys


def test_unchecked_lookup_is_refused_at_its_line():
    bpf2 = Module("maps_bad")
    m = bpf2.array_map("m", u32, u64, 4)

    @bpf2.bss
    class g:
        a: u64
        b: u64

    @bpf2.socket_filter
    def prog(data, n) -> u64:
        g.b += 1                          # a global at a non-zero offset first
        return m.lookup(n)[0]             # NULL not ruled out (a constant key would)

    import inspect
    import pytest
    from uringbpf.lang import LangVerifierError
    with pytest.raises(LangVerifierError, match="map_value_or_null") as ei:
        prog.run(b"x")
    lines, first = inspect.getsourcelines(prog.fn)
    assert ei.value.line == first + next(i for i, l in enumerate(lines) if "m.lookup(n)" in l)


def test_arena_pages_same_both_ways():
    bpf3 = Module("arena_test")
    arena = bpf3.arena("arena", 4)

    @bpf3.bss
    class a_st:
        ok: u32

    @bpf3.socket_filter
    def fill(data, n) -> u64:
        a = arena.alloc_pages(1)          # arena_ptr[u8]: tested before the cast (the
        if not a:                         # cast keeps the low 32 bits, 0 on the first page)
            return 1
        p = ptr[u64](a)
        p[0] = 0xFEED
        p[1] = p[0] + 1
        a_st.ok = 1
        return 0

    seen = {}
    for mode in ("app", "jit", "interp"):
        arena.close()
        a_st.ok = 0
        ret = fill.run_in_app(b"") if mode == "app" else fill.run(b"", mode)
        mem = arena.map.memory()
        seen[mode] = (ret, a_st.ok, bytes(mem[:16]))
    assert seen["app"] == seen["jit"] == seen["interp"]
    assert seen["app"] == (0, 1, (0xFEED).to_bytes(8, "little") + (0xFEEE).to_bytes(8, "little"))
