"""The JIT on a C object through the loader: maps, global data, helpers with native twins,
a ``bpf_loop`` callback, ``bpf_printk`` and atomics, compared with the interpreter."""

from __future__ import annotations

import pytest

from uringbpf.bpf import cc
from uringbpf.bpf.memory import Buffer
from uringbpf.bpf.object import BpfObject

SOURCE = r"""
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

const volatile __u64 factor = 3;
__u64 total = 0;

static long step(__u32 i, void *ctx)
{
	__u64 *acc = ctx;

	*acc += i * factor;
	return *acc > 1000;
}

SEC("socket")
int mix(unsigned char *data, unsigned long len)
{
	__u64 acc = len;
	__u32 k = 1, hk;
	__u64 one = 1, *v;

	if (len >= 4)
		acc += data[0] + (data[3] << 8);
	bpf_loop(40, step, &acc, 0);
	v = bpf_map_lookup_elem(&counts, &k);
	if (v)
		__sync_fetch_and_add(v, acc);
	hk = acc & 63;
	bpf_map_update_elem(&seen, &hk, &one, BPF_ANY);
	total += acc;
	bpf_printk("acc=%llu hk=%u", acc, hk);
	return (int)acc;
}
"""


@pytest.fixture(scope="module")
def obj_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("objects")
    src = d / "mix.bpf.c"
    src.write_text(SOURCE)
    out = d / "mix.bpf.o"
    cc.compile_c(src, out, cpu="v3")
    return out


def _observe(obj_path, engine: str, factor: int, inputs: list[bytes], checked: bool = False):
    obj = BpfObject.open(obj_path)
    try:
        obj.rodata.factor = factor
        obj.load(engine=engine, strict_engine=True, checked=checked)   # verified (bpf_loop callbacks too)
        prog = obj.programs["mix"]
        assert prog.engine == engine
        results = []
        for data in inputs:
            buf = Buffer(max(len(data), 1), data)
            region = prog.runtime.mem.add_buffer(buf, True, "data")
            try:
                results.append(prog(buf.addr, len(data)))
            finally:
                prog.runtime.mem.remove(region)
        counts = obj.maps["counts"].lookup_int(1)
        seen = sorted(obj.maps["seen"].keys())
        return results, counts, seen, obj.bss.total, list(obj.printk)
    finally:
        obj.close()


@pytest.mark.parametrize("checked", [False, True], ids=["unchecked", "checked"])
@pytest.mark.parametrize("factor", [3, 50])
def test_jit_and_interpreter_agree_on_a_loaded_object(obj_path, factor, checked):
    inputs = [b"", b"\x01\x02\x03\x04", bytes(range(200, 232)), b"\xff" * 9]
    jit = _observe(obj_path, "jit", factor, inputs, checked)
    interp = _observe(obj_path, "interp", factor, inputs)
    assert jit == interp
    results, counts, seen, total, printk = jit
    assert counts == total == sum(results)          # every run added acc to both
    assert len(printk) == len(inputs) and printk[0].endswith(f"acc={results[0]} hk={results[0] & 63}")
    if factor == 3:
        # len 0: acc = sum(i*3 for i < 40) = 2340 > 1000 stops early: 0..26 gives 1053.
        assert results[0] == sum(3 * i for i in range(27))
