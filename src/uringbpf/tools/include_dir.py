"""``uringbpf include-dir``: where uringbpf's BPF C headers are (for -I in other builds)."""

from __future__ import annotations

import argparse

from ..bpf.cc import include_dir

HELP = "print the directory of uringbpf's BPF C headers"
DESCRIPTION = """\
Print the directory holding uringbpf's self-contained BPF headers (vmlinux.h,
bpf/bpf_helpers.h, the io_uring UAPI...), for builds that call their own compiler:

  clang -target bpf -O2 -g -I "$(uringbpf include-dir)" -c prog.bpf.c -o prog.bpf.o"""


def configure(p: argparse.ArgumentParser) -> None:
    """No arguments."""


def run(args: argparse.Namespace) -> int:
    """Print the include directory."""

    print(include_dir())
    return 0
