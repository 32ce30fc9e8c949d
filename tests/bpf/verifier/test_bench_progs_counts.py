"""The socket filters of bench/progs that process >= 100k instructions (#19): ours and the
running kernel's verdict and processed count are equal.

bench/load.py times them against ``bpftool prog load``; equal counts are what make that a
comparison of the same work (the kernel's state pruning, precision and checkpoint
bookkeeping), and each program is another shape: a byte histogram, a data-dependent branch
per iteration, nested loops, a map lookup with a NULL check per iteration (which hit the
1M limit before the precision of #19), spills and fills per iteration.
"""

from __future__ import annotations

import pathlib
import re
import sys

import pytest

import kernel_bpf
from uringbpf.bpf import cc, verifier
from uringbpf.bpf.object import BpfObject

BENCH = pathlib.Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))
import load  # noqa: E402  (bench/load.py: the programs it times against the kernel)

PROGS = BENCH / "progs"
#: every socket filter bench/load.py times that both accept (crc32c_4k: both refuse)
NAMES = ["histogram_64k", *load.MORE_PROGRAMS]


def _kernel_processed(obj: BpfObject) -> int:
    prog = obj.programs[next(iter(obj.programs))].program
    fd, log = kernel_bpf.prog_load_with_maps(prog.insns, prog.maps)
    assert fd >= 0, log[-300:]
    return int(re.search(r"processed (\d+) insns", log).group(1))


@pytest.mark.parametrize("name", NAMES)
def test_bench_program_processes_the_kernels_count(name):
    if (why := kernel_bpf.available()) is not None:
        pytest.fail(f"bpf(2) is needed to compare with the kernel: {why}")
    obj = BpfObject.open(cc.compile_cached(PROGS / f"{name}.bpf.c"))
    try:
        (program,) = obj.prepare()
        ours = verifier.verify(program).processed_insns
        assert ours >= 100_000
        assert ours == _kernel_processed(obj)
    finally:
        obj.close()
