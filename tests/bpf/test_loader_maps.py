"""Native maps, the base helpers, the ring buffer and the arena; from Python and from programs."""

from __future__ import annotations

import ctypes
import errno
import re
import struct

import pytest

from uringbpf.bpf import base_helpers, helpers, isa, maps
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.maps import Map, MapError, RingBuffer
from uringbpf.bpf.memory import AddressSpace, BpfMemoryError, BpfRuntimeError
from uringbpf.bpf.object import BpfObject
from uringbpf.bpf.cc import include_dir

from test_loader_support import build

ENGINES = ("interp", "jit")
U64 = isa.U64


def neg(e):
    return (-e) & U64


# --- the helper table -----------------------------------------------------------------

def test_helper_ids_match_kernel_and_headers():
    expected = {1: "bpf_map_lookup_elem", 2: "bpf_map_update_elem", 3: "bpf_map_delete_elem",
                5: "bpf_ktime_get_ns", 6: "bpf_trace_printk", 7: "bpf_get_prandom_u32",
                93: "bpf_spin_lock", 94: "bpf_spin_unlock", 112: "bpf_probe_read_user",
                113: "bpf_probe_read_kernel", 130: "bpf_ringbuf_output", 131: "bpf_ringbuf_reserve",
                132: "bpf_ringbuf_submit", 133: "bpf_ringbuf_discard", 148: "bpf_copy_from_user",
                181: "bpf_loop"}
    for hid, name in expected.items():
        assert helpers.get_helper(hid).name == name
    # every declaration in bpf_helper_defs.h names the helper registered under its id
    text = (include_dir() / "bpf" / "bpf_helper_defs.h").read_text()
    decls = re.findall(r"\(\* const (\w+)\)\(.*\) = \(void \*\) (\d+);", text)
    assert len(decls) > 20
    for name, hid in decls:
        assert helpers.get_helper(int(hid)).name == name, name
    assert helpers.get_helper(148).proto.sleepable_only
    assert helpers.get_helper(1).native == ("maps", "ubpf_helper_map_lookup_elem")
    assert helpers.get_kfunc("bpf_arena_alloc_pages") is not None


# --- maps from Python -------------------------------------------------------------------

def test_array_map():
    m = Map("arr", maps.MAP_TYPE_ARRAY, 4, 12, 4)
    try:
        assert len(m) == 4 and m.lookup(0) == bytes(12)
        m.update(1, b"abcdefghijkl")
        assert m[1] == b"abcdefghijkl"
        with pytest.raises(MapError) as e:
            m.update(4, bytes(12))
        assert e.value.errno == errno.E2BIG
        with pytest.raises(MapError) as e:
            m.update(0, bytes(12), maps.BPF_NOEXIST)
        assert e.value.errno == errno.EEXIST
        with pytest.raises(MapError) as e:
            m.delete(0)
        assert e.value.errno == errno.EINVAL
        with pytest.raises(MapError) as e:
            m.update(0, bytes(12), 99)
        assert e.value.errno == errno.EINVAL
        assert m.lookup(9) is None
        assert [int.from_bytes(k, "little") for k in m.keys()] == [0, 1, 2, 3]
        with pytest.raises(ValueError, match="12 bytes"):
            m.update(0, b"short")
        # zero-copy: the value address is what a program gets from lookup
        addr = m.value_address(1)
        assert addr == m.value_addr + m.value_stride
        assert ctypes.string_at(addr, 3) == b"abc"
    finally:
        m.close()
    with pytest.raises(MapError):
        m.lookup(0)


def test_hash_map_semantics_and_iteration():
    m = Map("h", maps.MAP_TYPE_HASH, 8, 8, 32)
    try:
        for i in range(32):
            m.update(i * 1000, i)
        assert len(m) == 32
        with pytest.raises(MapError) as e:
            m.update(123456, 1)
        assert e.value.errno == errno.E2BIG
        with pytest.raises(MapError) as e:
            m.update(5000, 1, maps.BPF_NOEXIST)
        assert e.value.errno == errno.EEXIST
        with pytest.raises(MapError) as e:
            m.update(7, 1, maps.BPF_EXIST)
        assert e.value.errno == errno.ENOENT
        m.update(5000, 55, maps.BPF_EXIST)
        assert m.lookup_int(5000) == 55
        for i in range(0, 32, 2):
            del m[i * 1000]
        with pytest.raises(KeyError):
            del m[0]
        keys = sorted(int.from_bytes(k, "little") for k in m.keys())
        assert keys == [i * 1000 for i in range(1, 32, 2)]
        assert len(m) == 16 and dict(m.items())[(3000).to_bytes(8, "little")] == (3).to_bytes(8, "little")
        m.update(2, 2)           # freed slots are reused
        assert 2 in m and len(m) == 17
    finally:
        m.close()


