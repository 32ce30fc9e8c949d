"""``__arena`` pointers in Python-written programs (``arena_ptr[T]``): what clang emits for
C's ``T __arena *`` (LLVM address space 1, BPF_ADDR_SPACE_CAST before each access), run in
the application and compiled on both engines with the same arena contents and results."""

from __future__ import annotations

import ctypes

import pytest

from uringbpf import BpfObject
from uringbpf.bpf import isa
from uringbpf.lang import LangCompileError, Module, arena_ptr, ptr, s64, u32, u64


class Node(ctypes.Structure):
    _fields_ = [("val", ctypes.c_uint64), ("next", ctypes.c_uint64)]   # next: an arena address


bpf = Module("arena_lang_test")
arena = bpf.arena("arena", 8)


@bpf.bss
class st:
    head: u64            # the list's first node, an arena address the application reads
    total: u64
    first_low_null: u32  # ptr[T](first page) is NULL to a test: its low 32 bits are 0


@bpf.function
def push(page: arena_ptr[Node], count: u32) -> u64:
    """Link ``count`` nodes laid out in ``page``, each pointing to the previous one."""
    prev = u64(0)
    for i in range(16):
        if i >= count:
            break
        n = page + i
        n.val = u64(i) * 10 + 1
        n.next = prev
        prev = u64(n)
    return prev


@bpf.socket_filter
def build(data, length) -> s64:
    page = arena.alloc_pages(1)
    if not page:
        return -1
    if not ptr[u64](page):
        st.first_low_null = 1
    head = push(arena_ptr[Node](page), u32(length))
    st.head = head
    total = u64(0)
    cur = arena_ptr[Node](head)
    for i in range(16):
        if not cur:
            break
        total += cur.val
        cur = arena_ptr[Node](cur.next)
    st.total = total
    second = arena.alloc_pages(2)           # pages 2-3
    if not second:
        return -2
    words = arena_ptr[u32](second)
    words[1023 + 1] = 7                      # second page of the allocation
    arena.free_pages(second, 2)
    return s64(total)


def _run(mode: str, n: int) -> tuple:
    arena.close()
    st.head = st.total = st.first_low_null = 0
    data = bytes(n)
    ret = build.run_in_app(data) if mode == "app" else build.run(data, mode)
    mem = arena.map.memory()
    base = arena.map.value_addr
    vals = st.values()
    head = vals.pop("head")                  # absolute: each run has a fresh arena
    nodes = (Node * 16).from_buffer_copy(bytes(mem[:16 * 16]))
    # next fields as offsets in the arena, for the same reason
    links = [(nd.val, nd.next - base if nd.next else 0) for nd in nodes]
    return (ret, vals, head - base if head else 0, links)


@pytest.mark.parametrize("n", [0, 1, 5, 16])
def test_arena_list_same_both_ways(n):
    runs = {m: _run(m, n) for m in ("app", "jit", "interp")}
    assert runs["app"] == runs["jit"] == runs["interp"]
    ret, vals, head_off, links = runs["app"]
    assert ret == sum(i * 10 + 1 for i in range(n)) == vals["total"]
    assert head_off == (16 * (n - 1) if n else 0)
    assert links[:n] == [(i * 10 + 1, 16 * (i - 1) if i else 0) for i in range(n)]


def test_arena_accesses_go_through_addr_space_cast():
    obj = BpfObject.from_bytes(bpf.compile().elf, "arena_lang_test.bpf.o")
    try:
        insns = [i for p in obj.programs.values() for i in p.program.insns]
        casts = [i for i in insns if isa.is_addr_space_cast(i)]
        assert any(i.imm == 1 for i in casts)           # as(1) -> as(0) before accesses
    finally:
        obj.close()
    assert "ptr addrspace(1) @bpf_arena_alloc_pages" in bpf.compile().ir


def test_mixing_address_spaces_is_a_compile_error():
    bad = Module("arena_mix")
    ar = bad.arena("ar", 1)

    @bad.socket_filter
    def mix(data, n) -> u64:
        p = ptr[u64](data)
        q = ar.alloc_pages(1)
        if q == p:                          # pointers of two address spaces
            return 1
        return 0

    with pytest.raises(LangCompileError, match="address space"):
        bad.compile()


def test_arena_pointer_local_keeps_its_space():
    bad = Module("arena_local")
    ar = bad.arena("ar", 1)

    @bad.socket_filter
    def f(data, n) -> u64:
        q = arena_ptr[u64](ar.alloc_pages(1))
        q = ptr[u64](data)                  # a plain pointer into an arena pointer local
        return 0

    with pytest.raises(LangCompileError, match=r"q is arena_ptr\[u64\]; this value is ptr\[u64\]"):
        bad.compile()
