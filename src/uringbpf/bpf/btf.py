"""A parser for BTF (the BPF Type Format) as clang emits it in ``.BTF``.

The loader needs BTF for map definitions (``__uint``/``__type`` members of ``.maps``
variables), global-variable types (skeleton accessors), struct_ops struct layouts and
function-pointer members; the verifier uses it for context and struct layouts.  All kinds
up to ENUM64 are decoded; CO-RE relocations (``.BTF.ext`` core_relo) are not needed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .elf import BpfLoadError

BTF_MAGIC = 0xEB9F
(KIND_UNKN, KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD,
 KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR,
 KIND_DATASEC, KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64) = range(20)
KIND_NAMES = ("UNKN", "INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM", "FWD", "TYPEDEF",
              "VOLATILE", "CONST", "RESTRICT", "FUNC", "FUNC_PROTO", "VAR", "DATASEC", "FLOAT",
              "DECL_TAG", "TYPE_TAG", "ENUM64")
MODIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)
INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4
VAR_STATIC, VAR_GLOBAL, VAR_EXTERN = 0, 1, 2
FUNC_STATIC, FUNC_GLOBAL, FUNC_EXTERN = 0, 1, 2

_HDR = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")


@dataclass
class Member:
    """One member of a BTF struct or union: name, type id, offset in bits, bitfield width (0: not
    a bitfield)."""
    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0

    @property
    def offset(self) -> int:
        """Byte offset of the member (bit offset // 8)."""
        return self.bit_offset // 8


@dataclass
class Param:
    """One parameter of a BTF FUNC_PROTO: name and type id."""
    name: str
    type: int


@dataclass
class VarSecInfo:
    """One variable of a DATASEC: its VAR type id, offset and size in the section."""
    type: int
    offset: int
    size: int


@dataclass
class Type:
    """One BTF type record (kind, name, size or referenced type, and its kind-specific members)."""
    id: int
    kind: int
    name: str
    size: int = 0          # INT/STRUCT/UNION/ENUM/DATASEC/FLOAT: byte size
    ref: int = 0           # PTR/TYPEDEF/modifiers/FUNC/VAR/DECL_TAG: referenced type id
    kind_flag: bool = False
    vlen: int = 0
    int_encoding: int = 0
    int_bits: int = 0
    int_offset: int = 0
    elem_type: int = 0     # ARRAY
    index_type: int = 0
    nelems: int = 0
    members: list[Member] = field(default_factory=list)       # STRUCT/UNION
    enum_values: list[tuple[str, int]] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)         # FUNC_PROTO
    linkage: int = 0       # VAR / FUNC
    vars: list[VarSecInfo] = field(default_factory=list)      # DATASEC
    component_idx: int = -1  # DECL_TAG

    @property
    def kind_name(self) -> str:
        """The kind's name as the kernel spells it (STRUCT, PTR...)."""
        return KIND_NAMES[self.kind] if self.kind < len(KIND_NAMES) else str(self.kind)


