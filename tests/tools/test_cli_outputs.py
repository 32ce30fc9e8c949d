"""Outputs and inputs that are not plain files: devices, FIFOs, endless or huge inputs,
symlink loops. One line naming the path, the documented status, and a device or FIFO
given as the output stays what it is (compilers rename a temporary file over their
output: as root that turned /dev/full into a regular file, with status 0)."""

from __future__ import annotations

import errno
import os
import stat
import threading

import pytest

SOURCE = """
#include <linux/bpf.h>
char LICENSE[] __attribute__((section("license"))) = "GPL";
__attribute__((section("socket"), used)) int prog(void *ctx) { return 7; }
"""


def test_cc_into_a_fifo_writes_into_it(cli, tmp_path):
    src = tmp_path / "p.bpf.c"
    src.write_text(SOURCE)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    try:
        status, _, err = cli("cc", src, "-o", fifo)
    finally:
        if reader.is_alive():
            # cc failed before opening it: unblock the reader.  Never a blocking open: the
            # reader may still be ending after reading cc's output, and a writer's open of
            # a FIFO nobody reads waits forever (it hung the suite once); a non-blocking
            # one fails with ENXIO instead, which then means the reader is done.
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError as e:
                if e.errno != errno.ENXIO:
                    raise
        reader.join(30)
    assert status == 0, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)          # not replaced by a regular file
    assert got and got[0][:4] == b"\x7fELF"


@pytest.mark.parametrize("args", [
    ["asm", "{s}", "-o", "/dev/full"],
    ["asm", "{s}", "--hex", "-o", "/dev/full"],
    ["vmlinux", "--design", "loop", "-o", "/dev/full"],
])
def test_write_errors_name_the_output(cli, tmp_path, args):
    s = tmp_path / "p.s"
    s.write_text("r0 = 1\nexit\n")
    status, _, err = cli(*[a.format(s=s) for a in args])
    assert status == 1
    assert err.strip().endswith("/dev/full: No space left on device"), err
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_endless_input_is_refused(cli):
    status, _, err = cli("asm", "/dev/zero", "-o", "/dev/null")
    assert status == 1 and "/dev/zero: more than" in err, err


def test_huge_sparse_object_is_refused_before_reading(cli, tmp_path):
    big = tmp_path / "big.o"
    with open(big, "wb") as f:
        f.write(b"\x7fELF")
        f.truncate(300 << 20)
    for cmd in ("verify", "disasm"):
        status, _, err = cli(cmd, big)
        assert status == 1 and f"{big}: more than" in err, (cmd, err)


def test_symlink_loop_and_io_error_are_one_line_with_the_path(cli, tmp_path):
    a, b = tmp_path / "a.o", tmp_path / "b.o"
    a.symlink_to(b)
    b.symlink_to(a)
    for cmd in ("verify", "disasm", "run"):
        status, _, err = cli(cmd, a)
        assert status == 1 and err.strip() == \
            f"uringbpf {cmd}: {a}: Too many levels of symbolic links", err
    status, _, err = cli("verify", "/proc/self/mem")
    assert status == 1 and err.strip() == "uringbpf verify: /proc/self/mem: Input/output error"


def test_conformance_plugin_endless_stdin_is_refused():
    """The plugin reads its program as one stdin line: `< /dev/zero` has none."""
    import subprocess
    import sys

    with open("/dev/zero", "rb") as zero:
        proc = subprocess.run([sys.executable, "-m", "uringbpf", "conformance-plugin"],
                              stdin=zero, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("uringbpf conformance-plugin: <stdin>: a program line "
                                   "longer than 33554432 characters")
