"""bpf_conformance support: the plugin protocol and the ``.data`` test format.

The plugin (``uringbpf conformance-plugin``, :mod:`uringbpf.tools.conformance`) speaks the protocol the bpf_conformance
runner uses for every runtime it measures:

* argv: ``[MEMORY-HEX] [--program HEX] [--jit | --interpret] [--elf]`` — the optional
  first argument is the program's memory as hex bytes separated by spaces;
* stdin: the program as one line of hex bytes (unless ``--program`` gave it);
* stdout: r0 in hex and exit status 0, or an error message and a non-zero status.

The program runs with r1 = address of a copy of the memory (0 when there is none),
r2 = its length, r10 = top of a 512-byte frame.  Helpers are the uBPF test set the
suite was written against (0 gather_bytes, 1 memfrob, 2 no_op, 3 sqrti, 4 strcmp_ext,
5 unwind — unwind returns its argument and a zero result stops the program).

The ``.data`` parser follows the upstream parser's rules (section lines contain
``--``; ``#`` starts a comment; the last line of ``-- result``/``-- error`` counts;
unknown directives make a file skipped) so our runner judges files as upstream does.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import elf as elf_mod
from . import engines, isa
from .asm import assemble
from .helpers import Runtime
from .interp import Interpreter
from .object import BpfObject
from .memory import AddressSpace, BpfRuntimeError, Buffer

__all__ = [
    "DataTest", "parse_data_file", "parse_data_text", "required_cpu_version", "required_groups",
    "run_bytecode", "execute", "judge", "plugin_helpers", "decode_hex", "PluginError",
]


from ..errors import PluginError  # noqa: E402,F401  (defined in uringbpf.errors)


# ---------------------------------------------------------------------------------------
# Helpers of the conformance test plugin (uBPF's test set, our own implementations)


@dataclass
class _PluginHelper:
    name: str
    impl: Callable[..., int]


def _gather_bytes(rt, a, b, c, d, e):
    return ((a & 0xFF) << 32) | ((b & 0xFF) << 24) | ((c & 0xFF) << 16) | ((d & 0xFF) << 8) | (e & 0xFF)


def _memfrob(rt, ptr, n, *_):
    data = rt.mem.read(ptr, n)
    rt.mem.write(ptr, bytes(x ^ 42 for x in data))
    return 0


def _no_op(rt, *_):
    return 0


def _sqrti(rt, x, *_):
    return math.isqrt(x)


def _cstring(rt, addr: int) -> bytes:
    out = bytearray()
    while True:
        b = rt.mem.load(addr + len(out), 1)
        if b == 0:
            return bytes(out)
        out.append(b)


def _strcmp_ext(rt, a, b, *_):
    x, y = _cstring(rt, a), _cstring(rt, b)
    return 0 if x == y else (1 if x > y else isa.U64)


def _unwind(rt, x, *_):
    return x


def plugin_helpers() -> dict[int, _PluginHelper]:
    """The helper table the conformance plugin runs programs with."""
    return {
        0: _PluginHelper("gather_bytes", _gather_bytes),
        1: _PluginHelper("memfrob", _memfrob),
        2: _PluginHelper("no_op", _no_op),
        3: _PluginHelper("sqrti", _sqrti),
        4: _PluginHelper("strcmp_ext", _strcmp_ext),
        5: _PluginHelper("unwind", _unwind),
    }


UNWIND_HELPER = 5


# ---------------------------------------------------------------------------------------
# Running one program the way the plugin does


def _runtime_with_memory(mem: bytes):
    runtime = Runtime(mem=AddressSpace())
    buf = None
    if mem:
        buf = Buffer(len(mem), mem)
        runtime.mem.add_buffer(buf, True, "mem")
    return runtime, buf


def run_bytecode(code: bytes, mem: bytes = b"", engine: str = "interp",
                 max_insns: int = 10_000_000) -> int:
    """Run raw bytecode on a copy of ``mem`` as the plugin does; returns r0.

    Raises :class:`PluginError` (bad program) or :class:`BpfRuntimeError` (run-time fault).
    """
    try:
        insns = isa.decode(code)
    except isa.DecodeError as exc:
        raise PluginError(str(exc)) from None
    if not insns:
        raise PluginError("empty program")
    program = isa.Program("main", insns, section=".text")
    runtime, buf = _runtime_with_memory(mem)
    r1 = buf.addr if buf is not None else 0
    r2 = len(mem)
    if engine == "jit":
        return _run_jit(program, runtime, r1, r2)
    vm = Interpreter(program, runtime, helpers=plugin_helpers(), unwind_helper=UNWIND_HELPER,
                     max_insns=max_insns)
    return vm.run(r1, r2)


def _run_jit(program, runtime, r1: int, r2: int) -> int:
    # No verifier runs here, so the JIT must bounds-check like the interpreter does:
    # a conformance test that faults has to fail with a message, not crash the plugin.
    fn = engines.jit_module().compile(program, runtime, checked=True,
                                      helpers=plugin_helpers(), unwind_helper=UNWIND_HELPER)
    return int(fn(r1, r2)) & isa.U64


def decode_hex(text: str) -> bytes:
    """Bytes from hex pairs separated by white space; other tokens are ignored."""
    out = bytearray()
    for tok in text.split():
        try:
            out.append(int(tok, 16) & 0xFF)
        except ValueError:
            continue  # like the reference plugins: ignore what is not a hex byte
    return bytes(out)


def _load_elf_program(data: bytes) -> bytes:
    """The bytecode of the program in an ELF the runner built (``--elf``).

    The runner writes one function (``main``) into ``.text`` or ``xdp``.  Programs in
    named sections come from the loader (relocated); libbpf treats ``.text`` as
    subprograms only, so a lone ``.text`` function is taken from the section as is.
    """
    obj = BpfObject.from_bytes(bytes(data), "<conformance-plugin --elf>")
    try:
        progs = obj.programs
        progs = list(progs.values()) if isinstance(progs, dict) else list(progs)
        if progs:
            prog = getattr(progs[0], "program", progs[0])
            return isa.encode(prog.insns)
    finally:
        obj.close()
    text = elf_mod.parse(bytes(data), "<conformance-plugin --elf>").section(".text")
    if text is None or not text.data:
        raise PluginError("ELF file has no program")
    return bytes(text.data)


def execute(code: bytes, memory: bytes, engine: str = "interp", is_elf: bool = False) -> tuple[int, str]:
    """What the plugin would answer: (exit status, stdout text).  Used in-process by tests."""
    try:
        if is_elf:
            code = _load_elf_program(code)
        result = run_bytecode(code, memory, engine)
    except (PluginError, BpfRuntimeError) as exc:
        return 1, f"{exc}\n"
    except Exception as exc:  # why: the conformance plugin protocol reports any failure as text, never a traceback
        return 1, f"{type(exc).__name__}: {exc}\n"
    return 0, f"{result:x}\n"


# ---------------------------------------------------------------------------------------
# The .data format


@dataclass
class DataTest:
    """One parsed ``.data`` file."""

    path: str
    asm: str = ""
    raw: list[int] = field(default_factory=list)
    mem: bytes = b""
    result: int | None = None
    error: str | None = None
    skip: str | None = None        # why the upstream runner would skip this file

    def program(self) -> list[isa.Insn]:
        """The instructions (``-- raw`` wins over ``-- asm``)."""
        if self.raw:
            code = b"".join((v & isa.U64).to_bytes(8, "little") for v in self.raw)
            return isa.decode(code)
        # Immediates wider than 32 bits keep their low 32 bits, as upstream's assembler does.
        return assemble(self.asm, truncate_wide_imm=True)

    def bytecode(self) -> bytes:
        """The test's program as raw bytes (its ``-- raw`` section, else its assembled ``--
        asm``)."""
        if self.raw:
            return b"".join((v & isa.U64).to_bytes(8, "little") for v in self.raw)
        return isa.encode(self.program())


def parse_data_text(text: str, path: str = "<text>") -> DataTest:
    """Parse the text of a bpf_conformance ``.data`` file (``path`` names it in messages)."""
    test = DataTest(path)
    state = None
    asm_lines: list[str] = []
    result_line = ""
    error_line = ""
    mem_text = ""
    raw_text = ""
    for line in text.splitlines():
        line = line.rstrip("\r")
        if "#" in line:
            line = line[: line.index("#")]
        if "--" in line:
            if "asm" in line:
                state = "asm"
            elif "result" in line:
                state = "result"
            elif "mem" in line:
                state = "mem"
            elif "raw" in line:
                state = "raw"
            elif "no register offset" in line or " c" in line:
                state = None
            elif "error" in line:
                state = "error"
            else:
                test.skip = f"unknown directive {line.strip()!r}"
                return test
            continue
        if not line:
            continue
        if state == "asm":
            asm_lines.append(line)
        elif state == "result":
            result_line = line
        elif state == "mem":
            mem_text += " " + line
        elif state == "error":
            error_line = line
        elif state == "raw":
            raw_text += " " + line
    test.asm = "\n".join(asm_lines)
    if not error_line.strip() and not result_line.strip():
        test.skip = "no result or error"
        return test
    r = result_line.strip()
    if r:
        test.result = (int(r, 16) if "0x" in r else int(r)) & isa.U64
    else:
        test.result = 0
    test.error = error_line if error_line.strip() else None
    if raw_text.strip():
        test.raw = [int(t, 16) if t.startswith("0x") else int(t) for t in raw_text.split()]
    if mem_text.strip():
        mem = bytearray()
        for tok in mem_text.split():
            if tok.endswith(":"):  # hexdump-style offsets
                continue
            mem.append(int(tok, 16) & 0xFF)
        test.mem = bytes(mem)
    if not test.raw and not test.asm.strip():
        test.skip = "no instructions"
    return test


def parse_data_file(path: str | os.PathLike) -> DataTest:
    """Parse the bpf_conformance ``.data`` file at ``path``."""
    return parse_data_text(Path(path).read_text(encoding="utf-8", errors="replace"), str(path))


def _slots(insns: list[isa.Insn]):
    skip = False
    for insn in insns:
        if skip:
            skip = False
            continue
        skip = insn.is_lddw
        yield insn


def required_cpu_version(insns: list[isa.Insn]) -> int:
    """The lowest BPF ISA version (1-4) that has every instruction of ``insns``."""
    return max((isa.cpu_version_needed(i) for i in _slots(insns)), default=1)


def required_groups(insns: list[isa.Insn]) -> set[str]:
    """The conformance groups (base32, base64, atomic32...) ``insns`` use."""
    return {isa.conformance_group(i) for i in _slots(insns)}


_WS_TAIL = re.compile(r"\s+$")


def judge(test: DataTest, exit_code: int, stdout: str, stderr: str) -> tuple[bool, str]:
    """Compare a plugin's answer with the test's expectation, as the upstream runner does."""
    out = stdout[:-1] if stdout.endswith("\n") else stdout
    err = stderr[:-1] if stderr.endswith("\n") else stderr
    if exit_code != 0:
        if not out and err:
            out = err
        if test.error is None:
            return False, f"plugin failed ({exit_code}): {out}"
        out = out.split("\r", 1)[0]
        out = _WS_TAIL.sub("", out)
        if out == test.error:
            return True, ""
        return False, f"plugin failed with {out!r}, expected error {test.error!r}"
    try:
        value = int(out.strip(), 16)
    except ValueError:
        return False, f"plugin output {out!r} is not a hex number"
    if value != test.result:
        return False, f"returned {value:#x}, expected {test.result:#x}"
    return True, ""
