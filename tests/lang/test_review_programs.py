"""Small programs of the kinds a user writes first (loops, nested loops, local functions,
struct fields, signed arithmetic, maps, copies), each run in the application and compiled
on both engines with the same results, data, globals and map contents.  Each one found a
bug when it was written: signed // and % (refused, now Python's floor on both sides),
stack() of a struct whose size is not a multiple of 8 (its tail was left uninitialised),
a signed return value (the compiled run returned r0 unsigned)."""

from __future__ import annotations

import ctypes

import pytest

from uringbpf.lang import LangCompileError, LangVerifierError, Module, bpf_range, copy, ptr, s8, s16, s32, s64, sizeof, stack, u8, u16, u32, u64, zero

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


# --- second batch: control flow and Python idioms ---------------------------------------
import enum  # noqa: E402
import uringbpf.lang as L  # noqa: E402

class Flags(enum.IntEnum):
    A = 1
    B = 4

LIMIT = 10
TABLE = (3, 1, 4, 1, 5)

class Item(ctypes.Structure):
    _fields_ = [("k", ctypes.c_uint32), ("v", ctypes.c_uint32)]

class Bag(ctypes.Structure):
    _fields_ = [("n", ctypes.c_uint32), ("items", Item * 4)]

bpf2 = Module("review_programs_2")

@bpf2.bss
class g2:
    x: u64

@bpf2.function
def fib(n: u32) -> u64:
    a = u64(0)
    b = u64(1)
    for i in range(40):
        if u32(i) >= n:
            break
        t = a + b
        a = b
        b = t
    return a

@bpf2.function
def fill(bag: ptr[Bag], n: u32) -> None:
    bag.n = n
    for i in range(4):
        bag.items[i].k = u32(i)
        bag.items[i].v = u32(i) * n

@bpf2.function
def total(bag: ptr[Bag]) -> u32:
    s = u32(0)
    for i in range(4):
        s += bag.items[i].v
    return s

@bpf2.socket_filter
def q1_fib(data, n) -> u64:
    return fib(u32(n))

@bpf2.socket_filter
def q2_bag(data, n) -> u64:
    bag = stack(Bag)
    fill(bag, u32(n))
    return u64(total(bag))

@bpf2.socket_filter
def q3_range_step(data, n) -> u64:
    t = u64(0)
    for i in range(10, 0, -3):
        t = t * 10 + u64(i)
    for j in range(2, 12, 4):
        t += u64(j)
    return t

@bpf2.socket_filter
def q4_chained(data, n) -> u64:
    r = u64(0)
    if 2 < n < 10:
        r += 1
    if n == 0 or n >= 100:
        r += 2
    return r

@bpf2.socket_filter
def q5_enum(data, n) -> u64:
    f = u32(n) & Flags.B
    if f:
        return u64(Flags.A) + LIMIT
    return u64(LIMIT)

@bpf2.socket_filter
def q6_while_true(data, n) -> u64:
    i = u32(0)
    while True:
        i += 1
        if i > u32(n) or i > 50:
            break
    return u64(i)

@bpf2.socket_filter
def q7_swap(data, n) -> u64:
    a = u32(1)
    b = u32(2)
    a, b = b, a
    return u64(a) * 10 + u64(b)

@bpf2.socket_filter
def q8_early_return(data, n) -> u64:
    d = ptr[u8](data)
    for i in range(32):
        if i >= n:
            return 1000
        if d[i] == 0x78:
            return u64(i)
    return 2000

@bpf2.socket_filter
def q9_range_n(data, n) -> u64:
    t = u64(0)
    m = n
    if m > 20:
        m = u64(20)
    for i in range(m):
        t += u64(i)
    return t

@bpf2.socket_filter
def q10_tuple_index(data, n) -> u64:
    return u64(TABLE[2]) + u64(L.u32(n))

@bpf2.socket_filter
def q11_ternary_neg(data, n) -> s64:
    x = s32(n) - 5
    y = -x if x < 0 else x
    return s64(y) * s64(-1)

@bpf2.socket_filter
def q12_global_rw(data, n) -> u64:
    g2.x = g2.x * 2 + u64(n)
    g2.x |= 1
    g2.x ^= u64(0xF0)
    return g2.x >> 1



