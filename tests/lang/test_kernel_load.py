"""The object uringbpf.lang writes is a standard one: the running kernel loads it through
bpftool/libbpf, BTF included (this kernel has socket filters; io_uring struct_ops it lacks)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import lang_kernel_prog as K

BPFFS = "/sys/fs/bpf"


@pytest.mark.skipif(shutil.which("bpftool") is None or not os.path.isdir(BPFFS) or os.geteuid() != 0,
                    reason="needs bpftool, a mounted bpffs and root")
def test_kernel_loads_python_written_object(tmp_path):
    obj = K.bpf.emit_obj(tmp_path / "kprog.bpf.o")
    pin = f"{BPFFS}/uringbpf-lang-test-{os.getpid()}"
    try:
        r = subprocess.run(["bpftool", "prog", "load", obj, pin], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        assert "Error loading .BTF" not in r.stderr      # the kernel accepted our BTF too
        show = subprocess.run(["bpftool", "prog", "show", "pinned", pin], capture_output=True,
                              text=True, timeout=60).stdout
        assert "socket_filter" in show and "name kprog" in show
    finally:
        if os.path.exists(pin):
            os.unlink(pin)
    # and our own engines agree with the application run
    assert K.kprog.run(b"") == K.kprog.run_in_app(b"") == 0
