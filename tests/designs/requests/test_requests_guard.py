"""The requests design and the runtime's own memory (issue #13 item 5): bpf_copy_to_user
aimed at the program's own stack (the issue's `copy_to_user(fp-504, ...)`, which rewrote a
spilled map-value pointer) fails with -EFAULT and writes nothing, on both engines and both
request engines."""

from __future__ import annotations

import errno

import pytest

PROGRAM = r"""
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <io_uring/bpf_requests.h>
char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

SEC("iouring.s/poke")
int poke(struct io_uring_bpf_ctx *ctx)
{
	__u64 word = 0x1111, val = 0x4141414141414141ULL;
	__u32 k0 = 0, k1 = 1;
	long ret = bpf_copy_to_user(&word, &val, sizeof(val));

	bpf_map_update_elem(&out, &k0, &ret, 0);
	bpf_map_update_elem(&out, &k1, &word, 0);
	return 0;
}
"""


@pytest.fixture(scope="module")
def obj_path(tmp_path_factory):
    from uringbpf.bpf import cc
    d = tmp_path_factory.mktemp("guard")
    (d / "poke.bpf.c").write_text(PROGRAM)
    return cc.compile_c(d / "poke.bpf.c", d / "poke.o")


@pytest.mark.parametrize("engine", ["interp", "jit"])
@pytest.mark.parametrize("native", [True, False])
def test_copy_to_user_onto_the_bpf_stack_fails(obj_path, engine, native):
    from uringbpf.bpf.object import BpfObject
    from uringbpf.designs.requests import Ring

    obj = BpfObject.open(obj_path)
    obj.load(engine=engine, strict_engine=True)
    ring = Ring(8, nr_cq=1, cq_sizes=[16], native=native)
    try:
        assert ring.register_bpf([obj.programs["poke"]]) == 0
        ring.prep_bpf(0, user_data=7)
        ring.submit()
        ring.wait_cqe_nr(1)
        arr = obj.maps["out"]
        assert arr.lookup_int(0) == (-errno.EFAULT) & (2**64 - 1)
        assert arr.lookup_int(1) == 0x1111                 # its own stack is untouched
    finally:
        ring.close()
        obj.close()