PROGRAMS_2 = [q1_fib, q2_bag, q3_range_step, q4_chained, q5_enum, q6_while_true, q7_swap,
              q8_early_return, q9_range_n, q10_tuple_index, q11_ternary_neg, q12_global_rw]


def _observe2(prog, mode: str, data: bytes) -> tuple:
    g2.x = 3
    r = prog.run_in_app(data) if mode == "app" else prog.run(data, mode)
    return int(r), g2.values()


@pytest.mark.parametrize("prog", PROGRAMS_2, ids=lambda p: p.name)
def test_program_same_both_ways_2(prog):
    for data in [b"", b"\x01", b"xhello world 12345678", bytes(range(70))]:
        app = _observe2(prog, "app", data)
        assert app == _observe2(prog, "jit", data) == _observe2(prog, "interp", data), data


def test_known_answers_2():
    assert q7_swap.run(b"", "jit") == 21                 # a, b = b, a swaps
    assert q9_range_n.run(bytes(30), "interp") == sum(range(20))   # no __multi3 exit
    assert q10_tuple_index.run(b"ab", "jit") == 4 + 2
    assert q1_fib.run(bytes(10), "jit") == 55


def test_too_many_arguments_is_a_compile_error_not_an_exit():
    bad = Module("review_six_args")

    @bad.function
    def six(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64) -> u64:
        return a + b + c + d + e + f

    @bad.socket_filter
    def p(data, n) -> u64:
        return six(n, n + 1, n * 2, n ^ 3, n | 4, n & 5)

    with pytest.raises(LangCompileError, match=r"six\(\) takes 6 arguments: a BPF function takes at most 5"):
        bad.compile()


def test_stack_over_512_bytes_is_a_verifier_refusal_not_an_exit():
    bad = Module("review_big_stack")

    @bad.socket_filter
    def p(data, n) -> u64:
        a = stack(u8, 400)
        b = stack(u8, 400)
        a[n & 255] = 1
        b[n & 255] = 2
        return u64(a[3] + b[4])

    with pytest.raises(LangVerifierError) as ei:
        p.run(b"abc", "interp")
    first = p.fn.__code__.co_firstlineno         # the decorator line
    assert ei.value.line in (first + 2, first + 3)  # a = stack(...) or b = stack(...)


def test_chained_and_unpacking_assignment():
    m = Module("review_assign")

    @m.socket_filter
    def p(data, n) -> u64:
        a = b = u64(n)
        c, d = a + 1, b * 2
        c, d = d, c
        return c * 100 + d

    assert p.run_in_app(bytes(3)) == p.run(bytes(3), "jit") == 6 * 100 + 4


def test_bss_set_before_the_first_compile():
    """The application may store into .bss before anything compiled the module: the
    object still has a zero .bss (a non-zero one is an LLVM error that exits the process)
    and both runs start from the stored value."""
    m = Module("review_bss_first")

    @m.bss
    class acc:
        total: u64

    @m.socket_filter
    def add(data, n) -> u64:
        acc.total += n
        return acc.total

    acc.total = 40
    assert add.run(b"ab", "interp") == 42
    acc.total = 40
    assert add.run_in_app(b"ab") == 42


class Big(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint8 * 3000)]


def test_copy_and_zero_over_1024_bytes_compile_and_agree():
    """LLVM's BPF backend expands memcpy/memset of at most 1024 bytes; larger ones were a
    libcall error that exited the process."""
    m = Module("review_big_copy")
    big = m.array_map("big", u32, Big, 2)

    @m.socket_filter
    def p(data, n) -> u64:
        a = big.lookup(0)
        b = big.lookup(1)
        if not a or not b:
            return 0
        a.a[2999] = u8(n)
        a.a[1500] = 7
        copy(b, a, 3000)
        zero(a)
        return u64(b.a[2999]) + u64(b.a[1500]) + u64(a.a[2999])

    seen = []
    for mode in ("app", "jit", "interp"):
        big.close()
        r = p.run_in_app(bytes(9)) if mode == "app" else p.run(bytes(9), mode)
        seen.append((r, bytes(big.map.lookup(1))))
    assert seen[0] == seen[1] == seen[2] and seen[0][0] == 16