class Btf:
    """Decoded ``.BTF``: ``types[id]`` (id 0 is void), names, sizes, lookups."""

    def __init__(self, types: list[Type], strings: bytes):
        self.types = types
        self.strings = strings
        self._by_name: dict[tuple[str, int], int] = {}
        for t in types[1:]:
            if t.name:
                self._by_name.setdefault((t.name, t.kind), t.id)

    # --- parsing ----------------------------------------------------------------------
    @classmethod
    def parse(cls, data: bytes, where: str = ".BTF") -> "Btf":
        """Parse raw ``.BTF`` bytes; BpfLoadError (naming ``where``) for a malformed section."""
        data = bytes(data)
        if len(data) < _HDR.size:
            raise BpfLoadError(f"{where}: truncated BTF header ({len(data)} bytes)")
        magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HDR.unpack_from(data)
        if magic != BTF_MAGIC:
            raise BpfLoadError(f"{where}: bad BTF magic {magic:#x}")
        if version != 1:
            raise BpfLoadError(f"{where}: unsupported BTF version {version}")
        tstart, sstart = hdr_len + type_off, hdr_len + str_off
        if tstart + type_len > len(data) or sstart + str_len > len(data):
            raise BpfLoadError(f"{where}: truncated BTF (type or string section past the end)")
        tdata = data[tstart:tstart + type_len]
        strings = data[sstart:sstart + str_len]

        def name_at(off: int) -> str:
            if off >= len(strings) and off:
                raise BpfLoadError(f"{where}: string offset {off} outside the string section")
            end = strings.find(b"\0", off)
            if end < 0:
                raise BpfLoadError(f"{where}: unterminated string at {off}")
            return strings[off:end].decode("utf-8", "replace")

        types = [Type(0, KIND_UNKN, "void")]
        pos = 0

        def need(n: int, tid: int) -> None:
            if pos + n > len(tdata):
                raise BpfLoadError(f"{where}: type {tid} is truncated")

        while pos < len(tdata):
            tid = len(types)
            need(_TYPE.size, tid)
            name_off, info, size_or_type = _TYPE.unpack_from(tdata, pos)
            pos += _TYPE.size
            vlen, kind, kflag = info & 0xFFFF, (info >> 24) & 0x1F, bool(info >> 31)
            t = Type(tid, kind, name_at(name_off), kind_flag=kflag, vlen=vlen)
            if kind in (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_DATASEC, KIND_FLOAT,
                        KIND_ENUM64):
                t.size = size_or_type
            else:
                t.ref = size_or_type
            if kind == KIND_INT:
                need(4, tid)
                (extra,) = struct.unpack_from("<I", tdata, pos)
                pos += 4
                t.int_encoding, t.int_offset, t.int_bits = extra >> 24 & 0xF, extra >> 16 & 0xFF, extra & 0xFF
            elif kind == KIND_ARRAY:
                need(12, tid)
                t.elem_type, t.index_type, t.nelems = struct.unpack_from("<III", tdata, pos)
                pos += 12
            elif kind in (KIND_STRUCT, KIND_UNION):
                need(12 * vlen, tid)
                for i in range(vlen):
                    m_name, m_type, m_off = struct.unpack_from("<III", tdata, pos + 12 * i)
                    if kflag:
                        t.members.append(Member(name_at(m_name), m_type, m_off & 0xFFFFFF, m_off >> 24))
                    else:
                        t.members.append(Member(name_at(m_name), m_type, m_off))
                pos += 12 * vlen
            elif kind == KIND_ENUM:
                need(8 * vlen, tid)
                for i in range(vlen):
                    e_name, e_val = struct.unpack_from("<Ii", tdata, pos + 8 * i)
                    t.enum_values.append((name_at(e_name), e_val))
                pos += 8 * vlen
            elif kind == KIND_ENUM64:
                need(12 * vlen, tid)
                for i in range(vlen):
                    e_name, lo, hi = struct.unpack_from("<III", tdata, pos + 12 * i)
                    t.enum_values.append((name_at(e_name), lo | hi << 32))
                pos += 12 * vlen
            elif kind == KIND_FUNC_PROTO:
                need(8 * vlen, tid)
                for i in range(vlen):
                    p_name, p_type = struct.unpack_from("<II", tdata, pos + 8 * i)
                    t.params.append(Param(name_at(p_name), p_type))
                pos += 8 * vlen
            elif kind == KIND_VAR:
                need(4, tid)
                (t.linkage,) = struct.unpack_from("<I", tdata, pos)
                pos += 4
            elif kind == KIND_DATASEC:
                need(12 * vlen, tid)
                for i in range(vlen):
                    t.vars.append(VarSecInfo(*struct.unpack_from("<III", tdata, pos + 12 * i)))
                pos += 12 * vlen
            elif kind == KIND_DECL_TAG:
                need(4, tid)
                (t.component_idx,) = struct.unpack_from("<i", tdata, pos)
                pos += 4
            elif kind == KIND_FUNC:
                t.linkage = vlen
            elif kind in (KIND_PTR, KIND_FWD, KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST,
                          KIND_RESTRICT, KIND_FLOAT, KIND_TYPE_TAG):
                pass
            else:
                raise BpfLoadError(f"{where}: type {tid} has unknown BTF kind {kind}")
            types.append(t)
        btf = cls(types, strings)
        for t in types[1:]:
            for ref in (t.ref, t.elem_type, *(m.type for m in t.members), *(p.type for p in t.params),
                        *(v.type for v in t.vars)):
                if ref >= len(types):
                    raise BpfLoadError(f"{where}: type {t.id} ({t.name or t.kind_name}) refers "
                                       f"to missing type {ref}")
        return btf

    # --- queries ----------------------------------------------------------------------
    def __getitem__(self, tid: int) -> Type:
        if not 0 <= tid < len(self.types):
            raise KeyError(f"no BTF type {tid}")
        return self.types[tid]

    def __len__(self) -> int:
        return len(self.types)

    def find(self, name: str, kind: int | None = None) -> Type | None:
        """The first type called ``name`` (of ``kind`` if given), or None."""
        if kind is not None:
            tid = self._by_name.get((name, kind))
            return self.types[tid] if tid else None
        for t in self.types[1:]:
            if t.name == name:
                return t
        return None

    def resolve(self, tid: int) -> Type:
        """Skip typedefs and const/volatile/restrict/type-tag modifiers."""
        seen = 0
        t = self[tid]
        while t.kind in MODIFIERS:
            t = self[t.ref]
            seen += 1
            if seen > 64:
                raise BpfLoadError(f"BTF type {tid}: modifier chain too long (loop?)")
        return t

    def size_of(self, tid: int) -> int:
        """Size in bytes of type ``tid`` after resolving typedefs and modifiers."""
        t = self.resolve(tid)
        if t.kind in (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_FLOAT,
                      KIND_DATASEC):
            return t.size
        if t.kind == KIND_PTR:
            return 8
        if t.kind == KIND_ARRAY:
            return t.nelems * self.size_of(t.elem_type)
        if t.kind == KIND_VAR:
            return self.size_of(t.ref)
        raise BpfLoadError(f"BTF type {tid} ({t.kind_name} {t.name}) has no size")

    def member(self, struct_tid: int, name: str) -> Member | None:
        """Member ``name`` of the struct/union ``struct_tid``, looking inside anonymous members;
        None if absent."""
        t = self.resolve(struct_tid)
        for m in t.members:
            if m.name == name:
                return m
            if not m.name:  # anonymous struct/union: search inside
                inner = self.resolve(m.type)
                if inner.kind in (KIND_STRUCT, KIND_UNION):
                    sub = self.member(inner.id, name)
                    if sub is not None:
                        return Member(sub.name, sub.type, m.bit_offset + sub.bit_offset,
                                      sub.bitfield_size)
        return None

    def is_func_ptr(self, tid: int) -> bool:
        """True if ``tid`` is a pointer to a function prototype (a struct_ops callback slot)."""
        t = self.resolve(tid)
        return t.kind == KIND_PTR and self.resolve(t.ref).kind == KIND_FUNC_PROTO

    def funcs(self) -> list[Type]:
        """Every FUNC type (one per BPF function with BTF)."""
        return [t for t in self.types if t.kind == KIND_FUNC]

    def decl_tags(self, tid: int) -> list[tuple[int, str]]:
        """(component_idx, tag) pairs attached to type ``tid`` (-1 = the type itself)."""
        return [(t.component_idx, t.name) for t in self.types
                if t.kind == KIND_DECL_TAG and t.ref == tid]

    def type_name(self, tid: int) -> str:
        """A C-like spelling of a type, for messages."""
        t = self[tid]
        if t.kind == KIND_UNKN:
            return "void"
        if t.kind == KIND_PTR:
            return self.type_name(t.ref) + " *"
        if t.kind == KIND_ARRAY:
            return f"{self.type_name(t.elem_type)}[{t.nelems}]"
        if t.kind in (KIND_CONST, KIND_VOLATILE, KIND_RESTRICT):
            return f"{KIND_NAMES[t.kind].lower()} {self.type_name(t.ref)}"
        if t.kind in (KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD):
            prefix = {KIND_STRUCT: "struct ", KIND_UNION: "union ", KIND_ENUM: "enum "}.get(t.kind, "")
            return prefix + (t.name or "<anon>")
        if t.kind == KIND_FUNC_PROTO:
            return f"{self.type_name(t.ref)} (*)({', '.join(self.type_name(p.type) for p in t.params)})"
        return t.name or t.kind_name


