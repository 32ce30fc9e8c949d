"""Instruction -> Python line, from the ``.BTF.ext`` line info LLVM writes.

LLVM records, per code section, ``(insn byte offset, file, line, column)`` for every
instruction that starts a new source position.  The loader places a program's function
first and then every subprogram it calls, each copied whole, so a relocated program is a
sequence of the object's functions: :func:`program_lines` finds that sequence by
comparing instruction shapes (relocation rewrites only ``imm`` and ``src`` of calls and
``lddw``), then spreads each function's line records over its instructions.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..bpf import btf as _btf
from ..bpf import elf as _elf
from ..bpf import isa


@dataclass(frozen=True)
class LineRec:
    """One line-info record: section, instruction index, file and line."""
    section: str
    insn: int          # instruction index in the section
    file: str
    line: int
    col: int


def _btf_strings(btf: bytes) -> bytes:
    magic, _ver, _flags, hdr_len = struct.unpack_from("<HBBI", btf, 0)
    if magic != 0xEB9F:
        raise ValueError("bad .BTF magic")
    _toff, _tlen, soff, slen = struct.unpack_from("<IIII", btf, 8)
    return btf[hdr_len + soff:hdr_len + soff + slen]


def _str(strs: bytes, off: int) -> str:
    end = strs.index(b"\0", off)
    return strs[off:end].decode("utf-8", "replace")


def line_records(ef: _elf.ElfFile) -> list[LineRec]:
    """Every line record of the object (empty without ``.BTF.ext``)."""
    ext = ef.section(".BTF.ext")
    btf = ef.section(".BTF")
    if ext is None or btf is None:
        return []
    strs = _btf_strings(bytes(btf.data))
    return [LineRec(sec, r.insn, _str(strs, r.file_name_off), r.line, r.col)
            for sec, recs in _btf.ext_line_info(ext.data, strs).items() for r in recs]


def _shape(insn: isa.Insn) -> tuple:
    if insn.is_call or insn.is_lddw:
        return (insn.opcode, insn.dst)
    if insn.opcode == 0:            # second half of an lddw: relocation rewrites its imm
        return (0,)
    return (insn.opcode, insn.dst, insn.src, insn.off, insn.imm)


@dataclass
class _Fn:
    section: str
    start: int
    code: list


def _functions(ef: _elf.ElfFile) -> list[_Fn]:
    fns = []
    for sym in ef.symbols:
        if sym.type != _elf.STT_FUNC or sym.shndx in (0, _elf.SHN_ABS) or not sym.size:
            continue
        sec = ef.sections[sym.shndx]
        code = isa.decode(bytes(sec.data[sym.value:sym.value + sym.size]))
        fns.append(_Fn(sec.name, sym.value // 8, code))
    return fns


def program_lines(ef: _elf.ElfFile, insns: list[isa.Insn], main_section: str,
                  records: list[LineRec] | None = None) -> list[tuple[str, int] | None]:
    """``(file, line)`` (or None) for each instruction of a relocated program."""
    records = line_records(ef) if records is None else records
    by_sec: dict[str, list[LineRec]] = {}
    for r in records:
        by_sec.setdefault(r.section, []).append(r)
    for v in by_sec.values():
        v.sort(key=lambda r: r.insn)
    fns = _functions(ef)
    out: list[tuple[str, int] | None] = [None] * len(insns)
    pos, first = 0, True
    while pos < len(insns):
        found = None
        for f in fns:
            if first and f.section != main_section:
                continue
            n = len(f.code)
            if pos + n <= len(insns) and all(_shape(a) == _shape(b) for a, b in zip(f.code, insns[pos:pos + n])):
                found = f
                break
        if found is None:
            break
        first = False
        recs = by_sec.get(found.section, [])
        cur = None
        ri = 0
        # records before the function's start do not apply
        while ri < len(recs) and recs[ri].insn < found.start:
            ri += 1
        for k in range(len(found.code)):
            while ri < len(recs) and recs[ri].insn <= found.start + k:
                if recs[ri].line:
                    cur = (recs[ri].file, recs[ri].line)
                ri += 1
            out[pos + k] = cur
        pos += len(found.code)
    return out
