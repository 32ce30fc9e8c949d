"""Arena accesses cannot leave the arena's window (#14): BPF_ADDR_SPACE_CAST in raw
assembly, any number cast to an arena pointer and dereferenced, offsets past both ends of
the window, arena pointers stored as plain numbers; on both engines, with the same results.
The kernel's rules: a cast to as(0) keeps the low 32 bits, a cast to as(1) puts the arena's
upper 32 bits on them (0 stays 0), a load/store through an arena pointer goes to the arena
window + low 32 bits + off (PROBE_MEM32)."""

from __future__ import annotations

import errno
import struct

import pytest

from uringbpf.bpf import cc, maps
from uringbpf.bpf.maps import BPF_F_MMAPABLE, Map
from uringbpf.errors import MapError
from uringbpf.bpf.object import BpfObject
from uringbpf.errors import BpfVerifierError

ENGINES = ["interp", "jit"]
HEAD = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4);
} arena SEC(".maps");
__u64 out[8];
char LICENSE[] SEC("license") = "GPL";
#define TO_KERN(x) asm volatile("%[p] = addr_space_cast(%[p], 0, 1)" : [p] "+r"(x))
#define TO_USER(x) asm volatile("%[p] = addr_space_cast(%[p], 1, 0)" : [p] "+r"(x))
"""

CASTS = HEAD + r"""
SEC("syscall")
int prog(void *ctx)
{
	__u64 a = 0x1234567800002000ULL, b = 0x2000, c = 0x500000000ULL;

	TO_KERN(a);                       /* any number: an arena pointer, low 32 bits */
	*(volatile __u64 *)a = 0x77;      /* lands on arena page 2 */
	out[0] = a;                       /* an arena pointer stored as a plain number */
	*(volatile __u64 *)(a + 8) = a;   /* ... and into the arena itself */
	TO_USER(b);                       /* the arena's upper half + low 32 bits */
	out[1] = b;
	TO_USER(c);                       /* low 32 bits 0: NULL stays NULL */
	out[2] = c;
	return 0;
}
"""

EDGES = HEAD + r"""
SEC("syscall")
int prog(void *ctx)
{
	__u64 top = 0xffffffffULL, low = 0, far = 0xffffffff00000000ULL;

	TO_KERN(top);
	TO_KERN(low);
	TO_KERN(far);
	/* the largest and smallest instruction offsets from both ends of the window */
	asm volatile("*(u64 *)(%[p] + 32767) = 0x11" :: [p] "r"(top));
	asm volatile("*(u64 *)(%[p] - 32768) = 0x22" :: [p] "r"(low));
	asm volatile("*(u64 *)(%[p] + 32767) = 0x33" :: [p] "r"(far));
	asm volatile("%[v] = *(u64 *)(%[p] + 32767)" : [v] "=r"(out[0]) : [p] "r"(top));
	asm volatile("%[v] = *(u64 *)(%[p] - 32768)" : [v] "=r"(out[1]) : [p] "r"(low));
	asm volatile("%[v] = *(u64 *)(%[p] + 32767)" : [v] "=r"(out[2]) : [p] "r"(far));
	top += 0x100000000ULL;            /* 64-bit arithmetic: still only the low 32 bits count */
	asm volatile("%[v] = *(u64 *)(%[p] + 32767)" : [v] "=r"(out[3]) : [p] "r"(top));
	return 0;
}
"""


def _load(tmp_path, text, engine):
    src = tmp_path / "arena.bpf.c"
    src.write_text(text)
    obj = BpfObject.open(cc.compile_c(src, tmp_path / "arena.o", cpu="v4"))
    obj.load(engine=engine)
    return obj


@pytest.mark.parametrize("engine", ENGINES)
def test_casts_both_ways_and_a_number_dereferenced(tmp_path, engine):
    obj = _load(tmp_path, CASTS, engine)
    try:
        arena = obj.maps["arena"]
        window = arena.arena_window
        assert obj.programs["prog"]() == 0
        out = struct.unpack("<8Q", bytes(obj.bss.out))
        assert list(out[:3]) == [0x2000, window | 0x2000, 0]
        mem = arena.memory()
        assert struct.unpack_from("<QQ", mem, 0x2000) == (0x77, 0x2000)
        del mem
    finally:
        obj.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_offsets_past_the_window_stay_in_its_guards(tmp_path, engine):
    obj = _load(tmp_path, EDGES, engine)
    try:
        assert obj.programs["prog"]() == 0
        # far's upper half is ignored (window + 32767); top + 4 GiB is top again
        assert struct.unpack("<8Q", bytes(obj.bss.out))[:4] == (0x11, 0x22, 0x33, 0x11)
    finally:
        obj.close()


@pytest.mark.parametrize("body, message", [
    # a stack pointer's bits would become a storable arena number
    ('__u64 p = (__u64)&p; TO_KERN(p); out[0] = p;', "addr_space_cast of fp prohibited"),
    # storing a non-arena pointer into the arena leaks it
    ('__u64 p = 0, q = (__u64)out; TO_KERN(p); '
     'asm volatile("*(u64 *)(%[p] + 0) = %[q]" :: [p] "r"(p), [q] "r"(q));', "leaks addr"),
    # what an arena pointer stored in the arena reads back as is a number
    ('__u64 p = 0; TO_KERN(p); *(volatile __u64 *)p = p; '
     'asm volatile("r1 = *(u64 *)(%[p] + 0); r1 = *(u64 *)(r1 + 0)" :: [p] "r"(p) : "r1");',
     "invalid mem access 'scalar'"),
    # no atomics through arena pointers here (see docs/loader.md)
    ('__u64 p = 0; TO_KERN(p); __sync_fetch_and_add((__u64 *)p, 1);', "BPF_ATOMIC stores into"),
])
def test_refused(tmp_path, body, message):
    text = HEAD + 'SEC("syscall")\nint prog(void *ctx)\n{\n%s\nreturn 0;\n}\n' % body
    with pytest.raises(BpfVerifierError, match=message):
        _load(tmp_path, text, "interp")


def test_one_insn_one_kind_of_pointer(tmp_path):
    """The kernel's save_aux_ptr_type: a load that sees an arena pointer on one path and
    a stack pointer on another cannot be rewritten either way."""
    text = HEAD + r"""
