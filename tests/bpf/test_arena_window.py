"""Arena accesses cannot leave the arena's window (#14): BPF_ADDR_SPACE_CAST in raw
assembly, any number cast to an arena pointer and dereferenced, offsets past both ends of
the window, arena pointers stored as plain numbers; on both engines, with the same results.
The kernel's rules: a cast to as(0) keeps the low 32 bits, a cast to as(1) puts the arena's
upper 32 bits on them (0 stays 0), a load/store through an arena pointer goes to the arena
window + low 32 bits + off (PROBE_MEM32)."""

from __future__ import annotations

import ctypes
import errno
import re
import struct

import pytest

from uringbpf.bpf import asm, cc, disasm, isa, jit, maps
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.verifier import verify
from uringbpf.bpf.maps import BPF_F_MMAPABLE, Map
from uringbpf.errors import MapError
from uringbpf.bpf.object import BpfObject
from uringbpf.errors import BpfVerifierError

ENGINES = ["interp", "jit"]
HEAD = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_arena.h>
struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4);
} arena SEC(".maps");
__u64 out[8];
char LICENSE[] SEC("license") = "GPL";
#define TO_KERN(x) asm volatile("%[p] = addr_space_cast(%[p], 0, 1)" : [p] "+r"(x))
#define TO_USER(x) asm volatile("%[p] = addr_space_cast(%[p], 1, 0)" : [p] "+r"(x))
/* what associates the arena with a program that only casts (as the selftests do) */
#define USE_ARENA() bpf_arena_alloc_pages(&arena, NULL, 0, 0, 0)
"""

CASTS = HEAD + r"""
SEC("syscall")
int prog(void *ctx)
{
	__u64 a = 0x1234567800002000ULL, b = 0x2000, c = 0x500000000ULL;

	USE_ARENA();
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

	USE_ARENA();
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
	out[4] = top;                     /* and the kernel keeps the pointer 32-bit (zext) */
	return 0;
}
"""


def _out(obj, signed: bool = False) -> tuple:
    """The program's ``__u64 out[8]`` in .bss."""
    return struct.unpack("<8q" if signed else "<8Q", bytes(obj.bss.out))


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
        out = _out(obj)
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
        # far's upper half is ignored (window + 32767); top + 4 GiB is top again, and the
        # register itself is zero-extended after the 64-bit add (the kernel's needs_zext)
        out = _out(obj)
        assert out[:5] == (0x11, 0x22, 0x33, 0x11, 0xFFFFFFFF)
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
    # arena atomics as x86-64 Linux: fetch_or/and/xor refused (tests/bpf/test_arena_atomics.py)
    ('__u64 p = 0; TO_KERN(p); out[0] = __sync_fetch_and_or((__u64 *)p, 1);',
     "BPF_ATOMIC stores into R"),
])
def test_refused(tmp_path, body, message):
    text = HEAD + 'SEC("syscall")\nint prog(void *ctx)\n{\nUSE_ARENA();\n%s\nreturn 0;\n}\n' % body
    with pytest.raises(BpfVerifierError, match=message):
        _load(tmp_path, text, "interp")