def test_percpu_maps_have_one_cpu():
    m = Map("pc", maps.MAP_TYPE_PERCPU_HASH, 4, 4, 8)
    try:
        m.update(1, 10)
        assert m.lookup_percpu(1) == [(10).to_bytes(4, "little")]
        m.update(2, [7])
        assert m.lookup_int(2) == 7
        with pytest.raises(ValueError, match="1 entry"):
            m.update(2, [1, 2])
        k = ctypes.c_uint32(1)
        assert maps.call_native("map_lookup_percpu_elem", m.addr, ctypes.addressof(k), 0) == m.value_address(1)
        assert maps.call_native("map_lookup_percpu_elem", m.addr, ctypes.addressof(k), 1) == 0
    finally:
        m.close()


def test_map_creation_errors():
    with pytest.raises(MapError) as e:
        Map("bad", maps.MAP_TYPE_ARRAY, 8, 8, 4)    # array keys are u32
    assert e.value.errno == errno.EINVAL
    with pytest.raises(MapError) as e:
        Map("rb", maps.MAP_TYPE_RINGBUF, 0, 0, 5000)  # not a power-of-2 multiple of a page
    assert e.value.errno == errno.EINVAL
    with pytest.raises(MapError, match="not supported") as e:
        Map("lpm", 11, 8, 8, 8)
    assert e.value.errno == errno.EOPNOTSUPP


# --- ring buffer ----------------------------------------------------------------------

def test_ringbuf_wraps_records_contiguously():
    rb = Map("rb", maps.MAP_TYPE_RINGBUF, 0, 0, 4096)
    try:
        consumer = RingBuffer(rb)
        seen = []
        for round_ in range(40):  # 40 x ~1 KiB through a 4 KiB ring: wraps many times
            payload = bytes([round_]) * (1000 + round_)
            rec = maps.call_native("ringbuf_reserve", rb.addr, len(payload), 0)
            assert rec
            ctypes.memmove(rec, payload, len(payload))
            maps.call_native("ringbuf_submit", rec, 0)
            seen += consumer.records()
        assert seen == [bytes([r]) * (1000 + r) for r in range(40)]
        # full ring: reserve fails until the consumer catches up
        recs = []
        while True:
            rec = maps.call_native("ringbuf_reserve", rb.addr, 1000, 0)
            if not rec:
                break
            recs.append(rec)
        assert len(recs) == 4096 // 1008
        assert maps.call_native("ringbuf_output", rb.addr, recs[0], 100, 0) == neg(errno.EAGAIN)
        # a busy (unsubmitted) record blocks the consumer, a discarded one is skipped
        assert consumer.consume() == 0
        maps.call_native("ringbuf_discard", recs[0], 0)
        for r in recs[1:]:
            ctypes.memset(r, 7, 1000)
            maps.call_native("ringbuf_submit", r, 0)
        got = consumer.records()
        assert got == [b"\x07" * 1000] * (len(recs) - 1)
        assert maps.call_native("ringbuf_query", rb.addr, 0) == 0      # BPF_RB_AVAIL_DATA
        assert maps.call_native("ringbuf_query", rb.addr, 1) == 4096   # BPF_RB_RING_SIZE
        assert maps.call_native("ringbuf_reserve", rb.addr, 8, 1) == 0  # flags must be 0
    finally:
        rb.close()


def test_ringbuf_callback_stops_consumption():
    rb = Map("rb", maps.MAP_TYPE_RINGBUF, 0, 0, 4096)
    try:
        for i in range(3):
            data = ctypes.c_uint64(i)
            assert maps.call_native("ringbuf_output", rb.addr, ctypes.addressof(data), 8, 0) == 0
        got = []
        ring = RingBuffer(rb, lambda d: got.append(d) or (7 if len(got) == 2 else 0))
        assert ring.consume() == 7
        assert ring.poll(0) == 1 and len(got) == 3
        assert ring.poll(0) == 0
    finally:
        rb.close()


