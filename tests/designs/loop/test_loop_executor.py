"""``executor=`` through designs/loop's helpers and the examples/loop scripts' ``--executor``.

On this host (no ``struct io_uring_bpf_ops`` in its BTF) ``"auto"`` must pick the
emulation and ``"kernel"`` must refuse with the kernel executor's error; the real-kernel
side is checked in the Linux 7.2 guest (tests/kernel/cases.py, ``example_*`` cases).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from uringbpf.bpf import kernel_exec
from uringbpf.bpf.elf import BpfLoadError
from uringbpf.designs import loop

EXAMPLES = Path(loop.__file__).resolve().parent / "examples"
DATA = bytes((i * 31 + i // 97) & 0xFF for i in range(70_000))


def _copy(tmp_path: Path, **kw) -> tuple[loop.CopyResult, bytes]:
    src, dst = tmp_path / "in", tmp_path / "out"
    src.write_bytes(DATA)
    in_fd = os.open(src, os.O_RDONLY)
    out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        res = loop.copy_fd(in_fd, out_fd, engine="interp", **kw)
    finally:
        os.close(in_fd)
        os.close(out_fd)
    return res, dst.read_bytes()


@pytest.mark.parametrize("checksum", [False, True])
def test_copy_fd_auto_follows_the_running_kernel(tmp_path, checksum):
    res, out = _copy(tmp_path, checksum=checksum, executor="auto")
    assert out == DATA and res.copied == len(DATA) and res.done
    assert (res.engine == "kernel") == kernel_exec.has_loop_ops()
    if checksum:
        assert res.fnv1a == loop.fnv1a32(DATA)


def test_copy_fd_kernel_executor_without_loop_ops_refuses(tmp_path):
    if kernel_exec.has_loop_ops():
        res, out = _copy(tmp_path, executor="kernel", depth=2)
        assert out == DATA and res.engine == "kernel"
        return
    with pytest.raises(BpfLoadError, match="io_uring_bpf_ops"):
        _copy(tmp_path, executor="kernel")


def test_open_example_rejects_an_unknown_executor():
    ring = loop.make_ring(8)
    try:
        with pytest.raises(ValueError):
            loop.open_example("nops", ring, engine="interp", executor="gpu")
    finally:
        ring.close()


def _script(name: str, *args: str) -> str:
    out = subprocess.run([sys.executable, str(EXAMPLES / name), *args], check=True,
                         capture_output=True, text=True)
    return out.stdout


def test_cp_script_output_is_the_same_with_auto_and_emulated(tmp_path):
    (tmp_path / "in").write_bytes(DATA)
    a = _script("cp.py", str(tmp_path / "in"), str(tmp_path / "o1"), "--chunk", "8192",
                "--depth", "3", "--engine", "interp", "--executor", "emulated")
    b = _script("cp.py", str(tmp_path / "in"), str(tmp_path / "o2"), "--chunk", "8192",
                "--depth", "3", "--engine", "interp", "--executor", "auto")
    assert (tmp_path / "o1").read_bytes() == (tmp_path / "o2").read_bytes() == DATA
    if not kernel_exec.has_loop_ops():
        assert a == b
    assert a.startswith(f"copied {len(DATA)} bytes in ") and "depth=3" in a
