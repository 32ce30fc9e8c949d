"""A small, strict reader for the ELF64 little-endian relocatable objects clang emits for BPF.

Why our own: we need only sections, symbols and REL relocations of ``EM_BPF`` objects,
and we want every malformed or truncated input to become a :class:`BpfLoadError` that says
what is wrong and where (a library would raise its own errors or, worse, read garbage).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field


from ..errors import BpfLoadError  # noqa: E402,F401  (defined in uringbpf.errors)


EM_BPF = 247
ET_REL = 1
SHT_NULL, SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_HASH = 0, 1, 2, 3, 4, 5
SHT_NOBITS, SHT_REL = 8, 9
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION, STT_FILE = 0, 1, 2, 3, 4
SHN_UNDEF, SHN_ABS, SHN_COMMON = 0, 0xFFF1, 0xFFF2

# BPF relocation types (llvm's BPF backend).
R_BPF_NONE = 0
R_BPF_64_64 = 1        # lddw: 64-bit immediate split over two slots
R_BPF_64_ABS64 = 2     # 64-bit data (struct_ops function pointers, BTF)
R_BPF_64_ABS32 = 3     # 32-bit data (DWARF, BTF.ext)
R_BPF_64_NODYLD32 = 4  # 32-bit data in .BTF/.BTF.ext, no runtime effect
R_BPF_64_32 = 10       # call imm (insn index - 1)
RELOC_NAMES = {0: "R_BPF_NONE", 1: "R_BPF_64_64", 2: "R_BPF_64_ABS64", 3: "R_BPF_64_ABS32",
               4: "R_BPF_64_NODYLD32", 10: "R_BPF_64_32"}

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_REL = struct.Struct("<QQ")
_RELA = struct.Struct("<QQq")


@dataclass
class Section:
    """One ELF section header (index, name, type, flags, file offset, size, link) and its data."""
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    align: int
    entsize: int
    data: bytes = b""

    @property
    def is_alloc(self) -> bool:
        """True for SHF_ALLOC sections (loaded data)."""
        return bool(self.flags & SHF_ALLOC)

    @property
    def is_exec(self) -> bool:
        """True for SHF_EXECINSTR sections (program code)."""
        return bool(self.flags & SHF_EXECINSTR)


@dataclass
class Symbol:
    """One symbol table entry (name, value, size, binding, type, section index)."""
    index: int
    name: str
    value: int
    size: int
    bind: int
    type: int
    shndx: int

    @property
    def is_undef(self) -> bool:
        """True for an undefined symbol (an extern: kfunc, kconfig or ksym)."""
        return self.shndx == SHN_UNDEF


@dataclass
class Reloc:
    """One relocation: the instruction offset it patches, its type and symbol."""
    offset: int
    type: int
    symbol: Symbol
    addend: int = 0

    @property
    def type_name(self) -> str:
        """The relocation type's name (R_BPF_64_64...)."""
        return RELOC_NAMES.get(self.type, f"type {self.type}")


@dataclass
class ElfFile:
    """A parsed ELF object: sections, symbols and relocations by target section."""
    path: str
    sections: list[Section]
    symbols: list[Symbol]
    relocs: dict[int, list[Reloc]] = field(default_factory=dict)  # target section -> relocs
    #: SHA-256 (hex) of the file's bytes: part of the verdict cache's key (verify_cache)
    digest: str = ""

    def section(self, name: str) -> Section | None:
        """The first section called ``name``, or None."""
        for sec in self.sections:
            if sec.name == name:
                return sec
        return None


def _cstr(table: bytes, offset: int, what: str, path: str) -> str:
    if offset >= len(table) and offset != 0:
        raise BpfLoadError(f"{path}: {what} name offset {offset} is outside the string table")
    end = table.find(b"\0", offset)
    if end < 0:
        raise BpfLoadError(f"{path}: {what} name at {offset} is not NUL-terminated")
    return table[offset:end].decode("utf-8", "replace")


