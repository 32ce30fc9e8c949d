"""Loader: what libbpf of each design's time accepted (issue #14, Load)."""

from __future__ import annotations

import pytest

from uringbpf.bpf import cc
from uringbpf.bpf.object import BpfLoadError, BpfObject
from uringbpf.errors import BpfVerifierError

LEGACY = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def SEC("maps") arr = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(unsigned long),
	.max_entries = 256,
};

struct bpf_map_def SEC("maps") counts = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 8,
	.map_flags = BPF_F_NO_PREALLOC,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4);
	__ulong(map_extra, 1ull << 44);
} arena SEC(".maps");

SEC("syscall")
int prog(void *ctx)
{
	__u32 k = 3;
	__u64 one = 41;
	unsigned long *v = bpf_map_lookup_elem(&arr, &k);

	if (v)
		*v = 7;
	bpf_map_update_elem(&counts, &k, &one, BPF_ANY);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def legacy_obj(tmp_path_factory):
    d = tmp_path_factory.mktemp("legacy")
    (d / "legacy.bpf.c").write_text(LEGACY)
    return cc.compile_c(d / "legacy.bpf.c", d / "legacy.o")


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_legacy_bpf_map_def_maps_load_and_work(legacy_obj, engine):
    obj = BpfObject.open(legacy_obj)
    try:
        arr, counts = obj.maps["arr"], obj.maps["counts"]
        assert (arr.key_size, arr.value_size, arr.max_entries) == (4, 8, 256)
        assert (counts.key_size, counts.value_size, counts.max_entries) == (4, 8, 8)
        assert counts.map_flags == 1                         # BPF_F_NO_PREALLOC
        obj.load(engine=engine)
        assert obj.programs["prog"]() == 0
        assert int.from_bytes(arr[3], "little") == 7
        assert int.from_bytes(counts[3], "little") == 41
    finally:
        obj.close()


def test_ulong_map_extra_is_read(legacy_obj):
    obj = BpfObject.open(legacy_obj)
    try:
        assert obj.maps["arena"].map_extra == 1 << 44
    finally:
        obj.close()


def test_legacy_map_record_with_unknown_nonzero_fields_is_refused(tmp_path):
    src = tmp_path / "long.bpf.c"
    src.write_text(r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct my_map_def { unsigned int type, key_size, value_size, max_entries, map_flags, extra; };
struct my_map_def SEC("maps") m = { BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0, 5 };
SEC("syscall") int prog(void *ctx) { __u32 k = 0; return bpf_map_lookup_elem(&m, &k) != 0; }
char LICENSE[] SEC("license") = "GPL";
""")
    with pytest.raises(BpfLoadError, match="non-zero fields after struct bpf_map_def"):
        BpfObject.open(cc.compile_c(src, tmp_path / "long.o"))


def test_call_to_undeclared_helper_is_refused_by_name(tmp_path):
    """What clang < 15 makes of a call to a helper the headers lack: a call to an undefined
    symbol that is not a __ksym kfunc. Refused with the helper's name and id."""
    src = tmp_path / "undef.bpf.c"
    src.write_text(r"""
#include <linux/types.h>
struct bpf_dynptr;
extern void *bpf_dynptr_data(const struct bpf_dynptr *p, __u32 off, __u32 len);
__attribute__((section("syscall"), used))
int prog(void *ctx) { return bpf_dynptr_data((void *)0, 0, 0) != 0; }
char LICENSE[] __attribute__((section("license"), used)) = "GPL";
""")
    with pytest.raises(BpfLoadError, match=r"undefined symbol 'bpf_dynptr_data'.*helper #203"):
        BpfObject.open(cc.compile_c(src, tmp_path / "undef.o")).load(engine="interp")


def test_call_to_unknown_undefined_function_is_refused(tmp_path):
    src = tmp_path / "undef2.bpf.c"
    src.write_text(r"""
extern long no_such_function(long x);
__attribute__((section("syscall"), used))
int prog(void *ctx) { return no_such_function(1); }
char LICENSE[] __attribute__((section("license"), used)) = "GPL";
""")
    with pytest.raises(BpfLoadError, match=r"undefined symbol 'no_such_function'.*__ksym"):
        BpfObject.open(cc.compile_c(src, tmp_path / "undef2.o")).load(engine="interp")


ARENA_LIST = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#define UBPF_ARENA_ADDR_SPACE
#include <bpf/bpf_arena.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4);
} arena SEC(".maps");

struct node {
	struct node __arena *next;
	__u64 val;
};

__u64 result, head;

SEC("syscall")
int walk(void *ctx)
{
	struct node __arena *a = bpf_arena_alloc_pages(&arena, NULL, 1, NUMA_NO_NODE, 0);
	struct node __arena *b;

	if (!a)
		return -1;
	b = a + 1;
	a->val = 40;
	b->val = 2;
	a->next = b;
	b->next = 0;
	result = a->val + a->next->val;
	head = (__u64)a;
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


def _has_addr_space_cast(path) -> bool:
    from uringbpf.bpf import elf, isa
    ef = elf.read(str(path))
    return any(i.opcode == (isa.ALU64 | isa.MOV | isa.X) and i.off == 1
               for s in ef.sections if s.is_exec and s.size for i in isa.decode(bytes(s.data)))


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_arena_pointers_with_addr_space_cast(tmp_path, engine):
    """LLVM 19+ emits BPF_ADDR_SPACE_CAST for __arena (address_space(1)) pointers."""
    src = tmp_path / "list.bpf.c"
    src.write_text(ARENA_LIST)
    out = cc.compile_c(src, tmp_path / "list.o", cpu="v4")
    assert _has_addr_space_cast(out)
    obj = BpfObject.open(out)
    try:
        obj.load(engine=engine)
        assert obj.programs["walk"]() == 0
        assert obj.bss.result == 42
        # the pointer the program kept is the user address Python sees the arena at
        arena = obj.maps["arena"]
        assert arena.value_addr <= obj.bss.head < arena.value_addr + 4 * 4096
    finally:
        obj.close()


@pytest.mark.parametrize("asm, arena, message", [
    ("r1 = addr_space_cast(r1, 0, 2)", True, "between address space 1 and 0"),
    ("r1 = addr_space_cast(r1, 0, 1)", False, "has an associated arena"),
])
def test_addr_space_cast_kernel_checks(tmp_path, asm, arena, message):
    src = tmp_path / "cast.bpf.c"
    src.write_text(r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
%s
SEC("syscall")
int prog(void *ctx)
{
	asm volatile("r1 = 0; %s" ::: "r1");
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
""" % ("struct { __uint(type, BPF_MAP_TYPE_ARENA); __uint(map_flags, BPF_F_MMAPABLE); "
       "__uint(max_entries, 1); } arena SEC(\".maps\");" if arena else "", asm))
    out = cc.compile_c(src, tmp_path / "cast.o", cpu="v4")
    assert _has_addr_space_cast(out)
    # the kernel's verifier refuses them (check_alu_op), with its log line for the insn
    with pytest.raises(BpfVerifierError, match=message) as info:
        BpfObject.open(out).load(engine="interp")
    assert f"(bf) {asm}" in info.value.log