ATOMICS = HEAD + r"""
#define __arena_var __attribute__((address_space(1)))
__u64 __arena_var c64 = 10;
__u32 __arena_var c32 = 0xfffffff0;

SEC("syscall")
int prog(void *ctx)
{
	out[0] = __sync_fetch_and_add(&c64, 5);                 /* 10, c64 = 15 */
	out[1] = __sync_val_compare_and_swap(&c64, 15, 7);      /* hit: 15, c64 = 7 */
	out[2] = __sync_val_compare_and_swap(&c64, 1, 9);       /* miss: 7 */
	out[3] = __sync_lock_test_and_set(&c32, 3);             /* 0xfffffff0, c32 = 3 */
	out[4] = __sync_fetch_and_add(&c32, 0xfffffffe);        /* 3, c32 = 1 (wraps) */
	out[5] = c64;
	out[6] = c32;
	return 0;
}
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_compiled_arena_atomics(tmp_path, engine):
    """What clang makes of __sync_* on __arena globals, on both engines (clang emits
    __sync_fetch_and_or/and/xor as the fetch forms even when the result is unused: those
    are refused, as by 7.2, see test_refused; tests/bpf/test_arena_atomics.py has all)."""
    obj = _load(tmp_path, ATOMICS, engine)
    try:
        assert obj.programs["prog"]() == 0
        assert _out(obj)[:7] == (10, 15, 7, 0xFFFFFFF0, 3, 7, 1)
        g = obj.datasec(".addr_space.1")
        assert (g.c64, g.c32) == (7, 1)
    finally:
        obj.close()


def test_one_insn_one_kind_of_pointer(tmp_path):
    """The kernel's save_aux_ptr_type: a load that sees an arena pointer on one path and
    a stack pointer on another cannot be rewritten either way."""
    text = HEAD + r"""
