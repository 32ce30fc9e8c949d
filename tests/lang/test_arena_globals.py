"""``__arena`` globals in Python-written programs (``@bpf.arena_globals``): C's
``int __arena counter;`` (section ``.addr_space.1``, LLVM address space 1), placed in the
arena's last pages as the loader (and libbpf since Dec 2025) places them; the same memory
and the same addresses in the application run and in the compiled run on both engines."""

from __future__ import annotations

import ctypes

import pytest

from uringbpf import BpfObject
from uringbpf.bpf import isa
from uringbpf.bpf import maps as _maps
from uringbpf.lang import LangCompileError, Module, arena_ptr, array, ptr, s64, u32, u64

PAGES = 4


class Node(ctypes.Structure):
    _fields_ = [("val", ctypes.c_uint64), ("next", ctypes.c_uint64)]


bpf = Module("arena_globals_test")
arena = bpf.arena("arena", PAGES)


@bpf.arena_globals
class ag:
    counter: u64 = 5          # C: __u64 __arena counter = 5;
    pages: u64                # an arena address: the pages the program allocated
    table: array(u32, 8)
    last: Node


@bpf.bss
class out:
    got: u64                  # the global's own address as the program sees it


@bpf.socket_filter
def bump(data, length) -> s64:
    ag.counter += u64(length) + 1
    ag.table[length & 7] = u32(ag.counter)
    out.got = u64(ag.table)
    return s64(ag.counter)


@bpf.socket_filter
def grab(data, length) -> s64:
    """Allocate pages until the arena is full; keep the first in an arena global."""
    p = arena.alloc_pages(1)
    if not p:
        return -1
    ag.pages = u64(p)
    nodes = arena_ptr[Node](p)
    nodes[0].val = u64(length)
    nodes[0].next = ag.pages
    ag.last.val = nodes[0].val + 1
    n = s64(1)
    for i in range(8):
        if not arena.alloc_pages(1):
            break
        n += 1
    return n


def _state() -> tuple:
    m = arena.map
    return (ag.values(), m.value_addr, bytes(m.memory()[:PAGES * 4096]))


def _run(prog, mode: str, data: bytes) -> tuple:
    arena.close()                           # a fresh arena: the globals' initial values
    ret = prog.run_in_app(data) if mode == "app" else prog.run(data, mode)
    vals, base, mem = _state()
    vals = dict(vals)
    if vals["pages"]:
        vals["pages"] -= base               # each run has its own arena address
    node = Node.from_buffer_copy(mem[:16])
    if node.next:
        node.next -= base                   # (the same holds for arena addresses stored)
    # the globals' page holds an absolute address too: compared as vals
    mem = bytes(node) + mem[16:(PAGES - 1) * 4096]
    return ret, vals, mem, out.got - base if out.got else 0


MODES = ("app", "jit", "interp")


@pytest.mark.parametrize("n", [0, 3, 9])
def test_counter_same_both_ways(n):
    runs = {m: _run(bump, m, bytes(n)) for m in MODES}
    assert runs["app"][:2] == runs["jit"][:2] == runs["interp"][:2]
    assert runs["app"][3] == runs["jit"][3] == runs["interp"][3]
    ret, vals, mem, got = runs["app"]
    assert ret == vals["counter"] == 5 + n + 1
    assert vals["table"][n & 7] == 5 + n + 1
    # the globals are the arena's last page: counter first, table after it
    last = (PAGES - 1) * 4096
    assert int.from_bytes(arena.map.memory()[last:last + 8], "little") == 5 + n + 1
    assert got == last + 16


def test_counter_persists_across_runs_and_app_writes():
    arena.close()
    ag.counter = 100                        # the application writes the arena itself
    assert bump.run_in_app(b"") == 101
    assert bump.run(b"ab", "jit") == 104
    assert bump.run(b"", "interp") == 105
    assert bump.run_in_app(b"") == 106
    assert ag.counter == 106
    m = arena.map
    assert int.from_bytes(m.memory()[(PAGES - 1) * 4096:][:8], "little") == 106


