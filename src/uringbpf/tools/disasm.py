"""``uringbpf disasm``: list the instructions of an object's programs or of raw bytecode."""

from __future__ import annotations

import argparse
import sys

from ..bpf import isa
from ..bpf.disasm import disassemble
from .common import CommandError, choose_programs, open_object, read_input

HELP = "disassemble the programs of an ELF object, raw bytecode or hex text"
DESCRIPTION = """\
Print the instructions of eBPF code in the kernel's notation (what bpftool and
llvm-objdump print; --style ubpf for the uBPF/bpf_conformance dialect). The listing
assembles back with 'uringbpf asm'.

FILE is one of:
  an ELF object     one listing per program, after relocation (as the loader sees it)
  raw bytecode      8-byte instruction slots
  hex text          bytes as hex pairs separated by white space
  -                 any of the above on stdin"""


def configure(p: argparse.ArgumentParser) -> None:
    """Arguments of ``uringbpf disasm``."""
    p.add_argument("file", help="ELF object, raw bytecode or hex text ('-' for stdin)")
    p.add_argument("--prog", action="append", metavar="NAME",
                   help="ELF objects: only this program (repeatable; default all)")
    p.add_argument("--style", choices=("kernel", "ubpf"), default="kernel",
                   help="notation: kernel (bpftool/llvm-objdump, default) or ubpf")
    p.add_argument("--bytes", action="store_true", help="show each instruction's bytes")


def _hex_or_raw(data: bytes) -> bytes:
    """Hex text becomes bytes; anything else is taken as raw bytecode."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return data
    if text.strip() and all(c in "0123456789abcdefABCDEFx \t\r\n" for c in text):
        try:
            return bytes(int(t, 16) for t in text.split())
        except ValueError:
            raise CommandError("hex text: every item must be one byte (two hex digits)") \
                from None
    return data


def run(args: argparse.Namespace) -> int:
    """Disassemble ``args.file`` to stdout."""

    data = read_input(args.file)
    if data[:4] == b"\x7fELF":
        if args.file == "-":
            raise CommandError("ELF objects must be given as a file, not on stdin")
        obj = open_object(args.file)
        try:
            names = choose_programs(args.file, obj.programs, args.prog)
            for name in names:
                program = obj.programs[name].program
                section = program.section
                sys.stdout.write(f"{name}:  ; section {section}\n" if section else f"{name}:\n")
                sys.stdout.write(disassemble(program.insns, args.style, show_bytes=args.bytes))
                sys.stdout.write("\n")
        finally:
            obj.close()
        return 0
    if args.prog:
        raise CommandError(f"{args.file}: --prog needs an ELF object (this is raw bytecode)")
    where = "<stdin>" if args.file == "-" else args.file
    try:
        insns = isa.decode(_hex_or_raw(data))
    except isa.DecodeError as exc:
        raise CommandError(f"{where}: {exc}") from None
    except CommandError as exc:
        raise CommandError(f"{where}: {exc}") from None
    sys.stdout.write(disassemble(insns, args.style, show_bytes=args.bytes))
    return 0
