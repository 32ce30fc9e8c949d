"""Objects the CLI tests share: one socket-filter object and one struct_ops object."""

from __future__ import annotations

import pytest

SOCKET_SOURCE = r"""
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";

const volatile unsigned int need = 8;   /* a .rodata constant: frozen by load() and verify */

SEC("socket")
int sum8(unsigned char *data, unsigned long len)
{
	unsigned int s = 0;
	if (len < 8)
		return -1;
	for (int i = 0; i < 8; i++)
		s += data[i];
	return s;
}

SEC("socket")
int unchecked(unsigned char *data, unsigned long len)
{
	return data[100];
}

SEC("socket")
int rodata_bound(unsigned char *data, unsigned long len)
{
	if (len < need)
		return 0;
	return data[7];
}
"""


@pytest.fixture(scope="session")
def socket_obj(tmp_path_factory):
    """A compiled object with three socket programs (one the verifier refuses)."""
    from uringbpf.bpf import cc

    d = tmp_path_factory.mktemp("cli")
    src = d / "progs.bpf.c"
    src.write_text(SOCKET_SOURCE)
    return cc.compile_c(src, d / "progs.bpf.o")


@pytest.fixture(scope="session")
def struct_ops_obj():
    """The loop design's nops example: a loop_step struct_ops program."""
    from uringbpf.designs import loop

    return loop.example_object("nops")


@pytest.fixture
def cli(capsys):
    """Run ``uringbpf ARGS`` in-process: returns (status, stdout, stderr)."""
    from uringbpf.tools import main

    def call(*args: str) -> tuple[int, str, str]:
        status = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return status, out, err

    return call