def parse(data: bytes, path: str = "<memory>") -> ElfFile:
    """Parse an ELF64 LE BPF relocatable object; raise :class:`BpfLoadError` on any defect."""
    data = bytes(data)
    if len(data) < 4 or data[:4] != b"\x7fELF":
        raise BpfLoadError(f"{path}: not an ELF file (bad magic)")
    if len(data) < _EHDR.size:
        raise BpfLoadError(f"{path}: truncated ELF header ({len(data)} bytes)")
    (ident, e_type, e_machine, _ver, _entry, _phoff, shoff, _flags, _ehsize, _phentsize,
     _phnum, shentsize, shnum, shstrndx) = _EHDR.unpack_from(data, 0)
    if ident[4] != 2:
        raise BpfLoadError(f"{path}: not a 64-bit ELF file")
    if ident[5] != 1:
        raise BpfLoadError(f"{path}: not a little-endian ELF file (big-endian BPF is not supported)")
    if e_machine != EM_BPF:
        raise BpfLoadError(f"{path}: ELF machine is {e_machine}, not BPF ({EM_BPF})")
    if e_type != ET_REL:
        raise BpfLoadError(f"{path}: ELF type {e_type} is not a relocatable object")
    if shnum == 0 or shoff == 0:
        raise BpfLoadError(f"{path}: ELF file has no section headers")
    if shentsize != _SHDR.size:
        raise BpfLoadError(f"{path}: unexpected section header size {shentsize}")
    if shoff + shnum * shentsize > len(data):
        raise BpfLoadError(f"{path}: truncated: section headers at {shoff} x{shnum} run past "
                           f"the end of the file ({len(data)} bytes)")
    raw = [_SHDR.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    if shstrndx >= shnum:
        raise BpfLoadError(f"{path}: section name table index {shstrndx} out of range")

    def body(i: int) -> bytes:
        _n, stype, _f, _a, off, size = raw[i][:6]
        if stype in (SHT_NOBITS, SHT_NULL):
            return b""
        if off + size > len(data):
            raise BpfLoadError(f"{path}: truncated: section {i} data [{off}, {off + size}) runs "
                               f"past the end of the file ({len(data)} bytes)")
        return data[off:off + size]

    shstr = body(shstrndx)
    sections: list[Section] = []
    for i, (name, stype, flags, _addr, off, size, link, info, align, entsize) in enumerate(raw):
        sname = _cstr(shstr, name, f"section {i}", path) if i else ""
        sections.append(Section(i, sname, stype, flags, off, size, link, info, align, entsize,
                                body(i)))

    symbols: list[Symbol] = []
    symtabs = [s for s in sections if s.type == SHT_SYMTAB]
    if len(symtabs) > 1:
        raise BpfLoadError(f"{path}: more than one symbol table")
    if symtabs:
        symtab = symtabs[0]
        if symtab.link >= len(sections):
            raise BpfLoadError(f"{path}: symbol table links to missing section {symtab.link}")
        strtab = sections[symtab.link].data
        if symtab.size % _SYM.size:
            raise BpfLoadError(f"{path}: symbol table size {symtab.size} is not a multiple of "
                               f"{_SYM.size}")
        for i in range(symtab.size // _SYM.size):
            st_name, st_info, _other, shndx, value, size = _SYM.unpack_from(symtab.data, i * _SYM.size)
            name = _cstr(strtab, st_name, f"symbol {i}", path)
            if st_info & 0xF == STT_SECTION and not name and shndx < len(sections):
                name = sections[shndx].name
            if shndx >= len(sections) and shndx not in (SHN_ABS, SHN_COMMON):
                raise BpfLoadError(f"{path}: symbol {name or i!r} refers to missing section {shndx}")
            symbols.append(Symbol(i, name, value, size, st_info >> 4, st_info & 0xF, shndx))

    relocs: dict[int, list[Reloc]] = {}
    for sec in sections:
        if sec.type not in (SHT_REL, SHT_RELA):
            continue
        if sec.info >= len(sections) or sec.info == 0:
            raise BpfLoadError(f"{path}: relocation section {sec.name} targets missing section "
                               f"{sec.info}")
        st = _RELA if sec.type == SHT_RELA else _REL
        if sec.size % st.size:
            raise BpfLoadError(f"{path}: relocation section {sec.name} size {sec.size} is not a "
                               f"multiple of {st.size}")
        target = sections[sec.info]
        out = relocs.setdefault(sec.info, [])
        for i in range(sec.size // st.size):
            fields = st.unpack_from(sec.data, i * st.size)
            r_offset, r_info = fields[0], fields[1]
            addend = fields[2] if sec.type == SHT_RELA else 0
            sym_idx, rtype = r_info >> 32, r_info & 0xFFFFFFFF
            if sym_idx >= len(symbols):
                raise BpfLoadError(f"{path}: relocation {i} in {sec.name} refers to missing "
                                   f"symbol {sym_idx}")
            if target.type != SHT_NOBITS and r_offset >= max(target.size, 1):
                raise BpfLoadError(f"{path}: relocation {i} in {sec.name} at offset {r_offset} "
                                   f"is outside section {target.name} ({target.size} bytes)")
            out.append(Reloc(r_offset, rtype, symbols[sym_idx], addend))
    return ElfFile(path, sections, symbols, relocs, hashlib.sha256(data).hexdigest())


def read(path: str) -> ElfFile:
    """Parse the ELF file at ``path``; BpfLoadError if it cannot be read or is not a BPF ELF
    object."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise BpfLoadError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse(data, str(path))