# --- .BTF.ext line_info ------------------------------------------------------------------
_LINE_INFO_MIN = 16     # struct bpf_line_info { insn_off; file_name_off; line_off; line_col; }


@dataclass(frozen=True)
class LineInfo:
    """One ``.BTF.ext`` line_info record: the instruction index in its code section, and
    (as ``struct bpf_line_info`` has them) the file name's and source line's offsets into
    the ``.BTF`` string section and ``line_col`` (line << 10 | column)."""
    insn: int
    file_name_off: int
    line_off: int
    line_col: int

    @property
    def line(self) -> int:
        """The source line number."""
        return self.line_col >> 10

    @property
    def col(self) -> int:
        """The source column."""
        return self.line_col & 0x3FF


def ext_line_info(ext: bytes, strings: bytes, where: str = ".BTF.ext") -> dict[str, list[LineInfo]]:
    """The line_info of a ``.BTF.ext`` section, per code section name (names read from
    ``strings``, the ``.BTF`` string section), records in the order LLVM wrote them."""
    ext = bytes(ext)
    if len(ext) < 24:
        raise BpfLoadError(f"{where}: truncated header ({len(ext)} bytes)")
    magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", ext, 0)
    if magic != BTF_MAGIC:
        raise BpfLoadError(f"{where}: bad magic {magic:#x}")
    _func_off, _func_len, line_off, line_len = struct.unpack_from("<IIII", ext, 8)
    out: dict[str, list[LineInfo]] = {}
    if line_len == 0:
        return out
    pos, end = hdr_len + line_off, hdr_len + line_off + line_len
    if end > len(ext):
        raise BpfLoadError(f"{where}: line_info past the end of the section")
    (rec_size,) = struct.unpack_from("<I", ext, pos)
    if rec_size < _LINE_INFO_MIN:
        raise BpfLoadError(f"{where}: line_info records of {rec_size} bytes")
    pos += 4
    while pos < end:
        name_off, num = struct.unpack_from("<II", ext, pos)
        pos += 8
        if pos + num * rec_size > end or name_off >= len(strings):
            raise BpfLoadError(f"{where}: line_info section record out of bounds")
        name = strings[name_off:strings.find(b"\0", name_off)].decode("utf-8", "replace")
        recs = out.setdefault(name, [])
        for i in range(num):
            insn_off, file_off, src_off, line_col = struct.unpack_from("<IIII", ext, pos + i * rec_size)
            recs.append(LineInfo(insn_off // 8, file_off, src_off, line_col))
        pos += num * rec_size
    return out
