"""``uringbpf run``: a C program compiled by ``uringbpf cc`` run on a data buffer."""

from __future__ import annotations

import re

import pytest

from uringbpf.bpf import cc
from uringbpf.bpf.run import run_program
from uringbpf.tools import main as cli_main

SOURCE = r"""
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";

SEC("socket")
int sum8(unsigned char *data, unsigned long len)
{
	unsigned int s = 0;
	if (len < 8)
		return -1;
	for (int i = 0; i < 8; i++)
		s += data[i];
	data[0] = (unsigned char)s;
	return s;
}

SEC("socket")
int unchecked(unsigned char *data, unsigned long len)
{
	return data[100];
}
"""


@pytest.fixture(scope="module")
def obj(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    src = d / "sum.bpf.c"
    src.write_text(SOURCE)
    out = d / "sum.bpf.o"
    cc.compile_c(src, out, cpu="v3")
    return out


def _parse(text: str) -> tuple[int, float, int, str]:
    m = re.search(r"Return value: (\d+) \(0x[0-9a-f]+\), duration \(average\): (\d+) ns, "
                  r"runs: (\d+), engine: (\w+)", text)
    assert m, text
    return int(m.group(1)), float(m.group(2)), int(m.group(3)), m.group(4)


@pytest.mark.parametrize("engine", ["--jit", "--interp"])
def test_run_repeats_on_the_same_buffer(obj, tmp_path, capsys, engine):
    data_in = tmp_path / "in.bin"
    data_in.write_bytes(bytes(range(1, 10)))
    data_out = tmp_path / "out.bin"
    rc = cli_main(["run", str(obj), "--prog", "sum8", "--data-in", str(data_in),
                   "--data-out", str(data_out), "--repeat", "3", engine])
    assert rc == 0
    retval, avg_ns, runs, used = _parse(capsys.readouterr().out)
    # 1+..+8 = 36; each run stores its sum in data[0] (36 -> 71 -> 106).
    assert (retval, runs, used) == (106, 3, engine[2:])
    assert avg_ns > 0
    assert data_out.read_bytes() == bytes([106]) + bytes(range(2, 10))


def test_short_buffer_takes_the_guarded_path(obj, capsys):
    assert cli_main(["run", str(obj), "--prog", "sum8", "--data-size", "4"]) == 0
    assert _parse(capsys.readouterr().out)[0] == 0xFFFFFFFF


def test_jit_and_interpreter_agree_over_many_runs(obj):
    data = bytes(range(200, 216))
    jit = run_program(obj, "sum8", data, repeat=50, engine="jit", strict_engine=True)
    interp = run_program(obj, "sum8", data, repeat=50, engine="interp")
    assert jit.engine == "jit" and interp.engine == "interp"
    assert jit.retval == interp.retval and jit.data_out == interp.data_out
    assert jit.runs == interp.runs == 50


def test_failing_runs_stop_with_the_error(obj):
    for engine in ("jit", "interp"):
        with pytest.raises(Exception, match="out of bounds memory load of 1 bytes"):
            run_program(obj, "unchecked", bytes(16), repeat=100000, engine=engine,
                        verify=False, checked=True)