# --- arena ----------------------------------------------------------------------------

def test_arena_pages_shared_with_python():
    ar = Map("ar", maps.MAP_TYPE_ARENA, 0, 0, 4, maps.BPF_F_MMAPABLE)
    try:
        base = ar.value_addr
        assert base % (1 << 32) == 0
        p1 = ar.arena_alloc_pages(2)
        p2 = ar.arena_alloc_pages(1)
        assert p1 == base and p2 == base + 2 * maps.PAGE_SIZE
        assert ar.arena_alloc_pages(2) == 0              # only one page left
        mem = ar.memory()
        ctypes.c_uint64.from_address(p2).value = 0xABCD
        assert struct.unpack_from("<Q", mem, 2 * maps.PAGE_SIZE)[0] == 0xABCD
        ar.arena_free_pages(p2)
        assert ar.arena_alloc_pages(1, addr=p2) == p2    # fixed-address allocation
        assert struct.unpack_from("<Q", mem, 2 * maps.PAGE_SIZE)[0] == 0  # freed pages read zero
        # the region engines may touch is the whole window and its guards: every
        # window + u32 + s16 offset (+ 8 bytes) of a PROBE_MEM32 access lies inside
        (reg,) = ar.regions()
        assert ar.arena_window == base
        assert reg.base <= base - 32768 and reg.base + reg.size >= base + (1 << 32) + 32767 + 8
    finally:
        ar.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_arena_program(engine):
    obj = BpfObject.open(build("arena"))
    obj.load(engine=engine)
    assert obj.programs["fill"]() == 0
    arena = obj.maps["arena"]
    assert obj.bss.page_addr == arena.value_addr
    assert struct.unpack_from("<QQ", arena.memory(), 0) == (0xFEED, 0xFEEE)
    obj.close()


# --- helpers through the interpreter implementations ---------------------------------

def _runtime_with(*buffers):
    rt = Runtime(mem=AddressSpace())
    for i, b in enumerate(buffers):
        rt.mem.add(ctypes.addressof(b), ctypes.sizeof(b), True, f"buf{i}")
    return rt


def test_helpers_check_pointers():
    m = Map("a", maps.MAP_TYPE_ARRAY, 4, 8, 2)
    try:
        key = ctypes.c_uint32(1)
        rt = _runtime_with(key)
        lookup = helpers.get_helper(1).impl
        assert lookup(rt, m.addr, ctypes.addressof(key), 0, 0, 0) == m.value_address(1)
        with pytest.raises(BpfRuntimeError, match="is not a map"):
            lookup(rt, 0xDEAD0000, ctypes.addressof(key), 0, 0, 0)
        with pytest.raises(BpfMemoryError):
            lookup(rt, m.addr, 0x10, 0, 0, 0)
        submit = helpers.get_helper(132).impl
        with pytest.raises(BpfMemoryError):
            submit(rt, 0x1000, 0, 0, 0, 0)
    finally:
        m.close()


def test_probe_read_faults_cleanly():
    dst = (ctypes.c_uint8 * 16)(*range(16))
    src = ctypes.create_string_buffer(b"hello world", 16)
    rt = _runtime_with(dst)
    read = helpers.get_helper(113).impl
    assert read(rt, ctypes.addressof(dst), 5, ctypes.addressof(src), 0, 0) == 0
    assert bytes(dst)[:5] == b"hello"
    assert read(rt, ctypes.addressof(dst), 8, 8, 0, 0) == neg(errno.EFAULT)
    assert bytes(dst)[:8] == bytes(8)
    read_str = helpers.get_helper(114).impl
    assert read_str(rt, ctypes.addressof(dst), 16, ctypes.addressof(src), 0, 0) == 12
    assert bytes(dst)[:12] == b"hello world\0"
    assert read_str(rt, ctypes.addressof(dst), 4, ctypes.addressof(src), 0, 0) == 4
    assert bytes(dst)[:4] == b"hel\0"
    with pytest.raises(BpfMemoryError):
        read(rt, 0x40, 8, ctypes.addressof(src), 0, 0)