SEC("syscall")
int prog(void *ctx)
{
	__u64 p = 0, v = 0;

	TO_KERN(p);
	asm volatile("*(u64 *)(r10 - 8) = 0; if %[c] == 0 goto +1; %[p] = r10; "
		     "%[v] = *(u64 *)(%[p] - 8)"
		     : [v] "+r"(v), [p] "+r"(p) : [c] "r"(ctx));
	return v;
}
"""
    with pytest.raises(BpfVerifierError, match="same insn cannot be used with different pointers"):
        _load(tmp_path, text, "interp")


GLOBALS = HEAD + r"""
#define __arena_var __attribute__((address_space(1)))
__u64 __arena_var counter = 5;        /* .addr_space.1: the arena's first bytes (libbpf) */
__u64 __arena_var table[16];

SEC("syscall")
int prog(void *ctx)
{
	counter += 3;
	table[2] = counter;
	out[0] = counter;
	return 0;
}
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_arena_globals(tmp_path, engine):
    """``__arena`` globals (LLVM's .addr_space.1) live at the start of the arena; the
    program reaches them through casts; Python sees them at the arena's address."""
    obj = _load(tmp_path, GLOBALS, engine)
    try:
        arena = obj.maps["arena"]
        g = obj.datasec(".addr_space.1")
        assert g.counter == 5 and g.address_of("counter") == arena.value_addr
        assert obj.programs["prog"]() == 0
        assert (g.counter, struct.unpack("<8Q", bytes(obj.bss.out))[0]) == (8, 8)
        assert struct.unpack_from("<Q", arena.memory(), g.address_of("table") - arena.value_addr
                                  + 16)[0] == 8
        # the globals' page is taken: allocation starts after it
        assert arena.arena_alloc_pages(1) == arena.value_addr + 4096
    finally:
        obj.close()


@pytest.mark.parametrize("pages, flags, extra, code", [
    (0, BPF_F_MMAPABLE, 0, errno.EINVAL),                       # no pages
    (4, 0, 0, errno.EINVAL),                                    # not mmapable
    (4, BPF_F_MMAPABLE | 1, 0, errno.EINVAL),                   # unknown flag
    (4, BPF_F_MMAPABLE, (1 << 44) + 100, errno.EINVAL),         # map_extra not page aligned
    ((1 << 20) + 1, BPF_F_MMAPABLE, 0, errno.E2BIG),            # more than 4 GiB
    (4, BPF_F_MMAPABLE, (1 << 44) + (1 << 32) - 4096, errno.ERANGE),  # across 4 GiB
])
def test_arena_map_creation_codes(pages, flags, extra, code):
    """The kernel's arena_map_alloc checks, with its error codes."""
    with pytest.raises(MapError) as info:
        Map("a", maps.MAP_TYPE_ARENA, 0, 0, pages, flags, map_extra=extra)
    assert info.value.errno == code


def test_arena_map_extra_never_replaces_a_mapping():
    first = Map("a", maps.MAP_TYPE_ARENA, 0, 0, 4, BPF_F_MMAPABLE, map_extra=3 << 44)
    try:
        assert first.value_addr == 3 << 44
        with pytest.raises(MapError) as info:
            Map("b", maps.MAP_TYPE_ARENA, 0, 0, 4, BPF_F_MMAPABLE, map_extra=(3 << 44) + 8192)
        assert info.value.errno == errno.EBUSY
    finally:
        first.close()
    again = Map("c", maps.MAP_TYPE_ARENA, 0, 0, 4, BPF_F_MMAPABLE, map_extra=3 << 44)
    again.close()                                          # closing gave the window back
