"""``uringbpf cc``: compile BPF C into an ELF object (see :mod:`uringbpf.bpf.cc`)."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from ..bpf.cc import CPU_VERSIONS, compile_c
from .common import CommandError, exists_dir_for, write_output

HELP = "compile BPF C to an ELF object (system clang, else the ziglang package)"
DESCRIPTION = """\
Compile one BPF C file into an eBPF ELF object (-O2 -g, with BTF), ready for
'uringbpf verify', 'uringbpf run' or BpfObject.open().

The source is always compiled as C (-x c), whatever its name. Headers come from
uringbpf's own include directory ('uringbpf include-dir': vmlinux.h, bpf_helpers.h,
liburing-style headers...) and never from /usr/include.

Compiler: a system clang that can emit BPF for --cpu is preferred; otherwise the
clang bundled in the 'ziglang' package (pip install 'uringbpf[cc]'). Set
URINGBPF_CLANG to pick a clang binary, URINGBPF_CC=clang|zig to force one."""


def configure(p: argparse.ArgumentParser) -> None:
    """Arguments of ``uringbpf cc``."""

    p.add_argument("source", help="BPF C source file")
    p.add_argument("-o", dest="output", metavar="OUT",
                   help="output object (default: SOURCE with its suffix replaced by .o); "
                        "its directory must exist")
    p.add_argument("--cpu", "-mcpu", default="v3", choices=CPU_VERSIONS,
                   help="BPF instruction set version to target (default v3; v4 adds "
                        "sign-extending loads, byte swaps and 32-bit jumps and needs "
                        "clang >= 18 or ziglang)")
    p.add_argument("-I", dest="includes", action="append", default=[], metavar="DIR",
                   help="add DIR to the header search path, before uringbpf's headers "
                        "(repeatable)")
    p.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME[=VALUE]",
                   help="define a preprocessor macro (repeatable)")
    p.add_argument("--compiler", choices=("clang", "zig"), default=None,
                   help="use this compiler only: 'clang' (a system clang) or 'zig' (the "
                        "ziglang package); default: clang if it can, else zig")


def run(args: argparse.Namespace) -> int:
    """Compile ``args.source``; 0 when the object was written."""


    src = Path(args.source)
    if src.is_dir():
        raise CommandError(f"{src}: is a directory")
    if not src.exists():
        raise CommandError(f"{src}: no such file")
    with open(src, "rb") as f:
        head = f.read(1 << 16)
    if not head.strip():
        raise CommandError(f"{src}: empty file")
    if b"\0" in head:   # a compiler would print pages of "null character ignored"
        raise CommandError(f"{src}: not C source (binary data"
                           + (", an ELF object)" if head[:4] == b"\x7fELF" else ")"))
    out = args.output or str(src.with_suffix(".o"))
    if Path(out).resolve() == src.resolve():
        raise CommandError(f"{out}: output would overwrite the source")
    exists_dir_for(out)
    kw = dict(cpu=args.cpu, include_dirs=args.includes, defines=args.defines,
              compiler=args.compiler)
    if os.path.exists(out) and not os.path.isfile(out):
        # a device, FIFO or /dev/stdout: compilers write a temporary file and rename it
        # over the output, which would replace the device node (as root: /dev/full became
        # a regular file, "written" with status 0). Compile aside, then write into it.
        with tempfile.TemporaryDirectory(prefix="uringbpf-cc-") as tmp:
            obj = Path(compile_c(src, Path(tmp) / "out.o", **kw)).read_bytes()
        write_output(out, obj)
        return 0
    compile_c(src, out, **kw)
    return 0