def test_llvm_backend_refusals_are_compile_errors_at_their_line():
    m = Module("review_mulov")

    @m.socket_filter
    def p(data, n) -> u64:
        a = u64(n) * 0x100000001
        b = u64(n) + 7
        c = a * b
        if b != 0 and c // b != a:          # LLVM: an i64 multiply-overflow test
            return 1
        return 0

    with pytest.raises(LangCompileError, match="128-bit multiplication") as ei:
        m.compile()
    assert ei.value.line in (p.fn.__code__.co_firstlineno + 4, p.fn.__code__.co_firstlineno + 5)

    m2 = Module("review_kf6")
    k6 = L.Kfunc("k6", u64, (u64,) * 6, None)

    @m2.socket_filter
    def q(data, n) -> u64:
        return k6(n, n, n, n, n, n)

    with pytest.raises(LangCompileError, match="5 at most"):
        m2.compile()


def test_nested_defs_read_the_enclosing_locals_at_call_time():
    m = Module("review_nested")

    @m.socket_filter
    def p(data, n) -> u64:
        d = ptr[u8](data)
        limit = u64(4)

        def byte_at(i: u64) -> u64:
            if i >= n or i >= limit:          # enclosing locals, read when called
                return u64(0)
            return u64(d[i])

        def scaled(x: u64) -> u64:
            return x * 1000

        s = u64(0)
        for i in range(8):
            s += byte_at(u64(i))
        limit = u64(8)
        for i in range(8):
            s += scaled(byte_at(u64(i)))
        return s

    for data in (b"", bytes(4), b"abcdefgh", b"abcdefghijk"):
        assert p.run_in_app(data) == p.run(data, "jit") == p.run(data, "interp")
    assert p.run(b"abcdefgh", "jit") == (97 + 98 + 99 + 100) + 1000 * sum(range(97, 105))


def test_nested_def_takes_and_returns_exactly_its_types():
    m = Module("review_nested_types")

    @m.socket_filter
    def p(data, n) -> u64:
        def h(x: u32) -> u32:
            return x + 1
        return u64(h(n))                      # n is u64: Python would not convert it

    with pytest.raises(LangCompileError, match="x of nested def h is u32; this value is u64") as ei:
        m.compile()
    assert ei.value.line == p.fn.__code__.co_firstlineno + 4


def test_program_without_source_is_a_compile_error():
    """A program defined where inspect finds no source (exec, python -c) is one clear
    compile error, not an OSError from inspect."""
    code = compile("from uringbpf.lang import Module, u64\n"
                   "m = Module('review_nosource')\n"
                   "@m.socket_filter\n"
                   "def p(data, n) -> u64:\n"
                   "    return n\n", "<no-such-file-h7>", "exec")
    ns: dict = {}
    exec(code, ns)      # noqa: S102 - the point of the test
    with pytest.raises(LangCompileError, match="source of p is not available") as ei:
        ns["m"].compile()
    assert ei.value.line == 3


def test_bpf_printk_lines_are_the_same_both_ways():
    m = Module("review_printk")

    @m.socket_filter
    def p(data, n) -> u64:
        L.bpf_printk("n=%d neg=%d", n, s32(n) - 10)
        if n > 2:
            L.bpf_printk("first=%x", ptr[u8](data)[0])
        return u64(L.bpf_printk("plain"))

    lines = {}
    for mode in ("app", "jit", "interp"):
        m.printk.clear()
        rets = [p.run_in_app(d) if mode == "app" else p.run(d, mode) for d in (b"", b"\xab\xcd\xef")]
        lines[mode] = (rets, list(m.printk))
    assert lines["app"] == lines["jit"] == lines["interp"]
    assert lines["app"] == ([6, 6], ["n=0 neg=-10", "plain", "n=3 neg=-7", "first=ab", "plain"])

    bad = Module("review_printk_bad")

    @bad.socket_filter
    def q(data, n) -> u64:
        L.bpf_printk("%d %d %d %d", n, n, n, n)
        return 0

    with pytest.raises(LangCompileError, match="three values at most"):
        bad.compile()