def test_printk_formatting_and_misc_helpers():
    fmt = ctypes.create_string_buffer(b"a=%d b=%u c=%x %%\n")
    too_many = ctypes.create_string_buffer(b"%d %d %d %d")
    s = ctypes.create_string_buffer(b"str")
    rt = _runtime_with(fmt, too_many)
    printk = helpers.get_helper(6).impl
    n = printk(rt, ctypes.addressof(fmt), ctypes.sizeof(fmt), -1 & U64, -1 & U64, 255)
    assert rt.printk == ["a=-1 b=4294967295 c=ff %"]
    assert n == len(rt.printk[0]) + 1
    assert printk(rt, ctypes.addressof(too_many), ctypes.sizeof(too_many), 1, 2, 3) == neg(errno.EINVAL)
    assert len(rt.printk) == 1
    line = base_helpers.format_printk(rt, b"%lld %s %c %5d|%-4s|", [-(2 ** 40) & U64, ctypes.addressof(s),
                                                                    ord("Z"), 42])
    assert line == f"{-(2 ** 40)} str Z    42|(null)|"
    assert base_helpers.format_printk(rt, b"%s", [8]) == "(efault)"
    t1 = helpers.get_helper(5).impl(rt, 0, 0, 0, 0, 0)
    t2 = helpers.get_helper(5).impl(rt, 0, 0, 0, 0, 0)
    assert 0 < t1 <= t2
    rnd = {helpers.get_helper(7).impl(rt, 0, 0, 0, 0, 0) for _ in range(20)}
    assert len(rnd) > 10 and max(rnd) < 2 ** 32
    loop = helpers.get_helper(181).impl
    assert loop(rt, 4, 0, 0, 1, 0) == neg(errno.EINVAL)
    # the kernel's inlined bpf_loop: 64-bit count, `w0 = -E2BIG` (docs/jit.md, #13 item 6)
    assert loop(rt, (1 << 23) + 1, 0, 0, 0, 0) == neg(errno.E2BIG) & 0xFFFFFFFF
    assert loop(rt, (1 << 32) + 1, 0, 0, 0, 0) == neg(errno.E2BIG) & 0xFFFFFFFF
    calls = []
    cb = ctypes.CFUNCTYPE(ctypes.c_uint64, *[ctypes.c_uint64] * 5)(
        lambda i, ctx, a, b, c: calls.append(i) or (1 if i == 3 else 0))
    assert loop(rt, 10, ctypes.cast(cb, ctypes.c_void_p).value, 0, 0, 0) == 4
    assert calls == [0, 1, 2, 3]
    lock = ctypes.c_uint32(0)
    rt2 = _runtime_with(lock)
    helpers.get_helper(93).impl(rt2, ctypes.addressof(lock), 0, 0, 0, 0)
    assert lock.value == 1
    helpers.get_helper(94).impl(rt2, ctypes.addressof(lock), 0, 0, 0, 0)
    assert lock.value == 0


# --- a program using ring buffer, bpf_loop, spin lock and a per-CPU map ---------------

@pytest.mark.parametrize("engine", ENGINES)
def test_rings_program(engine):
    obj = BpfObject.open(build("rings"))
    obj.load(engine=engine)
    prog = obj.programs["produce"]
    assert prog() == 55 and prog() == 55
    records = RingBuffer(obj.maps["events"]).records()
    decoded = [struct.unpack("<IIQ", r) for r in records]
    assert decoded == [(1, 1, 55), (2, 2, 10), (3, 1, 55), (4, 2, 10)]
    lock, total = struct.unpack("<II", obj.maps["state"].lookup(0))
    assert lock == 0 and total == 10
    assert obj.maps["percpu"].lookup_percpu(0) == [(2).to_bytes(8, "little")]
    obj.close()


# --- a model check of the hash map ---------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_ops = st.lists(st.tuples(st.sampled_from(["update", "delete", "lookup"]),
                          st.integers(0, 40), st.integers(0, 2 ** 32 - 1),
                          st.sampled_from([maps.BPF_ANY, maps.BPF_NOEXIST, maps.BPF_EXIST])),
                max_size=120)