@pytest.mark.parametrize("n", [1, 7])
def test_global_holds_allocated_pages_same_both_ways(n):
    runs = {m: _run(grab, m, bytes(n)) for m in MODES}
    assert runs["app"][:3] == runs["jit"][:3] == runs["interp"][:3]
    ret, vals, mem, _ = runs["app"]
    # the globals' page is never handed out: PAGES - 1 pages for the program
    assert ret == PAGES - 1
    assert vals["pages"] == 0               # first fit: the arena's first page
    node = Node.from_buffer_copy(mem[:16])
    assert node.val == n and node.next == 0     # the page's own offset in the arena
    assert Node.from_buffer_copy(vals["last"]).val == n + 1


def test_object_has_clangs_arena_section():
    """What clang emits for ``__arena`` globals: the variables in ``.addr_space.1`` (address
    space 1 in the IR), referenced by lddw and cast as(1) -> as(0) before each access."""
    c = bpf.compile()
    assert '@counter = dso_local addrspace(1) global i64 5, section ".addr_space.1"' in c.ir
    obj = BpfObject.from_bytes(c.elf, "arena_globals_test.bpf.o")
    try:
        g = obj.datasec(".addr_space.1")
        assert g.map is obj.maps["arena"]
        assert g.address_of("counter") == obj.maps["arena"].value_addr + (PAGES - 1) * 4096
        assert g.counter == 5
        insns = obj.programs["bump"].program.insns
        assert any(isa.is_addr_space_cast(i) and i.imm == 1 for i in insns)
        # the same addresses in the application's view
        for name in ("counter", "pages", "table", "last"):
            assert (g.address_of(name) - obj.maps["arena"].value_addr
                    == ag.arena_offset + ag._fields[name][1])
    finally:
        obj.close()


def test_arena_array_is_an_arena_pointer():
    bad = Module("arena_glob_mix")
    ar = bad.arena("ar", 1)

    @bad.arena_globals
    class g:
        t: array(u64, 4)

    @bad.socket_filter
    def f(data, n) -> u64:
        q = ptr[u64](data)
        q = g.t                             # an arena pointer into a plain pointer local
        return 0

    with pytest.raises(LangCompileError, match=r"test_arena_globals.py:\d+: .*arena_ptr\[u64\]"):
        bad.compile()


def test_misuse_refused_with_file_and_line():
    noarena = Module("no_arena")
    with pytest.raises(LangCompileError, match=r"test_arena_globals.py:\d+: .*exactly one arena"):
        @noarena.arena_globals
        class g1:
            x: u64

    small = Module("small_arena")
    small.arena("ar", 1)
    with pytest.raises(LangCompileError, match=r"test_arena_globals.py:\d+: .*do not fit.*E2BIG"):
        @small.arena_globals
        class g2:
            big: array(u64, 513)

    twice = Module("twice")
    twice.arena("ar", 2)

    @twice.arena_globals
    class g3:
        x: u64
    with pytest.raises(LangCompileError, match=r"test_arena_globals.py:\d+: .*one class"):
        @twice.arena_globals
        class g4:
            y: u64


def test_second_arena_after_the_globals_is_refused_at_compile():
    two = Module("two_arenas")
    two.arena("a1", 2)

    @two.arena_globals
    class g5:
        x: u64

    two.arena("a2", 2)

    @two.socket_filter
    def f(data, n) -> u64:
        g5.x += 1
        return g5.x

    with pytest.raises(LangCompileError, match=r"test_arena_globals.py:\d+: .*2 arenas"):
        two.compile()


def test_reuse_map_carries_the_arena_globals():
    """``BpfObject.reuse_map`` of the arena holding ``.addr_space.1``: the globals' pages of
    the reused arena are taken and hold the object's values, and the section follows."""
    obj = BpfObject.from_bytes(bpf.compile().elf, "arena_globals_test.bpf.o")
    other = _maps.Map("arena", _maps.MAP_TYPE_ARENA, 0, 0, PAGES, _maps.BPF_F_MMAPABLE)
    try:
        obj.reuse_map("arena", other)
        g = obj.datasec(".addr_space.1")
        assert g.map is other and g.counter == 5
        assert g.address_of("counter") == other.value_addr + (PAGES - 1) * 4096
        assert other.arena_alloc_pages(PAGES) == 0              # the last page is taken
        assert other.arena_alloc_pages(PAGES - 1) == other.value_addr
    finally:
        obj.close()
        other.close()