SEC("syscall")
int prog(void *ctx)
{
	__u64 p = 0, v = 0;

	USE_ARENA();
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
__u64 __arena_var counter = 5;        /* .addr_space.1: the arena's last page (libbpf) */
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
    """``__arena`` globals (LLVM's .addr_space.1) live in the arena's last page (libbpf
    since Dec 2025); the program reaches them through casts; Python sees them there."""
    obj = _load(tmp_path, GLOBALS, engine)
    try:
        arena = obj.maps["arena"]
        g = obj.datasec(".addr_space.1")
        last = arena.value_addr + 3 * 4096                   # 4 pages, globals in the last
        assert g.counter == 5 and g.address_of("counter") == last
        assert obj.programs["prog"]() == 0
        assert (g.counter, _out(obj)[0]) == (8, 8)
        assert struct.unpack_from("<Q", arena.memory(), g.address_of("table") - arena.value_addr
                                  + 16)[0] == 8
        # the globals' page is taken: the first three pages are all that is left
        assert arena.arena_alloc_pages(3) == arena.value_addr
        assert arena.arena_alloc_pages(1) == 0
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


ALLOC = HEAD.replace("#include <bpf/bpf_arena.h>\n", "") + r"""
#define __arena_as __attribute__((address_space(1)))
void __arena_as *bpf_arena_alloc_pages(void *map, void __arena_as *addr, __u32 page_cnt,
				       int node_id, __u64 flags) __ksym __weak;
__u64 __arena_as *saved;

SEC("syscall")
int prog(void *ctx)
{
	__u64 __arena_as *p = bpf_arena_alloc_pages(&arena, NULL, 2, -1, 0);
	__u64 __arena_as *end;

	saved = p;                        /* kept before its NULL check: a number to the kernel */
	if (!p)
		return 1;
	end = p + 1024;
	p[515] = 42;                      /* second page, through LLVM's cast */
	out[0] = p[515];
	out[1] = (p + 515 < end) + ((__u64)(p + 8) & 0xfff);   /* compared, masked */
	return 0;
}
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_alloc_pages_result_is_a_number_to_the_program(tmp_path, engine):
    """What the kernel accepts of bpf_arena_alloc_pages' result (it types it a number):
    storing it before the NULL check, comparing and masking it, and dereferencing it
    through LLVM's addr_space_cast."""
    obj = _load(tmp_path, ALLOC, engine)
    try:
        arena = obj.maps["arena"]
        assert obj.programs["prog"]() == 0
        out = _out(obj)
        assert obj.bss.saved == arena.value_addr
        assert out[:2] == (42, 1 + 64)
        assert struct.unpack_from("<Q", arena.memory(), 4096 + 24)[0] == 42
    finally:
        obj.close()


def test_cast_needs_the_arena_named_by_the_program(tmp_path):
    """The kernel associates an arena with a program that names it (an lddw of the map or
    of an arena global); an object-level arena the program never names is not enough
    (measured on Linux 7.2: "... can only be used in a program that has an associated
    arena")."""
    text = HEAD + 'SEC("syscall")\nint prog(void *ctx)\n{\n__u64 p = 0; TO_KERN(p); out[0] = p;\nreturn 0;\n}\n'
    with pytest.raises(BpfVerifierError, match="has an associated arena"):
        _load(tmp_path, text, "interp")


# Raw programs with the Linux 7.2 verdicts recorded in the tools/kernel-vm guest (as root,
# socket filters, an arena map with map_extra 1 << 44 named by an lddw at insn 0).
_CAST = isa.Insn(isa.ALU64 | isa.MOV | isa.X, 1, 1, isa.ADDR_SPACE_CAST, 1)
_LD_ARENA = [isa.Insn(isa.OP_LDDW, 2, isa.PSEUDO_MAP_IDX, 0, 0, 0), isa.Insn(0)]
_EXIT0 = [isa.Insn(0xB7, 0, 0, 0, 0), isa.Insn(0x95)]
_R1_0 = isa.Insn(0xB7, 1, 0, 0, 0)
LINUX72 = {
    # name: (instructions, 7.2's verdict, ours when it differs and why)
    "not_named": ([_R1_0, _CAST, isa.Insn(0x7A, 1, 0, 0, 7)] + _EXIT0,
                  "has an associated arena", None),
    "any_number": (_LD_ARENA + [isa.Insn(0xB7, 1, 0, 0, 0x2000), _CAST,
                                isa.Insn(0x7A, 1, 0, 0, 7)] + _EXIT0, None, None),
    "extreme_offsets": (_LD_ARENA + [isa.Insn(0xB7, 1, 0, 0, -1), _CAST,
                                     isa.Insn(0x7A, 1, 0, 32767, 7),
                                     isa.Insn(0x79, 3, 1, -32768, 0)] + _EXIT0, None, None),
    "imm_2": (_LD_ARENA + [_R1_0, isa.Insn(isa.ALU64 | isa.MOV | isa.X, 1, 1, 1, 2)] + _EXIT0,
              "between address space 1 and 0", None),
    "reloaded_pointer": (_LD_ARENA + [_R1_0, _CAST, isa.Insn(0x7B, 1, 1, 8, 0),
                                      isa.Insn(0x79, 3, 1, 8, 0), isa.Insn(0x79, 4, 3, 0, 0)]
                         + _EXIT0, "R3 invalid mem access 'scalar'", None),
    "and": (_LD_ARENA + [_R1_0, _CAST, isa.Insn(isa.ALU64 | isa.AND | isa.K, 1, 0, 0, 0xFFF0),
                         isa.Insn(0x7A, 1, 0, 0, 7)] + _EXIT0, None, None),
    "rsh": (_LD_ARENA + [_R1_0, _CAST, isa.Insn(isa.ALU64 | isa.RSH | isa.K, 1, 0, 0, 3),
                         isa.Insn(0x7A, 1, 0, 0, 7)] + _EXIT0, None, None),
    "mov32": (_LD_ARENA + [_R1_0, _CAST, isa.Insn(isa.ALU | isa.MOV | isa.X, 3, 1, 0, 0)]
              + _EXIT0, None, None),
    "compare": (_LD_ARENA + [_R1_0, _CAST, isa.Insn(0x25, 1, 0, 1, 5),
                             isa.Insn(0x7A, 1, 0, 0, 7)] + _EXIT0, None, None),
    "scalar_plus_arena": (_LD_ARENA + [_R1_0, _CAST, isa.Insn(0xB7, 3, 0, 0, 8),
                                       isa.Insn(isa.ALU64 | isa.ADD | isa.X, 3, 1, 0, 0),
                                       isa.Insn(0x7A, 3, 0, 0, 7)] + _EXIT0, None, None),
    "ldsx": (_LD_ARENA + [_R1_0, _CAST, isa.Insn(isa.LDX | isa.MEMSX | isa.B, 3, 1, 0, 0)]
             + _EXIT0, None, None),
    "cast_user_spilled": (_LD_ARENA + [_R1_0, isa.Insn(isa.ALU64 | isa.MOV | isa.X, 1, 1, 1,
                                                       1 << 16),
                                       isa.Insn(0x7B, 10, 1, -8, 0)] + _EXIT0, None, None),
    "returned": (_LD_ARENA + [_R1_0, _CAST, isa.Insn(0xBF, 0, 1, 0, 0), isa.Insn(0x95)],
                 None, None),
    # 7.2 (root: CAP_PERFMON may leak addresses) accepts these; we refuse, as for every
    # pointer-to-number leak (docs/loader.md, "Arenas")
    "fp_stored_in_arena": (_LD_ARENA + [_R1_0, _CAST, isa.Insn(0x7B, 1, 10, 0, 0)] + _EXIT0,
                           None, "R10 leaks addr into mem"),
    "fp_cast": (_LD_ARENA + [isa.Insn(isa.ALU64 | isa.MOV | isa.X, 1, 10, 1, 1),
                             isa.Insn(0x7A, 1, 0, 0, 7)] + _EXIT0,
                None, "addr_space_cast of fp prohibited"),
    # arena atomics: as 7.2's x86-64 JIT allows them (tests/bpf/test_arena_atomics.py)
    "atomic_add": (_LD_ARENA + [_R1_0, _CAST, isa.Insn(0xB7, 3, 0, 0, 1),
                                isa.Insn(0xDB, 1, 3, 0, 0)] + _EXIT0, None, None),
    "atomic_fetch_or": (_LD_ARENA + [_R1_0, _CAST, isa.Insn(0xB7, 3, 0, 0, 1),
                                     isa.Insn(0xDB, 1, 3, 0, 0x41)] + _EXIT0,
                        "BPF_ATOMIC stores into R1 arena is not allowed", None),
}


@pytest.mark.parametrize("name", sorted(LINUX72))
def test_raw_verdicts_as_linux_72(name):
    insns, kernel, ours = LINUX72[name]
    arena = Map("arena", maps.MAP_TYPE_ARENA, 0, 0, 4, BPF_F_MMAPABLE)
    try:
        prog = isa.Program(name, [isa.Insn(i.opcode, i.dst, i.src, i.off, i.imm, i.imm64)
                                  for i in insns], section="socket", maps=[arena])
        want = ours if ours is not None else kernel
        if want is None:
            verify(prog)
        else:
            with pytest.raises(BpfVerifierError, match=re.escape(want)):
                verify(prog)
    finally:
        arena.close()


@pytest.mark.parametrize("style", ["kernel", "ubpf"])
def test_asm_and_disasm_know_the_cast(style):
    """BPF_ADDR_SPACE_CAST in both assembly syntaxes (the kernel's log spelling)."""
    insns = [isa.Insn(isa.ALU64 | isa.MOV | isa.X, 1, 2, 1, 1),
             isa.Insn(isa.ALU64 | isa.MOV | isa.X, 3, 3, 1, 1 << 16), isa.Insn(0x95)]
    text = disasm.disassemble(insns, style)
    assert ("r1 = addr_space_cast(r2, 0, 1)" if style == "kernel"
            else "addr_space_cast %r1, %r2, 0, 1") in text
    assert isa.encode(asm.assemble(text)) == isa.encode(insns)


RESERVE = HEAD + r"""
SEC("syscall")
int prog(void *ctx)
{
	char __arena *base = bpf_arena_alloc_pages(&arena, NULL, 1, -1, 0);  /* page 0 */

	if (!base)
		return 1;
	out[0] = bpf_arena_reserve_pages(&arena, base + 4096, 1);          /* page 1: 0 */
	out[1] = (__u64)bpf_arena_alloc_pages(&arena, base + 4096, 1, -1, 0);  /* taken: NULL */
	out[2] = (__u64)bpf_arena_alloc_pages(&arena, NULL, 1, -1, 0) - (__u64)base;  /* page 2 */
	out[3] = bpf_arena_reserve_pages(&arena, base, 1);                  /* allocated */
	out[4] = bpf_arena_reserve_pages(&arena, base + 3 * 4096, 2);       /* past the end */
	out[5] = bpf_arena_reserve_pages(&arena, base + 5, 1);              /* unaligned: 0 */
	out[6] = bpf_arena_reserve_pages(&arena, base + 3 * 4096, 0);       /* nothing: 0 */
	return 0;
}
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_reserve_pages(tmp_path, engine):
    """bpf_arena_reserve_pages (6.17+) with the kernel's results."""
    obj = _load(tmp_path, RESERVE, engine)
    try:
        assert obj.programs["prog"]() == 0
        out = _out(obj, signed=True)
        assert out[:7] == (0, 0, 2 * 4096, -errno.EBUSY, -errno.EINVAL, 0, 0)
        arena = obj.maps["arena"]
        assert arena.arena_reserve_pages(arena.value_addr + 3 * 4096) == 0
        assert arena.arena_alloc_pages(1) == 0                  # every page taken now
    finally:
        obj.close()


def test_rewritten_accesses_disassemble_as_written(tmp_path):
    """After load the program holds PROBE_MEM32 accesses; disassembled they read as the
    loads and stores the program wrote."""
    obj = _load(tmp_path, CASTS, "interp")
    try:
        prog = obj.programs["prog"].program
        probes = [i for i in prog.insns if isa.is_arena_access(i)]
        assert probes
        text = disasm.disassemble(prog.insns, "kernel")
        assert "invalid" not in text and "*(u64 *)(r" in text
    finally:
        obj.close()


# A hand-written program (uringbpf's assembler, kernel syntax) that tries every way out
# of the window: a pointer cast from a number with all upper bits set, the largest and
# smallest offsets, 64-bit arithmetic past 4 GiB, and a pointer re-made from a number it
# stored in the arena.  Both engines must stay in the window and agree.
ESCAPE = """
r2 = map_idx(0) ll
r1 = -1
r1 = addr_space_cast(r1, 0, 1)
*(u64 *)(r1 + 32767) = 0x11
r3 = 0
r3 = addr_space_cast(r3, 0, 1)
*(u64 *)(r3 - 32768) = 0x22
r4 = r1
r4 += r1
r5 = 0x7fffffff
r5 <<= 8
r4 += r5
*(u32 *)(r4 + 0) = 0x33
*(u64 *)(r3 + 64) = r4
r6 = *(u64 *)(r3 + 64)
r6 = addr_space_cast(r6, 0, 1)
r0 = *(u32 *)(r6 + 0)
exit
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_raw_program_cannot_leave_the_window(engine):
    arena = Map("arena", maps.MAP_TYPE_ARENA, 0, 0, 4, BPF_F_MMAPABLE)
    try:
        prog = isa.Program("escape", asm.assemble(ESCAPE), section="syscall",
                           prog_type="syscall", maps=[arena])
        verify(prog)
        assert prog.arena_xlated
        rt = Runtime()
        for r in arena.regions():
            rt.mem.add(r.base, r.size, r.writable, r.name)
        run = Interpreter(prog, rt).run if engine == "interp" else jit.compile(prog, rt)
        assert run() == 0x33
        w, mem = arena.arena_window, (ctypes.c_ubyte * 16)
        low = (0xFFFFFFFF * 2 + 0x7FFFFFFF00) & 0xFFFFFFFF        # r4's low 32 bits
        assert ctypes.c_uint64.from_address(w + 0xFFFFFFFF + 32767).value == 0x11
        assert ctypes.c_uint64.from_address(w - 32768).value == 0x22
        assert ctypes.c_uint32.from_address(w + low).value == 0x33
        assert bytes(mem.from_address(w + 64))[:8] != bytes(8)
    finally:
        arena.close()