@settings(max_examples=60, deadline=None)
@given(_ops)
def test_hash_map_matches_a_dict_model(ops):
    m = Map("model", maps.MAP_TYPE_HASH, 4, 4, 16)
    model: dict[int, int] = {}
    try:
        for op, key, value, flags in ops:
            if op == "update":
                want = None
                if flags == maps.BPF_NOEXIST and key in model:
                    want = errno.EEXIST
                elif flags == maps.BPF_EXIST and key not in model:
                    want = errno.ENOENT
                elif key not in model and len(model) == 16:
                    want = errno.E2BIG
                try:
                    m.update(key, value, flags)
                    got = None
                except MapError as exc:
                    got = exc.errno
                assert got == want
                if want is None:
                    model[key] = value
            elif op == "delete":
                try:
                    m.delete(key)
                    assert key in model
                    del model[key]
                except MapError as exc:
                    assert exc.errno == errno.ENOENT and key not in model
            else:
                assert m.lookup_int(key) == model.get(key)
            assert len(m) == len(model)
        assert sorted(int.from_bytes(k, "little") for k in m.keys()) == sorted(model)
    finally:
        m.close()


def test_ringbuf_concurrent_producers():
    import threading
    rb = Map("rb", maps.MAP_TYPE_RINGBUF, 0, 0, 1 << 16)
    try:
        got = []
        ring = RingBuffer(rb, got.append)
        per_thread = 2000

        def produce(tag):
            buf = ctypes.c_uint64()
            for i in range(per_thread):
                buf.value = tag << 32 | i
                while maps.call_native("ringbuf_output", rb.addr, ctypes.addressof(buf), 8, 0):
                    pass  # ring full: the consumer below drains it
        threads = [threading.Thread(target=produce, args=(t,)) for t in (1, 2)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads) or ring.consume():
            ring.consume()
        values = [int.from_bytes(r, "little") for r in got]
        assert len(values) == 2 * per_thread
        for tag in (1, 2):
            mine = [v & 0xFFFFFFFF for v in values if v >> 32 == tag]
            assert mine == list(range(per_thread))   # per-producer order is kept
    finally:
        rb.close()


def test_ringbuf_wakeups_follow_kernel_rules():
    import os
    import threading
    rb = Map("rb", maps.MAP_TYPE_RINGBUF, 0, 0, 4096)
    try:
        with RingBuffer(rb) as ring:
            efd = ring.fileno()
            val = ctypes.c_uint64(1)

            def signalled():
                try:
                    os.eventfd_read(efd)
                    return True
                except BlockingIOError:
                    return False

            assert maps.call_native("ringbuf_output", rb.addr, ctypes.addressof(val), 8, 1) == 0
            assert not signalled()                       # BPF_RB_NO_WAKEUP
            assert maps.call_native("ringbuf_output", rb.addr, ctypes.addressof(val), 8, 0) == 0
            assert not signalled()                       # consumer is behind: no wake-up needed
            assert maps.call_native("ringbuf_output", rb.addr, ctypes.addressof(val), 8, 2) == 0
            assert signalled()                           # BPF_RB_FORCE_WAKEUP
            assert ring.consume() == 3
            assert maps.call_native("ringbuf_output", rb.addr, ctypes.addressof(val), 8, 0) == 0
            assert signalled()                           # caught-up consumer is woken
            assert ring.consume() == 1
            # poll() sleeps on the eventfd until a producer thread commits
            got = []

            def later():
                v = ctypes.c_uint64(77)
                maps.call_native("ringbuf_output", rb.addr, ctypes.addressof(v), 8, 0)
            t = threading.Timer(0.05, later)
            t.start()
            ring._rings = [(rb, got.append)]
            assert ring.poll(10_000) == 1
            t.join()
            assert got == [(77).to_bytes(8, "little")]
        assert rb._s.rb_eventfd == -1                    # closing the consumer detaches it
    finally:
        rb.close()


def test_strncmp_and_current_comm():
    a = ctypes.create_string_buffer(b"abcdef", 8)
    b = ctypes.create_string_buffer(b"abcxyz", 8)
    out = ctypes.create_string_buffer(16)
    rt = _runtime_with(a, b, out)
    strncmp = helpers.get_helper(182).impl
    assert strncmp(rt, ctypes.addressof(a), 3, ctypes.addressof(b), 0, 0) == 0
    assert strncmp(rt, ctypes.addressof(a), 4, ctypes.addressof(b), 0, 0) == neg(1)
    assert strncmp(rt, ctypes.addressof(b), 4, ctypes.addressof(a), 0, 0) == 1
    with pytest.raises(BpfMemoryError):
        strncmp(rt, 0x10, 4, ctypes.addressof(a), 0, 0)
    comm = helpers.get_helper(16).impl
    assert comm(rt, ctypes.addressof(out), 16, 0, 0, 0) == 0
    with open("/proc/self/comm", "rb") as f:
        assert out.raw.split(b"\0")[0] == f.read().strip()[:15]