big = Module("arena_big_globals")
big_arena = big.arena("arena", 5)


@big.arena_globals
class bg:
    head: u32 = 9
    words: array(u64, 600)       # 4808 bytes in all: the arena's last two pages
    tail: u32


@big.socket_filter
def fill(data, length) -> s64:
    bg.words[599] = u64(bg.head) + length
    bg.tail = u32(bg.words[599]) + 1
    n = s64(0)
    for i in range(8):           # what is left for the program: 3 pages
        if not big_arena.alloc_pages(1):
            break
        n += 1
    return n


@pytest.mark.parametrize("mode", MODES)
def test_globals_over_two_pages(mode):
    big_arena.close()
    ret = fill.run_in_app(b"abc") if mode == "app" else fill.run(b"abc", mode)
    assert ret == 3
    assert bg.words[599] == 12 and bg.tail == 13 and bg.head == 9
    m = big_arena.map
    start = 3 * 4096                                       # 5 pages, globals in the last 2
    assert bg.arena_offset == start and bg.arena_pages == 2
    assert int.from_bytes(m.memory()[start:start + 4], "little") == 9
    c = big.compile()
    obj = BpfObject.from_bytes(c.elf, "big.bpf.o")
    try:
        g = obj.datasec(".addr_space.1")
        for name, (_kind, off) in bg._fields.items():
            assert g.address_of(name) - obj.maps["arena"].value_addr == start + off
    finally:
        obj.close()


lst = Module("arena_global_list")
lst_arena = lst.arena("arena", 6)


@lst.arena_globals
class lg:
    head: arena_ptr[Node]     # C: struct node __arena * __arena head;
    count: u32


@lst.socket_filter
def push_one(data, length) -> s64:
    """Push a node on a page of its own onto the list ``lg.head``; return the values' sum."""
    page = lst_arena.alloc_pages(1)
    if not page:
        return -1
    n = arena_ptr[Node](page)
    n.val = u64(length)
    n.next = u64(lg.head)
    lg.head = n
    lg.count += 1
    total = s64(0)
    cur = lg.head
    for i in range(8):
        if not cur:
            break
        total += s64(cur.val)
        cur = arena_ptr[Node](cur.next)
    return total


@pytest.mark.parametrize("mode", MODES)
def test_arena_pointer_global_same_both_ways(mode):
    lst_arena.close()
    rets = [push_one.run_in_app(bytes(k)) if mode == "app" else push_one.run(bytes(k), mode)
            for k in (3, 4, 5, 6, 7, 8)]
    # five pages for nodes (the sixth holds the globals), then NULL from alloc_pages
    assert rets == [3, 7, 12, 18, 25, -1]
    m = lst_arena.map
    assert lg.count == 5
    head = lg.head                            # read from Python: an arena pointer
    assert int(head) == m.value_addr + 4 * 4096 and head.val == 7
    assert lg.values() == {"head": m.value_addr + 4 * 4096, "count": 5}
    vals, addr = [], int(head)
    while addr:
        node = Node.from_buffer_copy(m.memory()[addr - m.value_addr:][:16])
        vals.append(node.val)
        addr = node.next
    assert vals == [7, 6, 5, 4, 3]


def test_application_sets_an_arena_pointer_global():
    lst_arena.close()
    assert push_one.run(b"ab", "jit") == 2
    lg.head = 0                               # the application empties the list
    assert push_one.run_in_app(b"abc") == 3
    lg.head = lst_arena.map.value_addr        # back to the first node, as an address
    assert push_one.run(b"abcd", "interp") == 4 + 2
    with pytest.raises(TypeError, match="arena pointer"):
        lg.head = ptr[u64](lg.head)           # a plain pointer: not an arena address


def test_arena_pointer_field_misuse():
    m = Module("arena_ptr_misuse")
    m.arena("ar", 2)
    with pytest.raises(LangCompileError, match=r"test_arena_globals.py:\d+: .*starts NULL"):
        @m.arena_globals
        class g6:
            p: arena_ptr[u64] = 5
    with pytest.raises(LangCompileError, match=r"test_arena_globals.py:\d+: .*arena_ptr\[T\], not"):
        @m.bss
        class g7:
            p: arena_ptr[u64]          # only arena globals hold arena pointers
