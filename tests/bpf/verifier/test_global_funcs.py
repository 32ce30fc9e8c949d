"""Global (non-static) functions are verified once, on their own, against their BTF
signature, as the kernel does (#20): arguments are unknown scalars or possibly-NULL
pointers of the declared type, a context argument must be the context, and a caller
sees only an unknown scalar return value."""

from __future__ import annotations

import json
import pathlib

import pytest

import corpus_lib
from uringbpf.bpf import cc, verifier
from uringbpf.bpf.object import BpfObject

corpus_lib.register_test_env()

HEAD = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, int);
         __type(value, unsigned char[16]); } arr SEC(".maps");
"""

CASES = {
    # the caller relies on the callee's result being < 16: only an unknown scalar is seen
    "return_value_unknown": ("reject", "unbounded memory access", r"""
__attribute__((noinline)) int pick(int x) { return x & 15; }
SEC("socket") int prog(unsigned char *data, unsigned long len)
{
    int k = 0;
    unsigned char *v = bpf_map_lookup_elem(&arr, &k);
    if (!v) return 0;
    long i = pick(len);
    return v[i];
}"""),
    "static_return_value_known": ("accept", "", r"""
static __attribute__((noinline)) int pick(int x) { return x & 15; }
SEC("socket") int prog(unsigned char *data, unsigned long len)
{
    int k = 0;
    unsigned char *v = bpf_map_lookup_elem(&arr, &k);
    if (!v) return 0;
    long i = pick(len);
    return v[i];
}"""),
    # a pointer argument may be NULL inside the function
    "pointer_arg_may_be_null": ("reject", "invalid mem access 'mem_or_null'", r"""
__attribute__((noinline)) int get(int *p) { return *p; }
SEC("socket") int prog(unsigned char *data, unsigned long len)
{
    int x = 3;
    return get(&x);
}"""),
    "pointer_arg_null_checked": ("accept", "", r"""
__attribute__((noinline)) int get(int *p) { if (!p) return 0; return *p; }
SEC("socket") int prog(unsigned char *data, unsigned long len)
{
    int x = 3;
    return get(&x) + get(0);
}"""),
    # the caller must pass initialised memory of the declared size
    "caller_passes_scalar_for_pointer": ("reject", "Caller passes invalid args into func#1", r"""
__attribute__((noinline)) int get(int *p) { if (!p) return 0; return *p; }
SEC("socket") int prog(unsigned char *data, unsigned long len)
{
    return get((int *)len);
}"""),
    "scalar_args_unknown_in_callee": ("reject", "R1 max value is outside of the allowed memory range", r"""
__attribute__((noinline)) int at(unsigned char *v, unsigned int i)
{
    if (!v) return 0;
    return v[i & 31];
}
SEC("socket") int prog(unsigned char *data, unsigned long len)
{
    int k = 0;
    unsigned char *v = bpf_map_lookup_elem(&arr, &k);
    if (!v) return 0;
    return at(v, 3);
}"""),
    # 7.2 (C's held-out l_global_void_return): a void global function's r0 is not checked
    "void_global_function": ("accept", "", r"""
__attribute__((noinline)) void bump(unsigned char *v) { if (v) v[0] += 1; }
SEC("socket") int prog(void *ctx)
{
    int k = 0;
    bump(bpf_map_lookup_elem(&arr, &k));
    return 0;
}"""),
    # 7.2 (l_global_map_value_arg): the parameter may be NULL, so may the argument
    "maybe_null_map_value_argument": ("accept", "", r"""
__attribute__((noinline)) int first(unsigned char (*v)[16]) { return v ? (*v)[0] : 0; }
SEC("socket") int prog(void *ctx)
{
    int k = 0;
    return first(bpf_map_lookup_elem(&arr, &k));
}"""),
    # the possibly-NULL argument must still be big enough when it is not NULL
    "maybe_null_argument_too_small": ("reject", "Caller passes invalid args into func#1", r"""
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, int);
         __type(value, unsigned char[4]); } small SEC(".maps");
__attribute__((noinline)) int first(unsigned char (*v)[16]) { return v ? (*v)[0] : 0; }
SEC("socket") int prog(void *ctx)
{
    int k = 0;
    return first(bpf_map_lookup_elem(&small, &k));
}"""),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_global_function(name, tmp_path):
    expect, reason, body = CASES[name]
    src = tmp_path / f"{name}.bpf.c"
    src.write_text(HEAD + body + "\n")
    obj = BpfObject.open(str(cc.compile_c(src, tmp_path / f"{name}.o")))
    (v,) = verifier.verify_object(obj)
    if expect == "accept":
        assert v.ok, v.error
    else:
        assert not v.ok, f"accepted:\n{v.log}"
        assert reason in v.error.message, v.log


GFUNCS = sorted((pathlib.Path(__file__).parent / "gfuncs").glob("*.bpf.c"))


@pytest.mark.parametrize("src", GFUNCS, ids=lambda p: p.name)
def test_loop_step_global_functions_match_linux_7_2(src, tmp_path):
    """loop_step programs with global functions (tests/bpf/verifier/gfuncs): our verdict and
    message equal Linux 7.2's, loaded with libbpf (`bpftool prog loadall` in the
    tools/kernel-vm guest; recorded in kernel72_global_funcs.json)."""
    rows = {r["name"]: r for r in map(json.loads, (pathlib.Path(__file__).parent /
            "kernel72_global_funcs.json").read_text().splitlines())}
    kernel = rows[src.name[:-len(".bpf.c")]]
    obj = BpfObject.open(str(cc.compile_c(src, tmp_path / "g.o")))
    (v,) = verifier.verify_object(obj)
    assert v.ok == kernel["ok"], (v.error, kernel)
    assert src.name.startswith("accept") == v.ok
    if not v.ok:
        assert v.error.message.startswith(kernel["last"]), (v.error.message, kernel["last"])
