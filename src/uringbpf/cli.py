"""The ``uringbpf`` command.

Each subcommand lives in the module that owns it, as ``main(argv) -> int``; this file
only dispatches, so subcommands can be added without touching one another.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "cc": ("uringbpf.bpf.cc", "compile BPF C to an ELF object (clang or ziglang)"),
    "include-dir": ("uringbpf.bpf.cc", "print the directory of uringbpf's BPF C headers"),
    "disasm": ("uringbpf.bpf.disasm", "disassemble the programs of an object or raw bytecode"),
    "asm": ("uringbpf.bpf.asm", "assemble uBPF-dialect assembly to raw bytecode"),
    "verify": ("uringbpf.bpf.verifier", "verify the programs of an object"),
    "run": ("uringbpf.bpf.run", "run one program on a data buffer (like bpftool prog run)"),
    "conformance-plugin": ("uringbpf.bpf.conformance", "bpf_conformance plugin protocol"),
    "demo": ("uringbpf.demo", "the main demo"),
    "bench": ("uringbpf.benchcli", "run the benchmarks in bench/"),
}


def usage() -> str:
    lines = ["usage: uringbpf COMMAND [ARGS...]", "", "commands:"]
    for name, (_, text) in COMMANDS.items():
        lines.append(f"  {name:<20} {text}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"uringbpf: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    entry = getattr(module, "main_" + name.replace("-", "_"), None) or getattr(module, "main")
    return int(entry(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
