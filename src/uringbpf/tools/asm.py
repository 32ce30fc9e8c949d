"""``uringbpf asm``: assemble eBPF text into raw bytecode."""

from __future__ import annotations

import argparse
import sys

from ..bpf.asm import AsmError, assemble_bytes
from .common import CommandError, exists_dir_for, read_input, write_output

HELP = "assemble eBPF assembly (kernel or uBPF dialect) to raw bytecode"
DESCRIPTION = """\
Assemble eBPF text into raw 8-byte instruction slots. Both dialects are accepted line
by line: the kernel's (r0 = *(u32 *)(r1 + 4), what 'uringbpf disasm' prints) and the
uBPF/bpf_conformance one (ldxw %r0, [%r1+4]). See uringbpf.bpf.asm for the syntax.

Output: raw bytes to OUT, or to stdout when it is not a terminal; hex pairs (the
bpf_conformance format) with --hex or when stdout is a terminal."""


def configure(p: argparse.ArgumentParser) -> None:
    """Arguments of ``uringbpf asm``."""
    p.add_argument("file", help="assembly source ('-' for stdin)")
    p.add_argument("-o", "--output", metavar="OUT", help="write the bytecode here")
    p.add_argument("--hex", action="store_true",
                   help="write hex pairs instead of raw bytes (bpf_conformance style)")


def run(args: argparse.Namespace) -> int:
    """Assemble ``args.file``."""

    text = read_input(args.file, text=True)
    where = "<stdin>" if args.file == "-" else args.file
    try:
        code = assemble_bytes(text)
    except AsmError as exc:
        raise CommandError(f"{where}: {exc}") from None
    if args.output:
        exists_dir_for(args.output)
    if args.hex or not args.output and sys.stdout.isatty():
        out = " ".join(f"{b:02x}" for b in code) + "\n"
        if args.output:
            write_output(args.output, out)
        else:
            sys.stdout.write(out)
    elif args.output:
        write_output(args.output, code)
    else:
        sys.stdout.buffer.write(code)
    return 0