def test_in_and_min_max():
    m = Module("review_in_minmax")
    OPS = (1, 4, 9)

    @m.socket_filter
    def p(data, n) -> u64:
        r = u64(0)
        if n in OPS:
            r += 1
        if u32(n) not in (u32(2), 3, 9):
            r += 10
        lo = min(n, u64(5))
        hi = max(s32(n) - 7, s32(-2), s32(1) - s32(n))
        return r + lo * 1000 + u64(hi + 100) * 100000

    for d in range(12):
        assert p.run_in_app(bytes(d)) == p.run(bytes(d), "jit") == p.run(bytes(d), "interp"), d
    assert p.run(bytes(9), "interp") == 1 + 5 * 1000 + 102 * 100000

    bad = Module("review_min_mixed")

    @bad.socket_filter
    def q(data, n) -> u64:
        return min(n, 64)                # int 64 or u64 n in Python, by value

    with pytest.raises(LangCompileError, match=r"min\(\) of int with u64"):
        bad.compile()


class Pt3(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int32), ("y", ctypes.c_int32), ("hist", ctypes.c_uint16 * 4)]


def test_structure_globals():
    m = Module("review_struct_globals")

    @m.bss
    class st3:
        calls: u32
        pt: Pt3

    @m.data
    class dt3:
        origin: Pt3 = Pt3(3, 4)

    @m.socket_filter
    def p(data, n) -> u64:
        st3.calls += 1
        st3.pt.x += s32(n)
        st3.pt.y = dt3.origin.y * 2
        st3.pt.hist[n & 3] += 1
        q = st3.pt
        q.y += 1
        return u64(st3.pt.x) + u64(st3.pt.y) * 100 + u64(dt3.origin.x) * 10000

    res = {}
    for mode in ("app", "jit", "interp"):
        st3.calls = 0
        st3.pt.x = st3.pt.y = 0
        for i in range(4):
            st3.pt.hist[i] = 0
        rets = [p.run_in_app(bytes(k)) if mode == "app" else p.run(bytes(k), mode) for k in (1, 2, 5)]
        res[mode] = (rets, st3.values(), dt3.values())
    assert res["app"] == res["jit"] == res["interp"]
    assert res["app"][0] == [30901, 30903, 30908]
    assert Pt3.from_buffer_copy(res["app"][1]["pt"]).hist[1] == 2
    with pytest.raises(TypeError, match="is a structure: assign its fields"):
        st3.pt = Pt3()


def test_int_and_abs():
    m = Module("review_int_abs")

    @m.socket_filter
    def p(data, n) -> s64:
        a = s32(n) - 5
        b = int(a) * 3 + int(u32(n))          # plain ints: 64-bit signed once compiled
        c = abs(a) + abs(s32(-2147483647) - s32(n & 1))   # keeps s32, wraps at INT_MIN
        d = abs(s8(-128))
        return s64(b) * 1000 + s64(c) + s64(d) * 1000000

    for k in (0, 3, 9):
        assert p.run_in_app(bytes(k)) == p.run(bytes(k), "jit") == p.run(bytes(k), "interp"), k
    assert p.run(bytes(0), "jit") == -15 * 1000 + (5 + 2147483647 - 2 ** 32) - 128 * 1000000


def test_null_tests_agree_and_is_none_is_refused():
    """A function returning a NULL pointer: `if not p` / `p == None` agree in both runs;
    `p is None` would not (a NULL pointer is an object in the application) and is refused."""
    m = Module("review_null")

    @m.function
    def find(d: ptr[u8], n: u64, c: u8) -> ptr[u8]:
        for i in range(32):
            if u64(i) >= n:
                break
            if d[i] == c:
                return d + i
        return None

    @m.socket_filter
    def p(data, n) -> u64:
        q = find(ptr[u8](data), n, 0x61)
        r = u64(0)
        if q != None:  # noqa: E711
            r += 1
        if not q:
            r += 10
        return r

    for d in (b"", b"xa", b"zzzz"):
        assert p.run_in_app(d) == p.run(d, "jit") == p.run(d, "interp"), d
    assert [p.run(d, "jit") for d in (b"", b"xa")] == [10, 1]

    bad = Module("review_is_none")

    @bad.socket_filter
    def q(data, n) -> u64:
        x = ptr[u8](data)
        if x is None:
            return 1
        return 0

    with pytest.raises(LangCompileError, match="is None"):
        bad.compile()