def test_interpreter_side_helpers_refuse_misuse(monkeypatch):
    # records: only reserved ones may be submitted, once
    rb = Map("rb", maps.MAP_TYPE_RINGBUF, 0, 0, 4096)
    try:
        rt = Runtime(mem=AddressSpace(), maps=[rb])
        for r in rb.regions():
            rt.mem.add(r.base, r.size, r.writable, r.name)
        reserve, submit, discard = (helpers.get_helper(i).impl for i in (131, 132, 133))
        rec = reserve(rt, rb.addr, 16, 0, 0, 0)
        assert rec
        with pytest.raises(BpfRuntimeError, match="not a reserved"):
            submit(rt, rec + 8, 0, 0, 0, 0)
        submit(rt, rec, 0, 0, 0, 0)
        with pytest.raises(BpfRuntimeError, match="already submitted"):
            discard(rt, rec, 0, 0, 0, 0)
        assert RingBuffer(rb).records() == [bytes(16)]
    finally:
        rb.close()
    # a lock taken twice is reported, not a hang
    lock = ctypes.c_uint32(0)
    rt = _runtime_with(lock)
    monkeypatch.setattr(base_helpers, "SPIN_LOCK_MAX_SPINS", 1000)
    helpers.get_helper(93).impl(rt, ctypes.addressof(lock), 0, 0, 0, 0)
    with pytest.raises(BpfRuntimeError, match="stays held"):
        helpers.get_helper(93).impl(rt, ctypes.addressof(lock), 0, 0, 0, 0)


def test_bpf_loop_in_interpreter_only_calls_program_functions():
    obj = BpfObject.open(build("rings"))
    obj.load(engine="interp")
    rt = obj.programs["produce"].runtime
    loop = helpers.get_helper(181).impl
    with pytest.raises(BpfRuntimeError, match="not a function of program"):
        loop(rt, 3, 0x1234, 0, 0, 0)
    assert obj.programs["produce"]() == 55
    obj.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_open_coded_iterators(engine):
    obj = BpfObject.open(build("rings"))
    prog = obj.programs["iterate"]
    assert {"bpf_iter_num_new", "bpf_iter_num_next", "bpf_iter_num_destroy"} == set(prog.program.kfuncs)
    obj.load(engine=engine)
    assert prog() == 25 * 100 + 4
    obj.close()
    it = ctypes.c_uint64(0)
    rt = _runtime_with(it)
    new, nxt = helpers.get_kfunc("bpf_iter_num_new").impl, helpers.get_kfunc("bpf_iter_num_next").impl
    assert new(rt, ctypes.addressof(it), 5, 2, 0, 0) == neg(errno.EINVAL)
    assert nxt(rt, ctypes.addressof(it), 0, 0, 0, 0) == 0
    assert new(rt, ctypes.addressof(it), 0, (1 << 23) + 1, 0, 0) == neg(errno.E2BIG)
    assert new(rt, ctypes.addressof(it), -2 & U64, 0, 0, 0) == 0
    p = nxt(rt, ctypes.addressof(it), 0, 0, 0, 0)
    assert p == ctypes.addressof(it) and ctypes.c_int32.from_address(p).value == -2


def test_frozen_map_refuses_updates_natively():
    m = Map("ro", maps.MAP_TYPE_ARRAY, 4, 8, 1, maps.BPF_F_RDONLY_PROG)
    try:
        m.update(0, 5)                    # writable until frozen, like a .rodata before load
        m.freeze()
        key, val = ctypes.c_uint32(0), ctypes.c_uint64(9)
        # the C helper a JIT program would call fails instead of writing a read-only page
        assert maps.call_native("map_update_elem", m.addr, ctypes.addressof(key),
                                ctypes.addressof(val), 0) == neg(errno.EPERM)
        with pytest.raises(MapError) as e:
            m.update(0, 9)
        assert e.value.errno == errno.EPERM
        assert m.lookup_int(0) == 5 and m.memory().readonly
    finally:
        m.close()
