"""Frozen ``.rodata`` read as constants (like the kernel's verifier), end to end.

``BpfObject.load`` freezes ``.rodata`` before verifying, so a load from it at a constant
offset gives the value stored there: an index or size kept in a ``const volatile`` global
verifies like a literal.  Writable globals stay unknown.
"""

from __future__ import annotations

import pytest

from uringbpf.bpf import cc
from uringbpf.bpf.object import BpfObject
from uringbpf.bpf.verifier import BpfVerifierError

SOURCE = r"""
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 idx = 3;        /* .rodata: frozen at load */
volatile __u32 idx_rw = 3;           /* .data: writable, never a constant */
__u64 table[8] = {10, 11, 12, 13, 14, 15, 16, 17};

SEC("syscall")
int by_rodata(void *ctx)
{
	return table[idx];               /* no bounds check: the verifier knows idx */
}

SEC("syscall")
int by_data(void *ctx)
{
	return table[idx_rw];
}
"""


@pytest.fixture(scope="module")
def objfile(tmp_path_factory):
    d = tmp_path_factory.mktemp("rodata")
    src = d / "rodata.bpf.c"
    src.write_text(SOURCE)
    return cc.compile_c(src, d / "rodata.bpf.o")


def _load(objfile, idx: int, progs: tuple[str, ...]):
    obj = BpfObject.open(objfile)
    for name, p in obj.programs.items():
        p.autoload = name in progs
    obj.rodata.idx = idx
    return obj


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_rodata_index_is_a_constant(objfile, engine):
    for idx in (0, 3, 7):
        obj = _load(objfile, idx, ("by_rodata",))
        obj.load(engine=engine)            # verified
        assert obj.programs["by_rodata"]() == 10 + idx
        obj.close()


def test_rodata_index_out_of_range_is_refused(objfile):
    obj = _load(objfile, 8, ("by_rodata",))
    with pytest.raises(BpfVerifierError, match="invalid access to map value"):
        obj.load(engine="interp")
    obj.close()


def test_writable_global_is_not_a_constant(objfile):
    obj = _load(objfile, 3, ("by_data",))
    with pytest.raises(BpfVerifierError, match="unbounded memory access|max value is outside"):
        obj.load(engine="interp")
    obj.close()
