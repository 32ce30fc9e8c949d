"""Small programs of the kinds a user writes first (loops, nested loops, local functions,
struct fields, signed arithmetic, maps, copies), each run in the application and compiled
on both engines with the same results, data, globals and map contents.  Each one found a
bug when it was written: signed // and % (refused, now Python's floor on both sides),
stack() of a struct whose size is not a multiple of 8 (its tail was left uninitialised),
a signed return value (the compiled run returned r0 unsigned)."""

from __future__ import annotations

import ctypes

import pytest

from uringbpf.lang import Module, bpf_range, copy, ptr, s8, s16, s32, s64, sizeof, stack, u8, u16, u32, u64, zero

class Pt(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int32), ("y", ctypes.c_int32), ("tag", ctypes.c_uint8), ("arr", ctypes.c_uint16 * 4)]

class Outer(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint64), ("p", Pt), ("b", ctypes.c_uint8)]

bpf = Module("review_programs")
cnt = bpf.array_map("cnt", u32, u64, 4)
h = bpf.hash_map("h", u64, Pt, 8)

@bpf.bss
class g:
    calls: u64
    last: s32
    arr: u32  # plain

@bpf.rodata
class k:
    mult: u32 = 3

@bpf.function
def sq(x: u32) -> u32:
    return x * x

@bpf.function
def clamp(x: s32, lo: s32, hi: s32) -> s32:
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x

@bpf.socket_filter
def p1_sum_bytes(data, n) -> u64:
    s = u64(0)
    for i in range(64):
        if i >= n:
            break
        s += ptr[u8](data)[i]
    return s

@bpf.socket_filter
def p2_while(data, n) -> u64:
    i = u32(0)
    acc = u32(1)
    while i < 10:
        acc = acc * k.mult + u32(i)
        i += 1
        if acc > 100000:
            continue
    return u64(acc)

@bpf.socket_filter
def p3_subprog(data, n) -> s64:
    r = s32(0)
    for i in range(8):
        r += clamp(s32(sq(u32(i))) - 10, -5, 20)
    g.last = r
    return s64(r)

@bpf.socket_filter
def p4_struct(data, n) -> u64:
    p = stack(Outer)
    p.a = 5
    p.p.x = -3
    p.p.y = 7
    p.p.tag = 255
    p.p.tag += 1
    p.p.arr[2] = 65535
    p.p.arr[2] += 2
    p.b = u8(n)
    return u64(p.p.x + p.p.y) + p.a + u64(p.p.tag) + u64(p.p.arr[2]) + u64(p.b)

@bpf.socket_filter
def p5_signed(data, n) -> s64:
    a = s8(-128)
    a -= 1
    b = s16(n) * s16(-300)
    c = s32(-7) // s32(2)
    d = s32(-7) % s32(2)
    e = u32(7) >> 1
    f = s32(-8) >> 1
    return s64(a) + s64(b) * 1000 + s64(c) * 100 + s64(d) * 10 + s64(e) + s64(f)

@bpf.socket_filter
def p6_maps(data, n) -> u64:
    g.calls += 1
    key = u32(n & 3)
    v = cnt.lookup(key)
    if v:
        v[0] += u64(n)
    pt = stack(Pt)
    pt.x = s32(n)
    h.update(u64(n), pt)
    q = h.lookup(u64(n))
    if not q:
        return 999
    return u64(q.x) + g.calls

@bpf.socket_filter
def p7_nested_loops(data, n) -> u64:
    t = u64(0)
    for i in range(5):
        for j in range(5):
            if j > i:
                break
            if (i + j) % 2 == 0:
                continue
            t += u64(i * 10 + j)
    return t

@bpf.socket_filter
def p8_bool_logic(data, n) -> u64:
    a = n > 3
    b = n < 10
    r = u64(0)
    if a and b:
        r += 1
    if a or not b:
        r += 10
    if not (a and b):
        r += 100
    x = u64(5) if n > 4 else u64(6)
    return r + x * 1000

@bpf.socket_filter
def p9_write_data(data, n) -> u64:
    d = ptr[u8](data)
    for i in range(16):
        if i >= n:
            break
        d[i] = d[i] ^ 0xFF
    return 0

@bpf.socket_filter
def p10_bpf_range(data, n) -> u64:
    t = u64(0)
    for i in bpf_range(0, 20):
        t += u64(i)
    return t

@bpf.socket_filter
def p11_overflow(data, n) -> u64:
    a = u8(250)
    a += u8(10)
    b = u16(0) - 1
    c = u32(1) << 31
    c <<= 1
    d = u64(0xFFFFFFFFFFFFFFFF) + 2
    return u64(a) + u64(b) + u64(c) + d

@bpf.socket_filter
def p12_copy_zero(data, n) -> u64:
    a = stack(Pt)
    a.x = 11
    a.arr[3] = 9
    b = stack(Pt)
    copy(b, a, sizeof(Pt))
    zero(a)
    return u64(b.x) + u64(b.arr[3]) + u64(a.x)


@bpf.socket_filter
def p13_divmod(data, n) -> s64:
    """Python's floor // and %, the wrap of INT_MIN // -1, BPF's x // 0 and x % 0."""
    a = s32(n) - 7
    b = s32(3) - s32(n)
    t = s64(a // 2) * 1000000 + s64(a % 2) * 100000 + s64(b // -2) * 1000 + s64(b % -2)
    lo = s32(-2147483647) - s32(n & 1) - 1
    t += s64(lo // s32(-1)) + s64(lo % s32(-1))
    z = s32(n) - s32(n)
    t += s64(a // z) * 7 + s64(a % z) * 11
    big = s64(n) * -1000000007
    return t + big // 12345 + big % 12345 + s64(s8(-128) // s8(-1))


PROGRAMS = [p1_sum_bytes, p2_while, p3_subprog, p4_struct, p5_signed, p6_maps, p7_nested_loops,
            p8_bool_logic, p9_write_data, p10_bpf_range, p11_overflow, p12_copy_zero, p13_divmod]
INPUTS = [b"", b"\x01", b"abcd", bytes(range(70))]


def _observe(prog, mode: str, data: bytes) -> tuple:
    cnt.close()
    h.close()
    g.calls = 0
    g.last = 0
    r = prog.run_in_app(data) if mode == "app" else prog.run(data, mode)
    return (int(r), prog.last_data, g.values(), [cnt.map.lookup_int(i) for i in range(4)],
            sorted((bytes(k), bytes(v)) for k, v in h.map.items()))


@pytest.mark.parametrize("prog", PROGRAMS, ids=lambda p: p.name)
def test_program_same_both_ways(prog):
    for data in INPUTS:
        app = _observe(prog, "app", data)
        assert app == _observe(prog, "jit", data) == _observe(prog, "interp", data), data


def test_known_answers():
    assert p5_signed.run_in_app(bytes(70)) == 127 - 21000 * 1000 - 400 + 10 + 3 - 4
    assert p13_divmod.run(bytes(3), "interp") == p13_divmod.run_in_app(bytes(3))
    assert p6_maps.run(b"ab", "jit") == 3         # the struct's zeroed tail made it verifiable
