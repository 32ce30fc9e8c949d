"""Python AST -> typed LLVM IR (text, with debug info) for the BPF target.

One :class:`ModuleGen` per :class:`~uringbpf.lang.module.Module`; one :class:`FuncGen` per
function.  Every local lives in an ``alloca`` (LLVM's mem2reg makes registers of them),
every instruction carries a ``!dbg`` location with the Python line, so LLVM writes
``.BTF.ext`` line info that maps instructions back to the source.  The debug info also
gives the object its ``.BTF`` (global variables, the struct_ops type, kfunc prototypes),
which libbpf, bpftool and our loader need.

Typing rules are those of :mod:`uringbpf.lang.types`; the local-variable rule that makes
the application run and the compiled run agree: a local has the type of its first
assignment and every later assignment must give it a value of exactly that type (a
plain int literal only to a plain-int local), because a Python local has no storage
type that would convert the value.
"""

from __future__ import annotations

import ast
import builtins
import copy
import ctypes
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any, Callable

from . import types as T
from .errors import LangCompileError


class _Bool:
    def __repr__(self) -> str:
        return "bool"


class _Flex:
    """A plain Python int: 64-bit signed storage, takes a fixed type when mixed."""

    __name__ = "int"

    def __repr__(self) -> str:
        return "int"


BOOL = _Bool()
FLEX = _Flex()


def _is_int(t: Any) -> bool:
    return t is FLEX or (isinstance(t, type) and issubclass(t, T.FixedInt))


def _bits(t: Any) -> int:
    return 64 if t is FLEX else 1 if t is BOOL else t.BITS


def _signed(t: Any) -> bool:
    return t is FLEX or (t is not BOOL and t.SIGNED)


def _llty(t: Any) -> str:
    if t is BOOL:
        return "i1"
    if _is_int(t):
        return f"i{_bits(t)}"
    if isinstance(t, T.PtrType):
        return "ptr addrspace(1)" if t.space else "ptr"
    if t is None:
        return "void"
    raise TypeError(t)


def _tname(t: Any) -> str:
    if t is None:
        return "None"
    if isinstance(t, T.PtrType):
        return repr(t)
    return getattr(t, "__name__", None) or repr(t)


def _common(a: Any, b: Any) -> Any:
    if a is FLEX and b is FLEX:
        return FLEX
    return T.common(a if a is not FLEX else int, b if b is not FLEX else int)


def _wrap(value: int, t: Any) -> int:
    """``value`` as the signed LLVM literal of type ``t``."""
    bits = _bits(t)
    v = value & ((1 << bits) - 1)
    if bits > 1 and v >> (bits - 1):
        v -= 1 << bits
    return v


@dataclass
class Val:
    """An IR value: ``ty`` None with ``const`` set is an untyped compile-time int."""

    ty: Any
    ref: str = ""
    const: int | None = None

    @property
    def is_const(self) -> bool:
        """True for a plain Python int not yet given a type."""
        return self.ty is None and self.const is not None


# --- things a name can resolve to (besides locals) ---------------------------------------
@dataclass
class KfuncSig:
    """A kfunc or helper as the compiler sees it."""

    name: str
    ret: Any                   # type (int class, PtrType) or None for void
    args: tuple                # types
    helper_id: int | None = None


@dataclass
class StructOpsSpec:
    """An ops struct: its BTF name and members ``(name, "func"|int class|"ptr")``."""

    type_name: str
    members: tuple


#: the section of ``__arena`` globals (clang: variables in address space 1)
ARENA_SECTION = ".addr_space.1"


@dataclass
class GlobalVar:
    """A global variable of a module: name, type, section (.rodata/.bss/.data), initial bytes."""
    name: str
    kind: Any                  # int class or ("array", int class, n)
    section: str               # ".rodata" / ".bss" / ".data" / ".addr_space.1"
    init: bytes
    volatile: bool = False


class Builtin:
    """A compile-time builtin (``zero``, ``sizeof``, ``range``...)."""

    def __init__(self, name: str, fn: Callable):
        self.name = name
        self.fn = fn

    def __call__(self, *args: Any, **kw: Any) -> Any:
        return self.fn(*args, **kw)

    def __repr__(self) -> str:
        return f"<lang builtin {self.name}>"


# --- the module -------------------------------------------------------------------------
_ATTRS = '#0 = { nounwind "frame-pointer"="all" "no-builtins" "target-cpu"="v3" }\n' \
         '#1 = { nounwind noinline "frame-pointer"="all" "no-builtins" "target-cpu"="v3" }\n' \
         '#2 = { nounwind alwaysinline "frame-pointer"="all" "no-builtins" "target-cpu"="v3" }\n'


class ModuleGen:
    """Builds the LLVM IR module (globals, functions, debug info, BTF-bearing metadata) of a
    Python BPF module."""
    def __init__(self, name: str, filename: str, directory: str):
        self.name = name
        self.md: list[str] = []
        self.globals_ir: list[str] = []
        self.funcs_ir: list[str] = []
        self.decls: dict[str, str] = {}
        self.used: list[str] = []
        self.gvars: dict[str, GlobalVar] = {}
        self.gvar_md: list[int] = []
        self.functions: dict[int, "FuncGen"] = {}   # id(LangFunction) -> generated
        self.pending: list = []
        self.files: dict[str, int] = {}
        self._basic: dict[Any, int] = {}
        self.cu = self._reserve()
        self.main_file = self.file(filename, directory)
        self.symbols: set[str] = set()
        self.strings: dict[bytes, str] = {}
        self.symbols_done: set[str] = set()      # nested defs queued for compilation

    # metadata ------------------------------------------------------------------------
    def _reserve(self) -> int:
        self.md.append("")
        return len(self.md) - 1

    def meta(self, text: str) -> int:
        """Add a metadata node; returns its index (``!N``)."""
        self.md.append(text)
        return len(self.md) - 1

    def set_meta(self, idx: int, text: str) -> None:
        """Replace metadata node ``idx``."""
        self.md[idx] = text

    def file(self, filename: str, directory: str = "") -> int:
        """The DIFile node of ``filename`` (created once)."""
        key = filename
        if key not in self.files:
            self.files[key] = self.meta(f'!DIFile(filename: "{_esc(filename)}", directory: "{_esc(directory)}")')
        return self.files[key]

    def basic(self, t: Any) -> int:
        """Debug type of a language type.  Pointers point to what they point to: an int
        type, or a struct of the kernel's name (an Opaque's name, a ctypes class's
        ``_btf_name_`` or class name), so libbpf can match kfunc prototypes."""
        key = t
        if isinstance(t, T.PtrType):
            key = ("ptr", id(t.elem))
        if key in self._basic:
            return self._basic[key]
        if isinstance(t, T.PtrType):
            elem = t.elem
            if isinstance(elem, type) and issubclass(elem, T.FixedInt):
                base = f"!{self.basic(elem)}"
            elif isinstance(elem, T.Opaque):
                base = f"!{self._named_struct(elem.name, elem.size)}"
            elif _is_ctypes_struct(elem):
                base = f"!{self._named_struct(getattr(elem, '_btf_name_', elem.__name__), T.sizeof(elem))}"
            else:
                base = "null"
            idx = self.meta(f"!DIDerivedType(tag: DW_TAG_pointer_type, baseType: {base}, size: 64)")
        elif key is None:
            return 0
        elif key is BOOL:
            idx = self.meta('!DIBasicType(name: "_Bool", size: 8, encoding: DW_ATE_boolean)')
        else:
            bits, signed = _bits(key), _signed(key)
            cname = {8: "char", 16: "short", 32: "int", 64: "long long"}[bits]
            name = ("" if signed else "unsigned ") + cname
            if bits == 8:
                name = "signed char" if signed else "unsigned char"
            enc = "DW_ATE_signed" if signed else "DW_ATE_unsigned"
            if bits == 8:
                enc = "DW_ATE_signed_char" if signed else "DW_ATE_unsigned_char"
            idx = self.meta(f'!DIBasicType(name: "{name}", size: {bits}, encoding: {enc})')
        self._basic[key] = idx
        return idx

    def _named_struct(self, name: str, size: int) -> int:
        key = ("struct-name", name)
        if key not in self._basic:
            self._basic[key] = self.meta(f'!DICompositeType(tag: DW_TAG_structure_type, name: "{name}", '
                                         f"file: !{self.main_file}, size: {size * 8}, elements: !{{}})")
        return self._basic[key]

    def kind_type(self, kind: Any) -> int:
        """The debug-info type node of an int kind or an array ``("array", kind, n)``."""
        if isinstance(kind, tuple):
            elem = self.basic(kind[1])
            sub = self.meta(f"!DISubrange(count: {kind[2]})")
            return self.meta(f"!DICompositeType(tag: DW_TAG_array_type, baseType: !{elem}, "
                             f"size: {T.sizeof(kind) * 8}, elements: !{{!{sub}}})")
        if _is_ctypes_struct(kind):      # a structure global: its name and size in BTF
            return self._named_struct(getattr(kind, "_btf_name_", kind.__name__), T.sizeof(kind))
        return self.basic(kind)

    def subroutine(self, ret: Any, args: list) -> int:
        """A DISubroutineType for ``ret`` and ``args`` (None return: void)."""
        parts = ["null" if ret is None else f"!{self.basic(ret)}"] + [f"!{self.basic(a)}" for a in args]
        return self.meta(f"!DISubroutineType(types: !{{{', '.join(parts)}}})")

    # globals -------------------------------------------------------------------------
    def add_global(self, gv: GlobalVar, line: int) -> None:
        """Emit global ``gv`` in its section with debug info; ValueError for a duplicate name."""
        if gv.name in self.symbols:
            raise ValueError(f"two globals named {gv.name!r}")
        self.symbols.add(gv.name)
        self.gvars[gv.name] = gv
        lt = _kind_llty(gv.kind)
        dtype = self.kind_type(gv.kind)
        if gv.section == ".rodata":
            dtype = self.meta(f"!DIDerivedType(tag: DW_TAG_volatile_type, baseType: !{dtype})")
            dtype = self.meta(f"!DIDerivedType(tag: DW_TAG_const_type, baseType: !{dtype})")
        var = self.meta(f'distinct !DIGlobalVariable(name: "{gv.name}", scope: !{self.cu}, '
                        f"file: !{self.main_file}, line: {line}, type: !{dtype}, isLocal: false, "
                        "isDefinition: true)")
        gve = self.meta(f"!DIGlobalVariableExpression(var: !{var}, expr: !DIExpression())")
        self.gvar_md.append(gve)
        init = _bytes_const(gv.init, lt)
        storage = "constant" if gv.section == ".rodata" else "global"
        if gv.section == ARENA_SECTION:
            # clang's __arena variable: address space 1, which the BPF backend puts in
            # .addr_space.1 (LLVM 19+); references are lddw numbers cast before access
            storage = "addrspace(1) global"
        self.globals_ir.append(f'@{gv.name} = dso_local {storage} {lt} {init}, section "{gv.section}", '
                               f"align {T.alignof(gv.kind)}, !dbg !{gve}")

    def add_struct_ops(self, var: str, spec: StructOpsSpec, bindings: dict[str, str],
                       values: dict[str, int], line: int) -> None:
        """Emit the struct_ops variable ``var`` of ``spec`` with its callbacks bound and values
        set."""
        members, lltypes, inits = [], [], []
        off = 0
        for mname, mkind in spec.members:
            if mkind in ("func", "ptr"):
                size, align = 8, 8
            else:
                size = align = mkind.BITS // 8
            pad = (-off) % align
            if pad:
                lltypes.append(f"[{pad} x i8]")
                inits.append(f"[{pad} x i8] zeroinitializer")
                off += pad
            if mkind == "func":
                ret_t = self.basic(T.s32)
                vp = self.basic(T.ptr[T.u8])
                proto = self.meta(f"!DISubroutineType(types: !{{!{ret_t}, !{vp}, !{vp}}})")
                dt = self.meta(f"!DIDerivedType(tag: DW_TAG_pointer_type, baseType: !{proto}, size: 64)")
                lltypes.append("ptr")
                target = bindings.get(mname)
                inits.append(f"ptr @{target}" if target else "ptr null")
            elif mkind == "ptr":
                dt = self.basic(T.ptr[T.u8])
                lltypes.append("ptr")
                inits.append("ptr null")
            else:
                dt = self.basic(mkind)
                lltypes.append(f"i{mkind.BITS}")
                inits.append(f"i{mkind.BITS} {_wrap(values.get(mname, 0), mkind)}")
            members.append((mname, dt, size * 8, off * 8))
            off += size
        pad = (-off) % 8
        if pad:
            lltypes.append(f"[{pad} x i8]")
            inits.append(f"[{pad} x i8] zeroinitializer")
            off += pad
        st = self._reserve()
        elems = [self.meta(f'!DIDerivedType(tag: DW_TAG_member, name: "{n}", scope: !{st}, '
                           f"file: !{self.main_file}, baseType: !{dt}, size: {sz}, offset: {o})")
                 for n, dt, sz, o in members]
        self.set_meta(st, f'distinct !DICompositeType(tag: DW_TAG_structure_type, name: "{spec.type_name}", '
                          f"file: !{self.main_file}, line: {line}, size: {off * 8}, "
                          f"elements: !{{{', '.join('!' + str(e) for e in elems)}}})")
        gvar = self.meta(f'distinct !DIGlobalVariable(name: "{var}", scope: !{self.cu}, file: '
                         f"!{self.main_file}, line: {line}, type: !{st}, isLocal: false, isDefinition: true)")
        gve = self.meta(f"!DIGlobalVariableExpression(var: !{gvar}, expr: !DIExpression())")
        self.gvar_md.append(gve)
        self.globals_ir.append(f'@{var} = dso_local global {{ {", ".join(lltypes)} }} '
                               f'{{ {", ".join(inits)} }}, section ".struct_ops.link", align 8, !dbg !{gve}')
        self.used.append(f"@{var}")

    def add_map(self, name: str, map_type: int, key: Any, value: Any, max_entries: int,
                map_flags: int = 0) -> None:
        """A BTF-defined map: ``struct { __uint(type, T); __uint(max_entries, N);
        __type(key, K); __type(value, V); } name SEC(".maps")``."""
        if name in self.symbols:
            raise ValueError(f"two globals named {name!r}")
        self.symbols.add(name)
        int_t = self.basic(T.s32)
        members = []

        def uint_member(mname: str, n: int) -> tuple:
            sub = self.meta(f"!DISubrange(count: {n})")
            arr = self.meta(f"!DICompositeType(tag: DW_TAG_array_type, baseType: !{int_t}, "
                            f"size: {32 * n}, elements: !{{!{sub}}})")
            return (mname, self.meta(f"!DIDerivedType(tag: DW_TAG_pointer_type, baseType: !{arr}, size: 64)"))

        members.append(uint_member("type", map_type))
        if map_flags:
            members.append(uint_member("map_flags", map_flags))
        members.append(uint_member("max_entries", max_entries))
        for mname, kind in (("key", key), ("value", value)):
            if kind is None:
                continue
            if isinstance(kind, type) and issubclass(kind, T.FixedInt):
                base = self.basic(kind)
            else:
                base = self._ctype_struct(kind)
            members.append((mname, self.meta(f"!DIDerivedType(tag: DW_TAG_pointer_type, baseType: !{base}, size: 64)")))
        st = self._reserve()
        elems = [self.meta(f'!DIDerivedType(tag: DW_TAG_member, name: "{n}", scope: !{st}, file: '
                           f"!{self.main_file}, baseType: !{dt}, size: 64, offset: {64 * i})")
                 for i, (n, dt) in enumerate(members)]
        self.set_meta(st, f"distinct !DICompositeType(tag: DW_TAG_structure_type, file: !{self.main_file}, "
                          f"size: {64 * len(members)}, elements: !{{{', '.join('!' + str(e) for e in elems)}}})")
        var = self.meta(f'distinct !DIGlobalVariable(name: "{name}", scope: !{self.cu}, file: '
                        f"!{self.main_file}, line: 1, type: !{st}, isLocal: false, isDefinition: true)")
        gve = self.meta(f"!DIGlobalVariableExpression(var: !{var}, expr: !DIExpression())")
        self.gvar_md.append(gve)
        self.globals_ir.append(f"@{name} = dso_local global [{len(members)} x ptr] zeroinitializer, "
                               f'section ".maps", align 8, !dbg !{gve}')
        self.used.append(f"@{name}")

    def _ctype_struct(self, st: type) -> int:
        """Debug type of a ctypes structure used as a map value (its size is what counts)."""
        key = ("struct", st)
        if key in self._basic:
            return self._basic[key]
        fields = []
        idx = self._reserve()
        for fname, (off, kind) in T.struct_fields(st).items():
            if isinstance(kind, type) and issubclass(kind, T.FixedInt):
                dt, size = self.basic(kind), kind.BITS
            else:
                continue
            fields.append(self.meta(f'!DIDerivedType(tag: DW_TAG_member, name: "{fname}", scope: !{idx}, '
                                    f"file: !{self.main_file}, baseType: !{dt}, size: {size}, offset: {off * 8})"))
        self.set_meta(idx, f'distinct !DICompositeType(tag: DW_TAG_structure_type, name: "{st.__name__}", '
                           f"file: !{self.main_file}, size: {T.sizeof(st) * 8}, "
                           f"elements: !{{{', '.join('!' + str(f) for f in fields)}}})")
        self._basic[key] = idx
        return idx

    def declare_kfunc(self, sig: KfuncSig) -> str:
        """Declare kfunc ``sig`` once (with the debug info BTF needs); returns its name."""
        name = sig.name
        if name not in self.decls:
            sub = self.subroutine(sig.ret, list(sig.args))
            sp = self.meta(f'!DISubprogram(name: "{name}", scope: !{self.main_file}, file: '
                           f"!{self.main_file}, line: 1, type: !{sub}, flags: DIFlagPrototyped, "
                           "spFlags: DISPFlagOptimized)")
            args = ", ".join(_llty(a) for a in sig.args)
            self.decls[name] = (f"declare !dbg !{sp} {_llty(sig.ret)} @{name}({args}) "
                                '#0 section ".ksyms"')
        return name

    def string_const(self, raw: bytes) -> str:
        """A read-only byte string in ``.rodata`` (as clang places a function's
        ``static const char fmt[]``); returns its symbol."""
        name = self.strings.get(raw)
        if name is None:
            name = self.strings[raw] = f".str.{len(self.strings)}"
            text = "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:02X}" for b in raw)
            self.globals_ir.append(f'@"{name}" = private unnamed_addr constant [{len(raw)} x i8] '
                                   f'c"{text}", section ".rodata.str1.1", align 1')
        return f'"{name}"'

    def declare_intrinsic(self, text: str, key: str) -> None:
        """Declare an LLVM intrinsic once, under ``key``."""
        self.decls.setdefault(key, text)

    def ir(self) -> str:
        """The complete module as LLVM IR text."""
        self.set_meta(self.cu, f'distinct !DICompileUnit(language: DW_LANG_C11, file: !{self.main_file}, '
                                'producer: "uringbpf.lang", isOptimized: true, runtimeVersion: 0, '
                                "emissionKind: FullDebug, globals: !{"
                                + ", ".join(f"!{g}" for g in self.gvar_md) + "})")
        out = ['target datalayout = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"',
               'target triple = "bpfel"', ""]
        out.append('@LICENSE = dso_local global [13 x i8] c"Dual MIT/GPL\\00", section "license", align 1')
        self.used.insert(0, "@LICENSE")
        out += self.globals_ir
        out.append(f"@llvm.compiler.used = appending global [{len(self.used)} x ptr] "
                   f"[{', '.join('ptr ' + u for u in self.used)}], section \"llvm.metadata\"")
        out.append("")
        out += self.funcs_ir
        out += list(self.decls.values())
        out.append("")
        out.append("attributes " + _ATTRS.replace("\n#", "\nattributes #"))
        out.append("!llvm.dbg.cu = !{!%d}" % self.cu)
        f1 = self.meta('!{i32 7, !"Dwarf Version", i32 5}')
        f2 = self.meta('!{i32 2, !"Debug Info Version", i32 3}')
        out.append(f"!llvm.module.flags = !{{!{f1}, !{f2}}}")
        for i, text in enumerate(self.md):
            out.append(f"!{i} = {text}")
        return "\n".join(out) + "\n"


def _esc(s: str) -> str:
    return s.replace("\\", "\\5C").replace('"', "\\22")


def _kind_llty(kind: Any) -> str:
    if isinstance(kind, tuple):
        return f"[{kind[2]} x {_kind_llty(kind[1])}]"
    if _is_ctypes_struct(kind):
        return f"[{T.sizeof(kind)} x i8]"
    if isinstance(kind, T.PtrType):
        return _llty(kind)
    return f"i{kind.BITS}"


def _bytes_const(data: bytes, lt: str) -> str:
    if not any(data):
        return "zeroinitializer"
    if lt.startswith("["):
        n, _, elem = lt[1:-1].partition(" x ")
        size = int(elem[1:]) // 8
        vals = [int.from_bytes(data[i * size:(i + 1) * size], "little", signed=True)
                for i in range(int(n))]
        return "[" + ", ".join(f"{elem} {v}" for v in vals) + "]"
    return str(int.from_bytes(data, "little", signed=True))


# --- one function -----------------------------------------------------------------------
_PARSED: dict[Any, tuple[str, int, ast.stmt, frozenset[str]]] = {}


def parsed_source(fn: Callable) -> tuple[str, int, ast.stmt, frozenset[str]]:
    """``(file, first line, AST of the def, names it assigns)`` of ``fn``.

    Cached by code object: reading and tokenising the source was most of the Python side
    of a recompile, and a code object's source does not change.  The compiler never
    mutates these trees (rewrites work on copies)."""
    code = fn.__code__
    hit = _PARSED.get(code)
    if hit is None:
        filename = inspect.getsourcefile(fn) or fn.__code__.co_filename
        try:
            lines, first = inspect.getsourcelines(fn)
        except OSError:
            raise LangCompileError(filename, fn.__code__.co_firstlineno,
                                   f"the source of {fn.__name__} is not available (exec, python -c?): "
                                   "the compiler reads it, so define programs in a file") from None
        fdef = ast.parse(textwrap.dedent("".join(lines))).body[0]
        hit = _PARSED[code] = (filename, first, fdef, assigned_names(fdef))
    return hit


def assigned_names(fdef: ast.stmt) -> frozenset[str]:
    """The names local to ``fdef``: as in Python, a name assigned anywhere in a function
    is local everywhere in it; a nested def's own names are its own (its name is ours)."""
    out: set[str] = set()
    todo = list(ast.iter_child_nodes(fdef))
    while todo:
        n = todo.pop()
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if isinstance(n, ast.FunctionDef):
                out.add(n.name)
            continue
        todo.extend(ast.iter_child_nodes(n))
    if isinstance(fdef, ast.FunctionDef):
        out |= {a.arg for a in fdef.args.args}
    return frozenset(out)


@dataclass
class NestedDef:
    """A ``def`` inside a program function: compiled as a function of its own (inlined),
    its names resolved in the enclosing function's module; in the application it is the
    plain Python closure."""

    fdef: ast.FunctionDef
    filename: str
    first: int
    env: dict
    outer_locals: frozenset


@dataclass
class Local:
    """A local variable: its type and its stack slot (an LLVM alloca)."""
    ty: Any
    slot: str


@dataclass
class FuncInfo:
    """What the compiler needs to know about a Python function it compiles."""

    pyfunc: Callable
    symbol: str
    params: list                      # [(name, type)]
    ret: Any
    section: str = ""                 # "" -> .text subprogram
    inline: bool = False
    ctx_args: bool = False            # struct_ops style: r1 -> u64 array of arguments
    ctx_buffer: bool = False          # socket filter style: (data, len) in r1, r2
    exact: bool = False               # a nested def: arguments/result of exactly their types
    captured: list | None = None      # a nested def: the enclosing locals it reads


class FuncGen:
    """Compiles one Python function to LLVM IR, statement by statement."""
    def __init__(self, mod: ModuleGen, info: FuncInfo, resolver: "Resolver"):
        self.mod = mod
        self.info = info
        self.resolver = resolver
        fn = info.pyfunc
        self.outer_locals: frozenset = frozenset()
        if isinstance(fn, NestedDef):
            self.filename, first, self.fdef = fn.filename, fn.first, fn.fdef
            self.assigned = assigned_names(fn.fdef)
            self.env = fn.env
            self.outer_locals = fn.outer_locals - self.assigned
        else:
            self.filename, first, self.fdef, self.assigned = parsed_source(fn)
            self.env = resolver.env_of(fn)
        self.first = first
        if not isinstance(self.fdef, ast.FunctionDef):
            raise LangCompileError(self.filename, first, "only plain functions can be compiled")
        self.nested: dict[str, FuncInfo] = {}
        self.locals: dict[str, Local] = {}
        self.blocks: list[tuple[str, list[str]]] = []
        self.cur: list[str] = []
        self.terminated = False
        self.n = 0
        self.allocas: list[str] = []
        self.loops: list[tuple[str, str]] = []
        self.line = first
        self.col = 1
        self._locs: dict[tuple[int, int], int] = {}
        self.sp = 0

    # errors and locations ------------------------------------------------------------
    def err(self, node: ast.AST | None, msg: str) -> LangCompileError:
        """A LangCompileError with ``msg`` at ``node``'s line of the source file."""
        line = self.first + node.lineno - 1 if node is not None and hasattr(node, "lineno") else self.line
        return LangCompileError(self.filename, line, msg)

    def at(self, node: ast.AST) -> None:
        """Make ``node``'s position the current source position (for debug locations)."""
        if hasattr(node, "lineno"):
            self.line = self.first + node.lineno - 1
            self.col = node.col_offset + 1

    def dbg(self) -> str:
        """The ``!dbg`` suffix for the current source position."""
        key = (self.line, self.col)
        idx = self._locs.get(key)
        if idx is None:
            idx = self._locs[key] = self.mod.meta(f"!DILocation(line: {self.line}, column: {self.col}, "
                                                  f"scope: !{self.sp})")
        return f", !dbg !{idx}"

    # emission ------------------------------------------------------------------------
    def tmp(self) -> str:
        """A fresh SSA name."""
        self.n += 1
        return f"%t{self.n}"

    def label(self, hint: str = "b") -> str:
        """A fresh block name starting with ``hint``."""
        self.n += 1
        return f"{hint}{self.n}"

    def emit(self, text: str, value: bool = True) -> str:
        """Emit one instruction (into a fresh temporary when ``value``); returns the temporary."""
        if self.terminated:
            self.start_block(self.label("dead"))
        if value:
            t = self.tmp()
            self.cur.append(f"  {t} = {text}{self.dbg()}")
            return t
        self.cur.append(f"  {text}{self.dbg()}")
        return ""

    def term(self, text: str) -> None:
        """Emit a terminator (br, ret) and close the current block."""
        if self.terminated:
            self.start_block(self.label("dead"))
        self.cur.append(f"  {text}{self.dbg()}")
        self.terminated = True

    def start_block(self, name: str) -> None:
        """Open block ``name`` (falling through from an open block)."""
        if not self.terminated and self.blocks:
            self.cur.append(f"  br label %{name}{self.dbg()}")
        self.cur = []
        self.blocks.append((name, self.cur))
        self.terminated = False

    # the function --------------------------------------------------------------------
    def generate(self) -> None:
        """Compile the function's body into the module."""
        info, mod = self.info, self.mod
        f = self.fdef
        self.at(f)
        line = self.first + f.lineno - 1
        sub = mod.subroutine(info.ret, [p[1] for p in info.params] if not info.ctx_args
                             else [T.ptr[T.u64]])
        flags = "DISPFlagDefinition | DISPFlagOptimized" + ("" if info.section else " | DISPFlagLocalToUnit")
        fileid = mod.file(self.filename)
        self.sp = mod._reserve()
        # named parameters: the kernel's BTF check refuses a global function whose
        # prototype has anonymous arguments ("Invalid arg#1")
        pnames = [p[0] for p in info.params] if not info.ctx_args else ["ctx"]
        ptypes = [p[1] for p in info.params] if not info.ctx_args else [T.ptr[T.u64]]
        pvars = [mod.meta(f'!DILocalVariable(name: "{n}", arg: {i + 1}, scope: !{self.sp}, '
                          f"file: !{fileid}, line: {line}, type: !{mod.basic(t)})")
                 for i, (n, t) in enumerate(zip(pnames, ptypes))]
        retained = "!{" + ", ".join(f"!{v}" for v in pvars) + "}"
        mod.set_meta(self.sp, f'distinct !DISubprogram(name: "{info.symbol}", scope: !{fileid}, '
                              f"file: !{fileid}, line: {line}, type: !{sub}, scopeLine: {line}, "
                              f"flags: DIFlagPrototyped, spFlags: {flags}, unit: !{mod.cu}, "
                              f"retainedNodes: {retained})")
        self.start_block("entry")
        if info.ctx_args:
            args_ir = "ptr %ctx"
            for i, (pname, pty) in enumerate(info.params):
                slotp = self.emit(f"getelementptr inbounds i64, ptr %ctx, i64 {i}")
                raw = self.emit(f"load i64, ptr {slotp}, align 8")
                v = Val(pty, self.emit(f"inttoptr i64 {raw} to ptr") if isinstance(pty, T.PtrType)
                        else self._conv_ir(Val(T.u64, raw), pty))
                self.new_local(pname, v)
        else:
            args_ir = ", ".join(f"{_llty(t)} %a.{n}" for n, t in info.params)
            for pname, pty in info.params:
                self.new_local(pname, Val(pty, f"%a.{pname}"))
        body = f.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]
        self._definite(body, {p[0] for p in info.params}, [])
        self.stmts(body)
        if not self.terminated and not self.reachable(self.blocks[-1][0]):
            self.term("unreachable")
        if not self.terminated:
            if info.ret is None:
                self.term("ret void")
            else:
                raise self.err(f.body[-1] if f.body else f,
                               f"{info.symbol}: the end of the function is reachable without a "
                               f"return (it returns {_tname(info.ret)})")
        attrs = "#2" if info.inline else ("#0" if info.section else "#1")
        linkage = "dso_local" if info.section else "internal"
        sec = f' section "{info.section}"' if info.section else ""
        out = [f"define {linkage} {_llty(info.ret)} @{info.symbol}({args_ir}) {attrs}{sec} !dbg !{self.sp} {{"]
        for i, (name, insns) in enumerate(self.blocks):
            out.append(f"{name}:")
            if i == 0:
                out += self.allocas
            out += insns
        out.append("}")
        mod.funcs_ir.append("\n".join(out))
        if info.section:
            mod.used.append(f"@{info.symbol}")

    # definite assignment: a read Python could find unbound is refused (the compiled
    # program would read an undefined stack slot where Python raises UnboundLocalError)
    def _reads(self, node: ast.AST | None, have: set[str]) -> None:
        if node is None:
            return
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in self.assigned \
                    and n.id not in have:
                raise self.err(n, f"local variable {n.id!r} is used before it is assigned "
                                  "(on some path)")

    def _definite(self, body: list, have: set[str], breaks: list) -> set[str] | None:
        """Names surely assigned after ``body`` (None: it does not fall through)."""
        have = set(have)
        for st in body:
            if isinstance(st, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                self._reads(st.value, have)
                targets = st.targets if isinstance(st, ast.Assign) else [st.target]
                targets = [x for t in targets for x in (t.elts if isinstance(t, ast.Tuple) else [t])]
                for t in targets:
                    if isinstance(t, ast.Name):
                        if isinstance(st, ast.AugAssign):
                            self._reads(ast.Name(t.id, ast.Load(), lineno=t.lineno,
                                                 col_offset=t.col_offset), have)
                        have.add(t.id)
                    else:
                        self._reads(t, have)
            elif isinstance(st, ast.FunctionDef):
                have.add(st.name)            # its body is checked when it is compiled
            elif isinstance(st, ast.Return):
                self._reads(st.value, have)
                return None
            elif isinstance(st, (ast.Break, ast.Continue)):
                if isinstance(st, ast.Break):
                    breaks.append(set(have))
                return None
            elif isinstance(st, ast.If):
                self._reads(st.test, have)
                a = self._definite(st.body, have, breaks)
                b = self._definite(st.orelse, have, breaks)
                if a is None and b is None:
                    return None
                have = a if b is None else b if a is None else a & b
            elif isinstance(st, ast.While):
                self._reads(st.test, have)
                inner: list = []
                self._definite(st.body, have, inner)
                forever = isinstance(st.test, ast.Constant) and st.test.value is True
                if forever:
                    if not inner:
                        return None
                    have = set.intersection(*inner)
            elif isinstance(st, ast.For):
                self._reads(st.iter, have)
                inner = []
                body_have = set(have)
                if isinstance(st.target, ast.Name):
                    body_have.add(st.target.id)
                self._definite(st.body, body_have, inner)
            else:
                self._reads(st, have)
        return have

    def reachable(self, name: str) -> bool:
        """True if some branch targets block ``name`` (or it is the entry)."""
        if name == "entry":
            return True
        needle = f"label %{name}"
        return any(needle + "," in i or i.endswith(needle) or needle + " " in i
                   for _, insns in self.blocks for i in insns)

    # locals ----------------------------------------------------------------------------
    def new_local(self, name: str, v: Val, node: ast.AST | None = None) -> Local:
        """Create local ``name`` with the type of ``v`` and store ``v`` in it."""
        ty = v.ty if not v.is_const else FLEX
        if ty is None:
            raise self.err(node, f"{name}: cannot store a value of no type")
        slot = f"%v.{name}.{len(self.locals)}"
        self.allocas.append(f"  {slot} = alloca {_llty(ty)}, align 8")
        loc = self.locals[name] = Local(ty, slot)
        self.store_local(loc, v, node)
        return loc

    def store_local(self, loc: Local, v: Val, node: ast.AST | None) -> None:
        """Store ``v`` (converted to the local's type) into ``loc``."""
        ir = self.coerce(v, loc.ty, node)
        self.emit(f"store {_llty(loc.ty)} {ir}, ptr {loc.slot}", value=False)

    def assign_name(self, name: str, v: Val, node: ast.AST) -> None:
        """``name = v``: a new local or a store to an existing one (module globals cannot be
        rebound)."""
        loc = self.locals.get(name)
        if loc is None:
            self.new_local(name, v, node)
            return
        if v.is_const:
            if loc.ty is not FLEX and loc.ty is not BOOL:
                raise self.err(node, f"{name} is {_tname(loc.ty)}; a plain int would change its type "
                                     f"in Python: write {name} = {_tname(loc.ty)}({v.const})")
            if loc.ty is BOOL and not isinstance(v.const, bool):
                raise self.err(node, f"{name} is bool; this is an int")
        elif not _same_type(v.ty, loc.ty):
            raise self.err(node, f"{name} is {_tname(loc.ty)}; this value is {_tname(v.ty)} "
                                 f"(convert it: {_tname(loc.ty)}(...))")
        self.store_local(loc, v, node)

    # conversions -------------------------------------------------------------------------
    def const_ir(self, value: int, ty: Any) -> str:
        """The IR operand of the constant ``value`` as type ``ty``."""
        if ty is BOOL:
            return "true" if value else "false"
        if isinstance(ty, T.PtrType):
            if value == 0:
                return "null"
            return self.emit(f"inttoptr i64 {_wrap(value, T.u64)} to {_llty(ty)}")
        return str(_wrap(int(value), ty))

    def _conv_ir(self, v: Val, to: Any) -> str:
        """Value conversion int -> int (C semantics), bool -> int."""
        frm = v.ty
        if v.is_const:
            return self.const_ir(v.const, to)
        if frm is to or (_is_int(frm) and _is_int(to) and _bits(frm) == _bits(to)):
            return v.ref
        if frm is BOOL and _is_int(to):
            return self.emit(f"zext i1 {v.ref} to i{_bits(to)}")
        if _is_int(frm) and to is BOOL:
            return self.emit(f"icmp ne i{_bits(frm)} {v.ref}, 0")
        if _is_int(frm) and _is_int(to):
            fb, tb = _bits(frm), _bits(to)
            if tb < fb:
                return self.emit(f"trunc i{fb} {v.ref} to i{tb}")
            op = "sext" if _signed(frm) else "zext"
            return self.emit(f"{op} i{fb} {v.ref} to i{tb}")
        raise TypeError((frm, to))

    def coerce(self, v: Val, to: Any, node: ast.AST | None) -> str:
        """The IR operand of ``v`` converted to type ``to``; a compile error if it cannot be."""
        if v.is_const:
            if isinstance(to, T.PtrType) and v.const != 0:
                raise self.err(node, f"the int {v.const} is not a pointer (only 0 / None is)")
            return self.const_ir(v.const, to)
        if _same_type(v.ty, to) or (_is_int(v.ty) and _is_int(to)) or (v.ty is BOOL and _is_int(to)):
            return self._conv_ir(v, to)
        if isinstance(v.ty, T.PtrType) and isinstance(to, T.PtrType):
            if v.ty.space != to.space:
                raise self.err(node, f"expected {_tname(to)}, got {_tname(v.ty)} (another address "
                                     f"space: convert it, {_tname(to)}(...))")
            return v.ref
        raise self.err(node, f"expected {_tname(to)}, got {_tname(v.ty)}")

    def generic(self, v: Val) -> str:
        """``v``'s pointer in address space 0, what loads and stores go through: an arena
        pointer is cast as LLVM's BPF backend casts it (``BPF_ADDR_SPACE_CAST``)."""
        if v.ty.space:
            return self.emit(f"addrspacecast {_llty(v.ty)} {v.ref} to ptr")
        return v.ref

    def truth(self, v: Val, node: ast.AST) -> str:
        """An i1 operand: the truth value of ``v``."""
        if v.is_const:
            return "true" if v.const else "false"
        if v.ty is BOOL:
            return v.ref
        if _is_int(v.ty):
            return self.emit(f"icmp ne i{_bits(v.ty)} {v.ref}, 0")
        if isinstance(v.ty, T.PtrType):
            return self.emit(f"icmp ne {_llty(v.ty)} {v.ref}, null")
        raise self.err(node, f"{_tname(v.ty)} has no truth value")

    # statements ----------------------------------------------------------------------
    def stmts(self, body: list[ast.stmt]) -> None:
        """Compile a list of statements."""
        for s in body:
            self.stmt(s)

    def stmt(self, s: ast.stmt) -> None:
        """Compile one statement (a compile error for unsupported kinds)."""
        self.at(s)
        m = getattr(self, "s_" + type(s).__name__, None)
        if m is None:
            raise self.err(s, f"{_describe(s)} is not supported in BPF programs")
        m(s)

    def s_Pass(self, s: ast.Pass) -> None:
        """``pass``."""
        pass

    def s_FunctionDef(self, s: ast.FunctionDef) -> None:
        """A nested ``def``: a function of its own, inlined where it is called.  Its
        arguments and return value must have exactly the annotated types (the Python
        closure converts nothing, so a conversion would make the two runs differ)."""
        a = s.args
        if s.decorator_list or a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs or a.defaults:
            raise self.err(s, f"nested def {s.name}: plain positional parameters only, no "
                              "decorators or defaults")
        if s.name in self.nested or s.name in self.locals:
            raise self.err(s, f"{s.name} is defined twice in this function")
        params = []
        for arg in a.args:
            if arg.annotation is None:
                raise self.err(s, f"nested def {s.name}: parameter {arg.arg!r} needs a type annotation")
            params.append((arg.arg, self.type_of_annotation(arg.annotation)))
        ret = None if s.returns is None or (isinstance(s.returns, ast.Constant) and s.returns.value is None) \
            else self.type_of_annotation(s.returns)
        if len(params) > 5:
            raise self.err(s, f"nested def {s.name} takes {len(params)} arguments: 5 at most (r1-r5)")
        symbol = f"{self.info.symbol}__{s.name}"
        n = 1
        while symbol in self.mod.symbols:
            n += 1
            symbol = f"{self.info.symbol}__{s.name}_{n}"
        self.mod.symbols.add(symbol)
        outer = self.assigned | self.outer_locals
        own = assigned_names(s)
        # what it reads of ours: passed at each call as extra arguments, the values the
        # Python closure would read at that moment
        captured = sorted({n.id for st in s.body for n in ast.walk(st)
                           if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                           and n.id in outer and n.id not in own})
        nested = NestedDef(s, self.filename, self.first, self.env, outer)
        info = FuncInfo(nested, symbol, params, ret, inline=True, exact=True, captured=captured)
        self.nested[s.name] = info

    def s_Expr(self, s: ast.Expr) -> None:
        """An expression statement: a call (docstrings are skipped)."""
        if isinstance(s.value, ast.Constant) and isinstance(s.value.value, str):
            return
        if not isinstance(s.value, ast.Call):
            raise self.err(s, "an expression statement must be a call")
        self.call(s.value, want_value=False)

    def s_Assign(self, s: ast.Assign) -> None:
        """``target = value``, ``a = b = value`` (left to right, as Python) and
        ``a, b = x, y`` (every value computed before any target is stored, so
        ``a, b = b, a`` swaps)."""
        if isinstance(s.value, ast.Tuple):
            for t in s.targets:
                if not isinstance(t, ast.Tuple) or len(t.elts) != len(s.value.elts):
                    raise self.err(s, f"a tuple of {len(s.value.elts)} values is assigned to a "
                                      f"tuple of as many targets only")
                if any(isinstance(x, ast.Starred) for x in t.elts + s.value.elts):
                    raise self.err(s, "starred assignment is not supported")
            vals = [self.expr(x) for x in s.value.elts]
            for t in s.targets:
                for target, v in zip(t.elts, vals):
                    self.assign(target, v)
            return
        v = self.expr(s.value)
        for t in s.targets:
            if isinstance(t, ast.Tuple):
                raise self.err(t, "unpacking assigns a tuple of values only (a, b = x, y)")
            self.assign(t, v)

    def s_AnnAssign(self, s: ast.AnnAssign) -> None:
        """``name: type = value``."""
        if s.value is None or not isinstance(s.target, ast.Name):
            raise self.err(s, "an annotated name needs a value (x: u32 = u32(0))")
        ty = self.type_of_annotation(s.annotation)
        v = self.expr(s.value)
        if v.is_const and ty is not FLEX:
            raise self.err(s, f"{s.target.id}: a plain int stays a plain int in Python whatever the "
                              f"annotation: write {s.target.id} = {_tname(ty)}({v.const})")
        if not v.is_const and not _same_type(v.ty, ty):
            raise self.err(s, f"{s.target.id}: annotated {_tname(ty)}, value is {_tname(v.ty)}")
        self.assign(s.target, v)

    def s_AugAssign(self, s: ast.AugAssign) -> None:
        """``target op= value``."""
        cur = self.expr(_load(s.target))
        self.at(s)
        v = self.binop(s.op, cur, self.expr(s.value), s)
        self.assign(s.target, v)

    def assign(self, target: ast.expr, v: Val) -> None:
        """Store ``v`` into a name, a section field, an attribute or a subscript."""
        if isinstance(target, ast.Name):
            self.assign_name(target.id, v, target)
            return
        if isinstance(target, ast.Attribute) and self.resolver.is_section(self.static(target.value)):
            gv = self.resolver.section_field(self.static(target.value), target.attr)
            if gv is not None and gv.section == ".rodata":
                raise self.err(target, f"{target.attr} is in .rodata: programs cannot change it")
        place, ty, volatile = self.lvalue(target)
        if isinstance(ty, (tuple,)) or ty is None or not (_is_int(ty) or isinstance(ty, T.PtrType)):
            raise self.err(target, f"cannot assign to a {T.kind_name(ty)}")
        ir = self.coerce(v, ty, target)
        vol = "volatile " if volatile else ""
        self.emit(f"store {vol}{_llty(ty)} {ir}, ptr {place}, align {T.alignof(ty)}", value=False)

    def s_If(self, s: ast.If) -> None:
        """``if``/``elif``/``else``."""
        then, other, end = self.label("then"), self.label("else"), self.label("endif")
        self.cond(s.test, then, other if s.orelse else end)
        self.start_block(then)
        self.stmts(s.body)
        self.at(s)
        if not self.terminated:
            self.term(f"br label %{end}")
        if s.orelse:
            self.start_block(other)
            self.stmts(s.orelse)
            if not self.terminated:
                self.term(f"br label %{end}")
        self.start_block(end)

    def s_While(self, s: ast.While) -> None:
        """``while`` (no ``else``)."""
        if s.orelse:
            raise self.err(s, "while ... else is not supported")
        head, body, end = self.label("while"), self.label("wbody"), self.label("wend")
        self.start_block(head)
        self.at(s)
        self.cond(s.test, body, end)
        self.start_block(body)
        self.loops.append((head, end))
        self.stmts(s.body)
        self.loops.pop()
        self.at(s)
        if not self.terminated:
            self.term(f"br label %{head}")
        self.start_block(end)

    def s_For(self, s: ast.For) -> None:
        """``for`` over ``bpf_range``/``range`` (no ``else``)."""
        if s.orelse:
            raise self.err(s, "for ... else is not supported")
        it = s.iter
        fobj = self.static(it.func) if isinstance(it, ast.Call) else None
        if _is_bpf_range(fobj):
            self.for_iter_num(s, it)
            return
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name)
                and self.lookup(it.func.id, it.func) is builtins.range):
            raise self.err(s, "for loops iterate over range(...) or bpf_range(...) only")
        if not isinstance(s.target, ast.Name):
            raise self.err(s, "the loop variable must be a name")
        if it.keywords or not 1 <= len(it.args) <= 3:
            raise self.err(it, "range() takes 1 to 3 positional arguments")
        args = [self.expr(a) for a in it.args]
        start, stop = (Val(None, const=0), args[0]) if len(args) == 1 else (args[0], args[1])
        step = 1
        if len(args) == 3:
            if not args[2].is_const or args[2].const == 0:
                raise self.err(it, "the step of range() must be a non-zero constant")
            step = args[2].const
        for a in (start, stop):
            if not a.is_const and not _is_int(a.ty):
                raise self.err(it, f"range() of a {_tname(a.ty)}")
        # Python's range compares the values mathematically: in 64-bit signed, or, for a
        # u64 stop counted up to from a start that is never negative, in 64-bit unsigned
        # (both exact there); other u64 bounds could differ: refuse them
        unsigned = False
        if not stop.is_const and stop.ty is T.u64:
            unsigned = step > 0 and (start.const >= 0 if start.is_const else not _signed(start.ty))
        for a in (start, stop):
            if not a.is_const and a.ty is T.u64 and not unsigned:
                raise self.err(it, "range() over a u64 here (counting down, or from a signed "
                                   "start): convert the bound to s64 or a narrower type")
        counter = f"%v.range.{self.n}"
        self.n += 1
        self.allocas.append(f"  {counter} = alloca i64, align 8")
        self.emit(f"store i64 {self._conv_ir(start, FLEX) if not start.is_const else start.const}, "
                  f"ptr {counter}", value=False)
        stop_ir = self._conv_ir(stop, FLEX) if not stop.is_const else str(stop.const)
        head, body, latch, end = (self.label("for"), self.label("fbody"), self.label("fnext"),
                                  self.label("fend"))
        self.start_block(head)
        c = self.emit(f"load i64, ptr {counter}")
        test = self.emit(f"icmp {'ult' if unsigned else 'slt' if step > 0 else 'sgt'} i64 {c}, {stop_ir}")
        self.term(f"br i1 {test}, label %{body}, label %{end}")
        self.start_block(body)
        self.assign_name(s.target.id, Val(FLEX, c), s.target)
        self.loops.append((latch, end))
        self.stmts(s.body)
        self.loops.pop()
        self.at(s)
        self.start_block(latch)
        c2 = self.emit(f"load i64, ptr {counter}")
        nxt = self.emit(f"add i64 {c2}, {step}")
        self.emit(f"store i64 {nxt}, ptr {counter}", value=False)
        self.term(f"br label %{head}")
        self.start_block(end)

    def for_iter_num(self, s: ast.For, it: ast.Call) -> None:
        """``for i in bpf_range(a, b)``: libbpf's ``bpf_for``, an open-coded numeric
        iterator the verifier checks once instead of following every iteration."""
        if not isinstance(s.target, ast.Name):
            raise self.err(s, "the loop variable must be a name")
        if it.keywords or len(it.args) != 2:
            raise self.err(it, "bpf_range(start, end) takes two arguments")
        start, end = (self.expr(a) for a in it.args)
        self.at(s)
        it_t = T.ptr[ITER_NUM]
        sig_new = KfuncSig("bpf_iter_num_new", T.s32, (it_t, T.s32, T.s32))
        sig_next = KfuncSig("bpf_iter_num_next", T.ptr[T.s32], (it_t,))
        sig_destroy = KfuncSig("bpf_iter_num_destroy", None, (it_t,))
        for sig in (sig_new, sig_next, sig_destroy):
            self.mod.declare_kfunc(sig)
        itv = f"%v.iter.{self.n}"
        self.n += 1
        self.allocas.append(f"  {itv} = alloca i64, align 8")
        a = self.coerce(start, T.s32, it)
        b = self.coerce(end, T.s32, it)
        self.emit(f"call i32 @bpf_iter_num_new(ptr {itv}, i32 {a}, i32 {b})")
        head, body, end_l = self.label("iter"), self.label("ibody"), self.label("iend")
        self.start_block(head)
        p = self.emit(f"call ptr @bpf_iter_num_next(ptr {itv})")
        isnull = self.emit(f"icmp eq ptr {p}, null")
        chk = self.label("ichk")
        self.term(f"br i1 {isnull}, label %{end_l}, label %{chk}")
        self.start_block(chk)
        v = self.emit(f"load i32, ptr {p}, align 4")
        # as bpf_for does: the bounds tell the verifier the value's range
        lo = self.emit(f"icmp sge i32 {v}, {a}")
        hi = self.emit(f"icmp slt i32 {v}, {b}")
        ok = self.emit(f"and i1 {lo}, {hi}")
        self.term(f"br i1 {ok}, label %{body}, label %{end_l}")
        self.start_block(body)
        self.assign_name(s.target.id, Val(FLEX, self.emit(f"sext i32 {v} to i64")), s.target)
        self.loops.append((head, end_l))
        self.stmts(s.body)
        self.loops.pop()
        self.at(s)
        if not self.terminated:
            self.term(f"br label %{head}")
        self.start_block(end_l)
        self.emit(f"call void @bpf_iter_num_destroy(ptr {itv})", value=False)

    def s_Break(self, s: ast.Break) -> None:
        """``break`` out of the innermost loop."""
        if not self.loops:
            raise self.err(s, "break outside a loop")
        self.term(f"br label %{self.loops[-1][1]}")

    def s_Continue(self, s: ast.Continue) -> None:
        """``continue`` the innermost loop."""
        if not self.loops:
            raise self.err(s, "continue outside a loop")
        self.term(f"br label %{self.loops[-1][0]}")

    def s_Return(self, s: ast.Return) -> None:
        """``return`` with a value of the function's return type (or none for void)."""
        ret = self.info.ret
        if s.value is None:
            if ret is not None:
                raise self.err(s, f"return without a value in a function returning {_tname(ret)}")
            self.term("ret void")
            return
        if ret is None:
            raise self.err(s, f"{self.info.symbol} returns nothing (annotate its return type)")
        v = self.expr(s.value)
        self.at(s)
        if self.info.exact and not (_same_type(v.ty, ret) if not v.is_const else ret is FLEX):
            raise self.err(s, f"{self.fdef.name} returns {_tname(ret)}; this value is {_vname(v)} "
                              f"(a nested def converts nothing in Python: return a {_tname(ret)})")
        self.term(f"ret {_llty(ret)} {self.coerce(v, ret, s)}")

    # conditions ----------------------------------------------------------------------
    def cond(self, e: ast.expr, yes: str, no: str) -> None:
        """Branch to ``yes`` or ``no`` on ``e`` (short-circuiting ``and``/``or``/``not``)."""
        if isinstance(e, ast.BoolOp):
            for i, v in enumerate(e.values):
                last = i == len(e.values) - 1
                nxt = self.label("and" if isinstance(e.op, ast.And) else "or")
                if isinstance(e.op, ast.And):
                    self.cond(v, yes if last else nxt, no)
                else:
                    self.cond(v, yes, no if last else nxt)
                if not last:
                    self.start_block(nxt)
            return
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
            self.cond(e.operand, no, yes)
            return
        v = self.expr(e)
        self.at(e)
        if v.is_const:
            self.term(f"br label %{yes if v.const else no}")
            return
        self.term(f"br i1 {self.truth(v, e)}, label %{yes}, label %{no}")

    # expressions ---------------------------------------------------------------------
    def expr(self, e: ast.expr) -> Val:
        """Compile an expression to a value."""
        self.at(e)
        m = getattr(self, "e_" + type(e).__name__, None)
        if m is None:
            raise self.err(e, f"{_describe(e)} is not supported in BPF programs")
        return m(e)

    def e_Constant(self, e: ast.Constant) -> Val:
        """An int, bool or None constant."""
        v = e.value
        if isinstance(v, bool):
            return Val(BOOL, "true" if v else "false")
        if isinstance(v, int):
            return Val(None, const=v)
        if v is None:
            return Val(None, const=0)
        raise self.err(e, f"a {type(v).__name__} constant is not supported (integers only)")

    def e_Name(self, e: ast.Name) -> Val:
        """A local, a module global or another name of the function's environment."""
        loc = self.locals.get(e.id)
        if loc is not None:
            return Val(loc.ty, self.emit(f"load {_llty(loc.ty)}, ptr {loc.slot}"))
        if e.id in self.assigned:
            raise self.err(e, f"local variable {e.id!r} is used before it is assigned")
        obj = self.lookup(e.id, e)
        return self.value_of_object(obj, e)

    def value_of_object(self, obj: Any, e: ast.AST) -> Val:
        """The value of a Python object a name refers to (bools, typed and plain ints...)."""
        if isinstance(obj, bool):
            return Val(BOOL, "true" if obj else "false")
        if isinstance(obj, T.FixedInt):
            return Val(type(obj), str(_wrap(int(obj), type(obj))))
        if isinstance(obj, int):
            return Val(None, const=int(obj))
        raise self.err(e, f"{_describe_obj(obj)} is not a value a program can use")

    def lookup(self, name: str, node: ast.AST) -> Any:
        """The object ``name`` refers to: the function's environment, then builtins."""
        if name in self.env:
            return self.env[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        if name in self.outer_locals:
            raise self.err(node, f"{name} is a local of the enclosing function: a nested def is "
                                 "compiled on its own, pass it as an argument")
        raise self.err(node, f"name {name!r} is not defined")

    def static(self, e: ast.expr) -> Any:
        """Evaluate a name/attribute chain at compile time (module constants, types...)."""
        if isinstance(e, ast.Name):
            if e.id in self.locals or e.id in self.assigned:
                return _LOCAL
            return self.lookup(e.id, e)
        if isinstance(e, ast.Attribute):
            base = self.static(e.value)
            if base is _LOCAL or self.resolver.is_section(base):
                return _LOCAL
            try:
                return getattr(base, e.attr)
            except AttributeError:
                raise self.err(e, f"{_describe_obj(base)} has no attribute {e.attr!r}") from None
        if isinstance(e, ast.Subscript) and isinstance(e.value, (ast.Name, ast.Attribute)):
            # ptr[T] / arena_ptr[T], however the factory is named (lang.ptr[T] too)
            factory = self.static(e.value)
            if factory is T.ptr or factory is T.arena_ptr:
                return factory[self.type_of_annotation(e.slice, allow_struct=True)]
            # a module constant tuple at a constant index: TABLE[2] is folded
            if isinstance(factory, tuple) and isinstance(e.slice, ast.Constant) \
                    and type(e.slice.value) is int:
                try:
                    return factory[e.slice.value]
                except IndexError:
                    raise self.err(e, f"index {e.slice.value} out of range of a tuple of "
                                      f"{len(factory)}") from None
        return _LOCAL

    def type_of_annotation(self, node: ast.expr, allow_struct: bool = False) -> Any:
        """The type an annotation names (u8...u64, s8...s64, ptr[...])."""
        obj = self.static(node)
        if obj is int:
            return FLEX
        if obj is bool:
            return BOOL
        if isinstance(obj, type) and issubclass(obj, T.FixedInt) and obj is not T.FixedInt:
            return obj
        if isinstance(obj, T.PtrType):
            return obj
        if allow_struct and (isinstance(obj, T.Opaque) or (isinstance(obj, type) and _is_ctypes_struct(obj))):
            return obj
        raise self.err(node, f"{ast.unparse(node)} is not a type (u8..u64, s8..s64, int, bool, ptr[T], arena_ptr[T])")

    def e_Attribute(self, e: ast.Attribute) -> Val:
        """``obj.attr``: a section field, a struct field through a pointer, a constant."""
        st = self.static(e)
        if st is not _LOCAL:
            return self.value_of_object(st, e)
        base_static = self.static(e.value)
        if self.resolver.is_section(base_static):
            gv = self.resolver.section_field(base_static, e.attr)
            if gv is not None and gv.section == ARENA_SECTION and \
                    (isinstance(gv.kind, tuple) or _is_ctypes_struct(gv.kind)):
                # an __arena array or structure is an arena pointer, as in C
                return Val(T.arena_ptr[gv.kind[1] if isinstance(gv.kind, tuple) else gv.kind],
                           f"@{gv.name}")
        place, ty, volatile = self.lvalue(e)
        return self.load(place, ty, volatile, e)

    def load(self, place: str, ty: Any, volatile: bool, e: ast.AST) -> Val:
        """Load a value of type ``ty`` from ``place`` (arrays and structs give a pointer instead).
        """
        if isinstance(ty, tuple):      # an array: its address, as a pointer to the elements
            return Val(T.ptr[ty[1]], place)
        if isinstance(ty, type) and _is_ctypes_struct(ty):
            return Val(T.ptr[ty], place)
        vol = "volatile " if volatile else ""
        return Val(ty, self.emit(f"load {vol}{_llty(ty)}, ptr {place}, align {T.alignof(ty)}"))

    def e_Subscript(self, e: ast.Subscript) -> Val:
        """``p[i]`` on pointers and arrays; a module tuple at a constant index."""
        if isinstance(e.value, (ast.Name, ast.Attribute)):
            st = self.static(e)
            if st is not _LOCAL:
                return self.value_of_object(st, e)
        place, ty, volatile = self.lvalue(e)
        return self.load(place, ty, volatile, e)

    def lvalue(self, e: ast.expr) -> tuple[str, Any, bool]:
        """(address, kind, volatile) of a place: a global field, ``p[i]``, ``p.field``."""
        if isinstance(e, ast.Attribute):
            base_static = self.static(e.value)
            if self.resolver.is_section(base_static):
                gv = self.resolver.section_field(base_static, e.attr)
                if gv is None:
                    raise self.err(e, f"section {base_static.__name__} has no field {e.attr!r}")
                if gv.section == ARENA_SECTION:     # as(1) -> as(0) before the access
                    self.at(e)
                    return (self.emit(f"addrspacecast ptr addrspace(1) @{gv.name} to ptr"), gv.kind,
                            gv.volatile)
                return f"@{gv.name}", gv.kind, gv.section == ".rodata" or gv.volatile
            base = self.expr(e.value)
            if not isinstance(base.ty, T.PtrType) or not _is_ctypes_struct(base.ty.elem):
                raise self.err(e, f".{e.attr} on a {_tname(base.ty)} (fields need a pointer to a "
                                  "ctypes structure)")
            fields = T.struct_fields(base.ty.elem)
            if e.attr not in fields:
                raise self.err(e, f"{base.ty.elem.__name__} has no field {e.attr!r}")
            off, kind = fields[e.attr]
            self.at(e)
            ref = self.generic(base)
            addr = self.emit(f"getelementptr inbounds i8, ptr {ref}, i64 {off}") if off else ref
            return addr, kind, False
        if isinstance(e, ast.Subscript):
            base = self.expr(e.value)
            if not isinstance(base.ty, T.PtrType):
                raise self.err(e, f"indexing a {_tname(base.ty)} (only pointers can be indexed)")
            elem = base.ty.elem
            if isinstance(elem, T.Opaque):
                raise self.err(e, f"{elem.name} is opaque: it cannot be read")
            idx = self.expr(e.slice)
            self.at(e)
            size = T.sizeof(elem)
            ref = self.generic(base)
            if idx.is_const:
                off = idx.const * size
                addr = self.emit(f"getelementptr inbounds i8, ptr {ref}, i64 {off}") if off else ref
            else:
                if not _is_int(idx.ty):
                    raise self.err(e.slice, f"an index must be an integer, not {_tname(idx.ty)}")
                i64 = self._conv_ir(idx, FLEX if _signed(idx.ty) else T.u64)
                addr = self.emit(f"getelementptr inbounds [{size} x i8], ptr {ref}, i64 {i64}")
            # scalar reads through a pointer are volatile: ring memory changes under the
            # program (the kernel posts CQEs), as the C programs' `volatile __u32 *`
            return addr, elem, _is_int(elem)
        if isinstance(e, ast.Name):
            raise self.err(e, f"{e.id} is not a place")
        raise self.err(e, f"cannot assign to {_describe(e)}")

    def e_BinOp(self, e: ast.BinOp) -> Val:
        """A binary operator."""
        a = self.expr(e.left)
        b = self.expr(e.right)
        self.at(e)
        return self.binop(e.op, a, b, e)

    def binop(self, op: ast.operator, a: Val, b: Val, e: ast.AST) -> Val:
        # pointer arithmetic
        """``l op r`` with C-like integer rules (result type from the operands)."""
        if isinstance(a.ty, T.PtrType) or isinstance(b.ty, T.PtrType):
            if isinstance(op, (ast.Add, ast.Sub)) and isinstance(a.ty, T.PtrType) and \
                    (b.is_const or _is_int(b.ty)):
                if isinstance(a.ty.elem, T.Opaque):
                    raise self.err(e, f"arithmetic on a pointer to opaque {a.ty.elem.name}")
                size = T.sizeof(a.ty.elem)
                if b.is_const:
                    off = b.const * size * (1 if isinstance(op, ast.Add) else -1)
                    return Val(a.ty, self.emit(f"getelementptr i8, {_llty(a.ty)} {a.ref}, i64 {off}"))
                i64 = self._conv_ir(b, FLEX if _signed(b.ty) else T.u64)
                if isinstance(op, ast.Sub):
                    i64 = self.emit(f"sub i64 0, {i64}")
                return Val(a.ty, self.emit(f"getelementptr [{size} x i8], {_llty(a.ty)} {a.ref}, i64 {i64}"))
            raise self.err(e, f"{_opname(op)} on {_vname(a)} and {_vname(b)}: pointer arithmetic "
                              "is pointer + or - an integer only")
        for v in (a, b):
            if not v.is_const and not _is_int(v.ty):
                raise self.err(e, f"arithmetic ({_opname(op)}) on a {_tname(v.ty)}")
        if isinstance(op, ast.Div):
            raise self.err(e, "/ is not integer division: use //")
        if a.is_const and b.is_const:
            try:
                return Val(None, const=_fold(op, a.const, b.const))
            except (ZeroDivisionError, TypeError, ValueError) as exc:
                raise self.err(e, f"constant expression: {exc}") from None
        if isinstance(op, (ast.LShift, ast.RShift)):
            ty = a.ty if not a.is_const else FLEX
            bits = _bits(ty)
            x = self._conv_ir(a, ty)
            n = self._conv_ir(b, ty) if not b.is_const else str(b.const & (bits - 1))
            if not b.is_const:
                n = self.emit(f"and i{bits} {n}, {bits - 1}")
            ins = "shl" if isinstance(op, ast.LShift) else ("ashr" if _signed(ty) else "lshr")
            return Val(ty, self.emit(f"{ins} i{bits} {x}, {n}"))
        ty = _common(a.ty if not a.is_const else FLEX, b.ty if not b.is_const else FLEX) \
            if not (a.is_const or b.is_const) else (b.ty if a.is_const else a.ty)
        x, y = self._conv_ir(a, ty), self._conv_ir(b, ty)
        bits = _bits(ty)
        simple = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.BitAnd: "and",
                  ast.BitOr: "or", ast.BitXor: "xor"}
        if type(op) in simple:
            return Val(ty, self.emit(f"{simple[type(op)]} i{bits} {x}, {y}"))
        if isinstance(op, (ast.FloorDiv, ast.Mod)):
            if _signed(ty):
                return Val(ty, self.signed_divmod(isinstance(op, ast.Mod), x, y, bits))
            # BPF: x / 0 == 0, x % 0 == x; LLVM: undefined, so guard the divisor
            if b.is_const and b.const & ((1 << bits) - 1):
                return Val(ty, self.emit(f"{'udiv' if isinstance(op, ast.FloorDiv) else 'urem'} i{bits} {x}, {y}"))
            zero = self.emit(f"icmp eq i{bits} {y}, 0")
            safe = self.emit(f"select i1 {zero}, i{bits} 1, i{bits} {y}")
            q = self.emit(f"{'udiv' if isinstance(op, ast.FloorDiv) else 'urem'} i{bits} {x}, {safe}")
            fallback = "0" if isinstance(op, ast.FloorDiv) else x
            return Val(ty, self.emit(f"select i1 {zero}, i{bits} {fallback}, i{bits} {q}"))
        raise self.err(e, f"operator {_opname(op)} is not supported")

    def signed_divmod(self, mod: bool, x: str, y: str, bits: int) -> str:
        """Python's ``x // y`` or ``x % y`` (floor: the remainder has the divisor's sign)
        on signed ``i{bits}`` values, wrapped to the width, with BPF's answers for a zero
        divisor (``x // 0 == 0``, ``x % 0 == x``).  Built from unsigned division of the
        magnitudes, so it needs no BPF v4 sdiv/smod and has no LLVM undefined case
        (INT_MIN // -1 wraps to INT_MIN, as the application's wrapped result does)."""
        i = f"i{bits}"
        zero = self.emit(f"icmp eq {i} {y}, 0")
        d = self.emit(f"select i1 {zero}, {i} 1, {i} {y}")
        xneg = self.emit(f"icmp slt {i} {x}, 0")
        dneg = self.emit(f"icmp slt {i} {d}, 0")
        ax = self.emit(f"select i1 {xneg}, {i} {self.emit(f'sub {i} 0, {x}')}, {i} {x}")
        ad = self.emit(f"select i1 {dneg}, {i} {self.emit(f'sub {i} 0, {d}')}, {i} {d}")
        uq = self.emit(f"udiv {i} {ax}, {ad}")
        ur = self.emit(f"urem {i} {ax}, {ad}")
        neg = self.emit(f"xor i1 {xneg}, {dneg}")
        # signs differ: -(q + (r != 0)); same: q
        up = self.emit(f"zext i1 {self.emit(f'icmp ne {i} {ur}, 0')} to {i}")
        qneg = self.emit(f"sub {i} 0, {self.emit(f'add {i} {uq}, {up}')}")
        q = self.emit(f"select i1 {neg}, {i} {qneg}, {i} {uq}")
        if mod:
            r = self.emit(f"sub {i} {x}, {self.emit(f'mul {i} {q}, {d}')}")
            return self.emit(f"select i1 {zero}, {i} {x}, {i} {r}")
        return self.emit(f"select i1 {zero}, {i} 0, {i} {q}")

    def e_UnaryOp(self, e: ast.UnaryOp) -> Val:
        """``-x``, ``~x``, ``not x``, ``+x``."""
        v = self.expr(e.operand)
        self.at(e)
        if isinstance(e.op, ast.Not):
            if v.is_const:
                return Val(BOOL, "false" if v.const else "true")
            t = self.truth(v, e)
            return Val(BOOL, self.emit(f"xor i1 {t}, true"))
        if v.is_const:
            return Val(None, const={ast.USub: lambda x: -x, ast.UAdd: lambda x: x,
                                    ast.Invert: lambda x: ~x}[type(e.op)](v.const))
        if not _is_int(v.ty):
            raise self.err(e, f"{_opname(e.op)} on a {_tname(v.ty)}")
        bits = _bits(v.ty)
        if isinstance(e.op, ast.USub):
            return Val(v.ty, self.emit(f"sub i{bits} 0, {v.ref}"))
        if isinstance(e.op, ast.Invert):
            return Val(v.ty, self.emit(f"xor i{bits} {v.ref}, -1"))
        return v

    def e_BoolOp(self, e: ast.BoolOp) -> Val:
        """``and``/``or`` as values."""
        yes, no, end = self.label("bt"), self.label("bf"), self.label("bend")
        slot = f"%v.bool.{self.n}"
        self.n += 1
        self.allocas.append(f"  {slot} = alloca i1, align 1")
        for v in e.values:
            if not isinstance(v, (ast.Compare, ast.BoolOp)) and not (
                    isinstance(v, ast.UnaryOp) and isinstance(v.op, ast.Not)):
                raise self.err(v, "`and`/`or` give an operand's value in Python: use them on "
                                  "comparisons only (or in an if/while test)")
        self.cond(e, yes, no)
        self.start_block(yes)
        self.emit(f"store i1 true, ptr {slot}", value=False)
        self.term(f"br label %{end}")
        self.start_block(no)
        self.emit(f"store i1 false, ptr {slot}", value=False)
        self.term(f"br label %{end}")
        self.start_block(end)
        return Val(BOOL, self.emit(f"load i1, ptr {slot}"))

    def e_Compare(self, e: ast.Compare) -> Val:
        """A comparison (chains are refused)."""
        if any(isinstance(op, (ast.In, ast.NotIn)) for op in e.ops):
            return self.membership(e)
        left = self.expr(e.left)
        results = []
        for op, right_node in zip(e.ops, e.comparators):
            right = self.expr(right_node)
            self.at(e)
            results.append(self.compare(op, left, right, e))
            left = right
        r = results[0]
        for x in results[1:]:
            r = Val(BOOL, self.emit(f"and i1 {r.ref}, {x.ref}"))
        return r

    def min_max(self, is_min: bool, e: ast.Call) -> Val:
        """``min(a, b, ...)`` / ``max(...)`` of values of one type: Python returns one of
        its arguments, so with mixed types the result's type would depend on the values
        (``min(u32(5), 3)`` is the int 3) and the runs could differ; mixing is refused."""
        name = "min" if is_min else "max"
        if len(e.args) < 2:
            raise self.err(e, f"{name}() takes two or more values")
        vals = [self.expr(a) for a in e.args]
        self.at(e)
        if all(v.is_const for v in vals):
            f = min if is_min else max
            return Val(None, const=f(v.const for v in vals))
        ty = next(v.ty for v in vals if not v.is_const)
        for a, v in zip(e.args, vals):
            if v.is_const or not _same_type(v.ty, ty) or not _is_int(ty):
                raise self.err(a, f"{name}() of {_vname(v)} with {_tname(ty)}: Python returns one of "
                                  f"the arguments, so they must have one type (write {_tname(ty)}(...))")
        pred = ("slt" if _signed(ty) else "ult") if is_min else ("sgt" if _signed(ty) else "ugt")
        bits = _bits(ty)
        cur = vals[0].ref
        for v in vals[1:]:
            # Python keeps the first of equal values; for integers any is the same value
            keep = self.emit(f"icmp {pred} i{bits} {v.ref}, {cur}")
            cur = self.emit(f"select i1 {keep}, i{bits} {v.ref}, i{bits} {cur}")
        return Val(ty, cur)

    def membership(self, e: ast.Compare) -> Val:
        """``x in (a, b, c)`` / ``x not in ...``: over a tuple written there or a module
        tuple; ``x == a or x == b ...`` with Python's value comparison."""
        if len(e.ops) != 1:
            raise self.err(e, "`in` cannot be chained with other comparisons")
        node = e.comparators[0]
        if isinstance(node, ast.Tuple):
            items = [self.expr(x) for x in node.elts]
        else:
            tup = self.static(node) if isinstance(node, (ast.Name, ast.Attribute)) else _LOCAL
            if not isinstance(tup, tuple) or not all(isinstance(x, int) for x in tup):
                raise self.err(e, "`in` tests membership in a tuple of values only")
            items = [Val(None, const=int(x)) for x in tup]
        x = self.expr(e.left)
        self.at(e)
        r: Val = Val(BOOL, "false")
        for item in items:
            eq = self.compare(ast.Eq(), x, item, e)
            r = eq if r.ref == "false" else Val(BOOL, self.emit(f"or i1 {r.ref}, {eq.ref}"))
        if isinstance(e.ops[0], ast.NotIn):
            return Val(BOOL, self.emit(f"xor i1 {r.ref}, true"))
        return r

    def compare(self, op: ast.cmpop, a: Val, b: Val, e: ast.AST) -> Val:
        """An i1 for ``l op r`` (signed or unsigned from the operand types)."""
        if isinstance(op, (ast.Is, ast.IsNot)):
            # `is` cannot be overloaded: in the application a NULL pointer is a Ptr object,
            # so `p is None` would be False there and true compiled
            raise self.err(e, "`is None` / `is not None` cannot test a pointer the same way in "
                              "both runs (a NULL pointer is an object in the application): "
                              "write `if not p:` / `if p:` or `p == None`")
        if isinstance(op, (ast.In, ast.NotIn)):
            raise self.err(e, "`in` is not supported")
        if a.is_const and b.is_const:
            return Val(BOOL, "true" if _fold_cmp(op, a.const, b.const) else "false")
        if isinstance(a.ty, T.PtrType) or isinstance(b.ty, T.PtrType):
            if not isinstance(op, (ast.Eq, ast.NotEq)):
                raise self.err(e, "pointers compare with == and != only")
            pty = a.ty if not a.is_const else b.ty
            if not isinstance(pty, T.PtrType) or not (a.is_const or b.is_const or isinstance(b.ty, T.PtrType)
                                                      and a.ty.space == b.ty.space):
                raise self.err(e, f"comparing {_vname(a)} with {_vname(b)}: pointers compare with "
                                  "pointers of their address space (or None)")
            x = a.ref if not a.is_const else self.coerce(a, pty, e)
            y = b.ref if not b.is_const else self.coerce(b, pty, e)
            return Val(BOOL, self.emit(f"icmp {'eq' if isinstance(op, ast.Eq) else 'ne'} {_llty(pty)} {x}, {y}"))
        if a.ty is BOOL or b.ty is BOOL:
            if not isinstance(op, (ast.Eq, ast.NotEq)) or not (a.ty is BOOL and b.ty is BOOL):
                raise self.err(e, "bools compare with bools, by == and != only")
            return Val(BOOL, self.emit(f"icmp {'eq' if isinstance(op, ast.Eq) else 'ne'} i1 {a.ref}, {b.ref}"))
        for v in (a, b):
            if not v.is_const and not _is_int(v.ty):
                raise self.err(e, f"comparing a {_tname(v.ty)}")
        ty = b.ty if a.is_const else a.ty if b.is_const else _common(a.ty, b.ty)
        x, y = self._conv_ir(a, ty), self._conv_ir(b, ty)
        s = _signed(ty)
        pred = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "slt" if s else "ult", ast.LtE: "sle" if s else "ule",
                ast.Gt: "sgt" if s else "ugt", ast.GtE: "sge" if s else "uge"}[type(op)]
        return Val(BOOL, self.emit(f"icmp {pred} i{_bits(ty)} {x}, {y}"))

    def e_IfExp(self, e: ast.IfExp) -> Val:
        """``a if c else b``."""
        yes, no, end = self.label("ift"), self.label("iff"), self.label("ifend")
        self.cond(e.test, yes, no)
        self.start_block(yes)
        a = self.expr(e.body)
        a_block, a_pos, a_loc = self.cur, len(self.cur), self.dbg()
        self.term(f"br label %{end}")
        self.start_block(no)
        b = self.expr(e.orelse)
        self.at(e)
        if a.is_const and b.is_const:
            ty = FLEX
        elif a.is_const or b.is_const:
            t = b.ty if a.is_const else a.ty
            raise self.err(e, f"one branch is a plain int, the other {_tname(t)}: in Python the "
                              f"result's type would depend on the branch (write {_tname(t)}(...))")
        else:
            if not _same_type(a.ty, b.ty):
                raise self.err(e, f"the two branches give {_tname(a.ty)} and {_tname(b.ty)}: "
                                  "convert one")
            ty = a.ty
        slot = f"%v.ifexp.{self.n}"
        self.n += 1
        self.allocas.append(f"  {slot} = alloca {_llty(ty)}, align 8")
        self.emit(f"store {_llty(ty)} {self.coerce(b, ty, e)}, ptr {slot}", value=False)
        self.term(f"br label %{end}")
        air = a.ref if not a.is_const else self.const_ir_noemit(a.const, ty, e)
        a_block.insert(a_pos, f"  store {_llty(ty)} {air}, ptr {slot}{a_loc}")
        self.start_block(end)
        return Val(ty, self.emit(f"load {_llty(ty)}, ptr {slot}"))

    def const_ir_noemit(self, value: int, ty: Any, e: ast.AST) -> str:
        """The IR of a constant that needs no instruction (ints and null pointers)."""
        if isinstance(ty, T.PtrType):
            if value:
                raise self.err(e, "only 0/None converts to a pointer")
            return "null"
        return self.const_ir(value, ty)

    # calls ---------------------------------------------------------------------------
    def e_Call(self, e: ast.Call) -> Val:
        """A call expression (its value)."""
        return self.call(e, want_value=True)

    def call(self, e: ast.Call, want_value: bool) -> Val:
        """Compile a call: a type conversion, a BPF function, a kfunc, a helper or an intrinsic."""
        if e.keywords:
            raise self.err(e, "keyword arguments are not supported in programs")
        if isinstance(e.func, ast.Name) and e.func.id in self.nested:
            return self.call_function(self.nested[e.func.id], e)
        fobj = self.static(e.func)
        if fobj is _LOCAL:
            raise self.err(e, f"{ast.unparse(e.func)} is not a function a program can call")
        # conversions
        if isinstance(fobj, type) and issubclass(fobj, T.FixedInt) and fobj is not T.FixedInt:
            if len(e.args) != 1:
                raise self.err(e, f"{fobj.__name__}() takes one argument")
            v = self.expr(e.args[0])
            self.at(e)
            if v.is_const:
                return Val(fobj, str(_wrap(v.const, fobj)))
            if isinstance(v.ty, T.PtrType) and v.ty.space:
                # an arena pointer is a number the application shares (C: (__u64)p)
                raw = Val(T.u64, self.emit(f"ptrtoint {_llty(v.ty)} {v.ref} to i64"))
                return Val(fobj, self._conv_ir(raw, fobj))
            if isinstance(v.ty, T.PtrType):
                raise self.err(e, f"{fobj.__name__}() of a pointer: programs cannot read addresses")
            if not (_is_int(v.ty) or v.ty is BOOL):
                raise self.err(e, f"{fobj.__name__}() of a {_tname(v.ty)}")
            return Val(fobj, self._conv_ir(v, fobj))
        if isinstance(fobj, T.PtrType):
            if len(e.args) != 1:
                raise self.err(e, f"{fobj!r}() takes one argument")
            v = self.expr(e.args[0])
            self.at(e)
            if v.is_const:
                return Val(fobj, self.coerce(v, fobj, e))
            if isinstance(v.ty, T.PtrType):
                if v.ty.space != fobj.space:     # C's (T __arena *)p and (T *)q
                    return Val(fobj, self.emit(f"addrspacecast {_llty(v.ty)} {v.ref} to {_llty(fobj)}"))
                return Val(fobj, v.ref)
            if fobj.space and _is_int(v.ty):
                # a number stored in arena memory becomes an arena pointer again
                i64 = self._conv_ir(v, T.u64)
                return Val(fobj, self.emit(f"inttoptr i64 {i64} to {_llty(fobj)}"))
            raise self.err(e, f"{fobj!r}() of a {_tname(v.ty)}: integers do not become pointers")
        if fobj is bool:
            v = self.expr(e.args[0])
            return Val(BOOL, self.truth(v, e))
        if fobj is builtins.min or fobj is builtins.max:
            return self.min_max(fobj is builtins.min, e)
        if fobj is int or fobj is abs:
            if len(e.args) != 1:
                raise self.err(e, f"{fobj.__name__}() takes one value")
            v = self.expr(e.args[0])
            self.at(e)
            if v.is_const:
                return Val(None, const=int(v.const) if fobj is int else abs(int(v.const)))
            if not _is_int(v.ty) and v.ty is not BOOL:
                raise self.err(e, f"{fobj.__name__}() of a {_tname(v.ty)}")
            if fobj is int:          # a plain int: 64-bit signed once compiled
                return Val(FLEX, self._conv_ir(v, FLEX))
            if not _signed(v.ty):
                return v
            bits = _bits(v.ty)       # abs() keeps the type; abs(INT_MIN) wraps to INT_MIN
            neg = self.emit(f"icmp slt i{bits} {v.ref}, 0")
            return Val(v.ty, self.emit(f"select i1 {neg}, i{bits} {self.emit(f'sub i{bits} 0, {v.ref}')}, "
                                       f"i{bits} {v.ref}"))
        hook = self.resolver.call_hook(fobj)
        if hook is not None:
            return hook(self, e, want_value)
        raise self.err(e, f"{_describe_obj(fobj)} cannot be called from a program")

    def call_function(self, info: FuncInfo, e: ast.Call) -> Val:
        """Call another BPF function of the module (or a nested def of this one)."""
        nparams = len(info.params) - (len(info.captured) if info.captured is not None and
                                      info.symbol in self.mod.symbols_done else 0)
        if len(e.args) != nparams:
            raise self.err(e, f"{info.symbol}() takes {nparams} arguments, got {len(e.args)}")
        extra = []
        if info.captured is not None:
            for name in info.captured:
                loc = self.locals.get(name)
                if loc is None:
                    raise self.err(e, f"{info.symbol.rsplit('__', 1)[-1]} reads {name}, which has no "
                                      "value here")
                extra.append((name, loc))
            if info.symbol not in self.mod.symbols_done:   # first call: the types are known now
                if len(info.params) + len(extra) > 5:
                    raise self.err(e, f"{info.symbol.rsplit('__', 1)[-1]} takes {len(info.params)} "
                                      f"arguments and reads {len(extra)} locals: 5 in all at most")
                info.params = info.params + [(name, loc.ty) for name, loc in extra]
                self.mod.symbols_done.add(info.symbol)
                self.resolver.queue.append((None, info))
            for name, loc in extra:
                if not _same_type(loc.ty, dict(info.params)[name]):
                    raise self.err(e, f"{name} changed type since the first call")
        args = []
        for a, (pname, pty) in zip(list(e.args) + [None] * len(extra), info.params):
            if a is None:
                loc = self.locals[pname]
                args.append(f"{_llty(pty)} {self.emit(f'load {_llty(loc.ty)}, ptr {loc.slot}')}")
                continue
            v = self.expr(a)
            self.at(e)
            if info.exact and not (_same_type(v.ty, pty) if not v.is_const else pty is FLEX):
                raise self.err(a, f"{pname} of nested def {info.symbol.rsplit('__', 1)[-1]} is "
                                  f"{_tname(pty)}; this value is {_vname(v)} (a nested def converts "
                                  f"nothing in Python: pass a {_tname(pty)})")
            args.append(f"{_llty(pty)} {self.coerce(v, pty, a)}")
        if info.ret is None:
            self.emit(f"call void @{info.symbol}({', '.join(args)})", value=False)
            return Val(None, const=0)
        return Val(info.ret, self.emit(f"call {_llty(info.ret)} @{info.symbol}({', '.join(args)})"))

    def call_kfunc(self, sig: KfuncSig, e: ast.Call) -> Val:
        """Call a kfunc or helper with arguments converted to its signature."""
        if len(e.args) != len(sig.args):
            raise self.err(e, f"{sig.name}() takes {len(sig.args)} arguments, got {len(e.args)}")
        if len(sig.args) > 5:
            raise self.err(e, f"{sig.name}() is declared with {len(sig.args)} arguments: BPF calls "
                              "pass 5 at most (r1-r5)")
        args = []
        for a, pty in zip(e.args, sig.args):
            v = self.expr(a)
            self.at(e)
            args.append(f"{_llty(pty)} {self.coerce(v, pty, a)}")
        if sig.helper_id is not None:
            # helpers are called through their id: `call ptr inttoptr (i64 ID to ptr)`
            fnty = f"{_llty(sig.ret)} ({', '.join(_llty(a) for a in sig.args)})"
            callee = f"inttoptr (i64 {sig.helper_id} to ptr)"
            if sig.ret is None:
                self.emit(f"call {fnty} {callee}({', '.join(args)})", value=False)
                return Val(None, const=0)
            return Val(sig.ret, self.emit(f"call {fnty} {callee}({', '.join(args)})"))
        self.mod.declare_kfunc(sig)
        if sig.ret is None:
            self.emit(f"call void @{sig.name}({', '.join(args)})", value=False)
            return Val(None, const=0)
        return Val(sig.ret, self.emit(f"call {_llty(sig.ret)} @{sig.name}({', '.join(args)})"))

    def map_call(self, m: Any, method: str, e: ast.Call) -> Val:
        """``m.lookup(k)``, ``m.update(k, v[, flags])``, ``m.delete(k)``; ring buffers:
        ``rb.output(p, n[, flags])``, ``rb.reserve(T)``, ``rb.submit(p[, flags])``,
        ``rb.discard(p[, flags])``; arenas: ``a.alloc_pages(n)``, ``a.free_pages(p, n)``."""
        if method == "reserve":
            return self.ringbuf_reserve(m, e)
        args = [self.expr(a) for a in e.args]
        self.at(e)

        def on_stack(v: Val, kind: Any, what: str) -> str:
            slot = f"%v.{what}.{self.n}"
            self.n += 1
            size = T.sizeof(kind)
            self.allocas.append(f"  {slot} = alloca [{size} x i8], align 8")
            if isinstance(v.ty, T.PtrType):
                self.mod.declare_intrinsic("declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)", "memcpy")
                self.emit(f"call void @llvm.memcpy.p0.p0.i64(ptr {slot}, ptr {v.ref}, i64 {size}, i1 false)",
                          value=False)
            else:
                if not (isinstance(kind, type) and issubclass(kind, T.FixedInt)):
                    raise self.err(e, f"{m.name}: pass a pointer to the {T.kind_name(kind)} {what}")
                self.emit(f"store {_llty(kind)} {self.coerce(v, kind, e)}, ptr {slot}, align 8", value=False)
            return slot

        def helper(hid: int, ret: Any, argv: list[str]) -> Val:
            fnty = f"{_llty(ret)} ({', '.join(a.split()[0] for a in argv)})"
            return Val(ret, self.emit(f"call {fnty} inttoptr (i64 {hid} to ptr)({', '.join(argv)})"))

        want = {"lookup": (1, 1), "update": (2, 3), "delete": (1, 1), "output": (2, 3),
                "submit": (1, 2), "discard": (1, 2), "alloc_pages": (1, 1), "free_pages": (2, 2)}
        if method not in want:
            raise self.err(e, f"maps have no method {method!r} in programs")
        lo, hi = want[method]
        if not lo <= len(args) <= hi:
            raise self.err(e, f"{m.name}.{method}() takes {lo} to {hi} arguments")
        if method in ("alloc_pages", "free_pages"):
            if m.map_type != 33:
                raise self.err(e, f"{m.name}.{method}(): {m.name} is not an arena")
            # the kernel's prototypes, as libbpf's bpf_arena_common.h declares them:
            # void __arena *bpf_arena_alloc_pages(void *map, void __arena *addr, ...)
            void, avoid = T.ptr[None], T.arena_ptr[None]
            if method == "alloc_pages":
                sig = KfuncSig("bpf_arena_alloc_pages", avoid, (void, avoid, T.u32, T.s32, T.u64))
                self.mod.declare_kfunc(sig)
                n = self.coerce(args[0], T.u32, e)
                return Val(T.arena_ptr[T.u8], self.emit(
                    f"call ptr addrspace(1) @bpf_arena_alloc_pages(ptr @{m.name}, ptr addrspace(1) null, "
                    f"i32 {n}, i32 -1, i64 0)"))
            sig = KfuncSig("bpf_arena_free_pages", None, (void, avoid, T.u32))
            self.mod.declare_kfunc(sig)
            pv = args[0]
            if not isinstance(pv.ty, T.PtrType) and not pv.is_const:
                raise self.err(e, f"{m.name}.free_pages(p, n): p is a pointer alloc_pages gave")
            p = (self.emit(f"addrspacecast ptr {pv.ref} to ptr addrspace(1)")
                 if isinstance(pv.ty, T.PtrType) and not pv.ty.space else self.coerce(pv, T.arena_ptr[T.u8], e))
            n = self.coerce(args[1], T.u32, e)
            self.emit(f"call void @bpf_arena_free_pages(ptr @{m.name}, ptr addrspace(1) {p}, i32 {n})",
                      value=False)
            return Val(None, const=0)
        is_rb = m.map_type == 27
        if is_rb != (method in ("output", "submit", "discard")):
            raise self.err(e, f"{m.name}.{method}(): not a method of this map type")
        if method in ("submit", "discard"):
            # bpf_ringbuf_submit/discard(void *data, u64 flags): the record knows its ring
            rec = args[0]
            if not isinstance(rec.ty, T.PtrType):
                raise self.err(e, f"{m.name}.{method}() takes the record {m.name}.reserve() gave")
            flags = self.coerce(args[1], T.u64, e) if len(args) == 2 else "0"
            hid = 132 if method == "submit" else 133
            self.emit(f"call void (ptr, i64) inttoptr (i64 {hid} to ptr)(ptr {rec.ref}, i64 {flags})",
                      value=False)
            return Val(None, const=0)
        mp = f"ptr @{m.name}"
        if method == "lookup":
            k = on_stack(args[0], m.key, "key")
            return helper(1, T.ptr[m.value], [mp, f"ptr {k}"])
        if method == "update":
            k = on_stack(args[0], m.key, "key")
            v = on_stack(args[1], m.value, "value")
            flags = self.coerce(args[2], T.u64, e) if len(args) == 3 else "0"
            return helper(2, T.s64, [mp, f"ptr {k}", f"ptr {v}", f"i64 {flags}"])
        if method == "delete":
            k = on_stack(args[0], m.key, "key")
            return helper(3, T.s64, [mp, f"ptr {k}"])
        data = args[0]
        if not isinstance(data.ty, T.PtrType):
            raise self.err(e, "output() takes a pointer to the data")
        size = self.coerce(args[1], T.u64, e)
        flags = self.coerce(args[2], T.u64, e) if len(args) == 3 else "0"
        return helper(130, T.s64, [mp, f"ptr {data.ref}", f"i64 {size}", f"i64 {flags}"])

    def printk(self, e: ast.Call) -> Val:
        """``bpf_printk("fmt", a, b, c)``: libbpf's macro, ``bpf_trace_printk`` (helper 6) of
        a format kept in ``.rodata`` with at most three values."""
        if not e.args or not isinstance(e.args[0], ast.Constant) or not isinstance(e.args[0].value, str):
            raise self.err(e, "bpf_printk(fmt, ...) takes a string literal first")
        if len(e.args) > 4:
            raise self.err(e, "bpf_printk takes three values at most (the kernel's trace_printk)")
        vals = []
        for a in e.args[1:]:
            v = self.expr(a)
            if not v.is_const and not (_is_int(v.ty) or v.ty is BOOL or isinstance(v.ty, T.PtrType)):
                raise self.err(a, f"bpf_printk of a {_tname(v.ty)}")
            if isinstance(v.ty, T.PtrType):
                vals.append(self.emit(f"ptrtoint {_llty(v.ty)} {v.ref} to i64"))
            else:
                vals.append(self._conv_ir(v, T.u64) if not v.is_const else str(_wrap(v.const, T.u64)))
        self.at(e)
        raw = e.args[0].value.encode() + b"\0"
        name = self.mod.string_const(raw)
        argv = [f"ptr @{name}", f"i32 {len(raw)}"] + [f"i64 {x}" for x in vals]
        fnty = f"i64 (ptr, i32{', i64' * len(vals)})"
        return Val(T.s64, self.emit(f"call {fnty} inttoptr (i64 6 to ptr)({', '.join(argv)})"))

    def ringbuf_reserve(self, m: Any, e: ast.Call) -> Val:
        """``rb.reserve(T)``: ``bpf_ringbuf_reserve(&rb, sizeof(T), 0)``, a ``ptr[T]`` record
        or NULL; the verifier requires it submitted or discarded on every path."""
        if m.map_type != 27:
            raise self.err(e, f"{m.name}.reserve(): {m.name} is not a ring buffer")
        if len(e.args) != 1 or e.keywords:
            raise self.err(e, f"{m.name}.reserve(T) takes the record's type")
        t = self.type_of_annotation(e.args[0], allow_struct=True)
        if t is FLEX or t is BOOL or isinstance(t, T.Opaque):
            raise self.err(e, f"{m.name}.reserve(T): T is a fixed-width int type or a ctypes structure")
        self.at(e)
        return Val(T.ptr[t], self.emit(f"call ptr (ptr, i64, i64) inttoptr (i64 131 to ptr)"
                                       f"(ptr @{m.name}, i64 {T.sizeof(t)}, i64 0)"))

    def stack(self, e: ast.Call) -> Val:
        """``stack(T, n=1)``: stack space for ``n`` objects of type ``T``; returns a pointer to
        it."""
        if not 1 <= len(e.args) <= 2:
            raise self.err(e, "stack(T, n=1) takes a type and an optional constant count")
        t = self.type_of_annotation(e.args[0], allow_struct=True)
        if t is FLEX or t is BOOL or isinstance(t, T.Opaque):
            raise self.err(e, "stack() needs a fixed-width int type or a ctypes structure")
        n = 1
        if len(e.args) == 2:
            c = self.expr(e.args[1])
            if not c.is_const or c.const <= 0:
                raise self.err(e, "the count of stack() must be a positive constant")
            n = c.const
        size = T.sizeof(t) * n
        if size > 512:
            raise self.err(e, f"stack() of {size} bytes: the BPF stack is 512 bytes")
        slot = f"%v.stack.{self.n}"
        self.n += 1
        # whole 8-byte words, allocated and zeroed alike: a zeroing store past the end of
        # the alloca would be undefined behaviour, and LLVM dropped the object's last
        # bytes' zeroes for it (the verifier then saw uninitialised stack)
        room = (size + 7) // 8 * 8
        self.allocas.append(f"  {slot} = alloca [{room} x i8], align 8")
        self.at(e)
        # zeroed where it is asked for, as the application's fresh buffer is
        self._zero_bytes(slot, room, 8)
        return Val(T.ptr[t], slot)

    def copy(self, e: ast.Call) -> Val:
        """``copy(dst, src, n)``: copy ``n`` (a constant) bytes between two pointers."""
        if len(e.args) != 3:
            raise self.err(e, "copy(dst, src, n) takes two pointers and a constant size")
        d, s, n = (self.expr(a) for a in e.args)
        self.at(e)
        for v in (d, s):
            if not isinstance(v.ty, T.PtrType) or isinstance(v.ty.elem, T.Opaque):
                raise self.err(e, "copy() copies between pointers to ints or structures")
        if not n.is_const or n.const < 0:
            raise self.err(e, "the size of copy() must be a constant")
        self.memcpy(self.generic(d), self.generic(s), n.const)
        return Val(None, const=0)

    def _chunks(self, ref: str, size: int) -> list[tuple[str, int, int]]:
        """``(pointer, offset, length)`` pieces of at most MEM_INLINE_MAX bytes."""
        out = []
        for off in range(0, size, MEM_INLINE_MAX):
            p = self.emit(f"getelementptr inbounds i8, ptr {ref}, i64 {off}") if off else ref
            out.append((p, off, min(MEM_INLINE_MAX, size - off)))
        return out

    def memcpy(self, dst: str, src: str, size: int) -> None:
        """``memcpy`` of a constant ``size``, in pieces the BPF backend expands inline."""
        self.mod.declare_intrinsic("declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)", "memcpy")
        vol = "true" if size > MEM_INLINE_MAX else "false"     # never merged back into one
        for (d, _o, n), (s, _o2, _n) in zip(self._chunks(dst, size), self._chunks(src, size)):
            self.emit(f"call void @llvm.memcpy.p0.p0.i64(ptr {d}, ptr {s}, i64 {n}, i1 {vol})", value=False)

    def memset0(self, ref: str, size: int, align: int) -> None:
        """Zero ``size`` bytes at ``ref``, in pieces the BPF backend expands inline."""
        self.mod.declare_intrinsic("declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)", "memset")
        # several pieces are volatile: LLVM would merge plain ones back into one too big
        vol = "true" if size > MEM_INLINE_MAX else "false"
        for p, off, n in self._chunks(ref, size):
            a = align if off % align == 0 else 1
            self.emit(f"call void @llvm.memset.p0.i64(ptr align {a} {p}, i8 0, i64 {n}, i1 {vol})", value=False)

    def _zero_bytes(self, ref: str, size: int, align: int) -> None:
        if size % 8 == 0 and align >= 8 and size <= 512:
            for off in range(0, size, 8):
                p = self.emit(f"getelementptr inbounds i8, ptr {ref}, i64 {off}") if off else ref
                self.emit(f"store i64 0, ptr {p}, align 8", value=False)
            return
        self.memset0(ref, size, align)

    def zero(self, e: ast.Call) -> Val:
        """``zero(p)``: zero the object ``p`` points to."""
        if len(e.args) != 1:
            raise self.err(e, "zero(p) takes one pointer")
        v = self.expr(e.args[0])
        if not isinstance(v.ty, T.PtrType) or isinstance(v.ty.elem, T.Opaque):
            raise self.err(e, "zero() needs a pointer to a struct or an integer")
        size = T.sizeof(v.ty.elem)
        self.at(e)
        v = Val(T.ptr[v.ty.elem], self.generic(v))
        if size % 8 == 0 and T.alignof(v.ty.elem) >= 8 and size <= 256:
            # explicit 8-byte stores: LLVM drops the ones later field stores overwrite and
            # keeps the rest 8 bytes wide (a memset it shortens is lowered byte by byte)
            for off in range(0, size, 8):
                p = self.emit(f"getelementptr inbounds i8, ptr {v.ref}, i64 {off}") if off else v.ref
                self.emit(f"store i64 0, ptr {p}, align 8", value=False)
            return Val(None, const=0)
        self.memset0(v.ref, size, T.alignof(v.ty.elem))
        return Val(None, const=0)


_LOCAL = object()
#: the largest memcpy/memset LLVM's BPF backend expands inline; beyond it, it emits a
#: libcall BPF cannot make, reported as an error that exits the process
MEM_INLINE_MAX = 1024
ITER_NUM = T.Opaque("bpf_iter_num", 8)      # struct bpf_iter_num { __u64 __opaque[1]; }


def _is_bpf_range(obj: Any) -> bool:
    return (getattr(obj, "__name__", None) == "bpf_range"
            and getattr(obj, "__module__", None) == "uringbpf.lang.appmode")


def _is_ctypes_struct(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, (ctypes.Structure, ctypes.Union))


def _vname(v: Val) -> str:
    return "int" if v.is_const else _tname(v.ty)


def _same_type(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, T.PtrType) and isinstance(b, T.PtrType):
        return a.elem is b.elem and a.space == b.space
    return False


def _load(target: ast.expr) -> ast.expr:
    t = copy.deepcopy(target)
    for n in ast.walk(t):
        if hasattr(n, "ctx"):
            n.ctx = ast.Load()
    return t


def _fold(op: ast.operator, a: int, b: int) -> int:
    ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
           ast.FloorDiv: lambda: a // b, ast.Mod: lambda: a % b, ast.LShift: lambda: a << b,
           ast.RShift: lambda: a >> b, ast.BitAnd: lambda: a & b, ast.BitOr: lambda: a | b,
           ast.BitXor: lambda: a ^ b, ast.Pow: lambda: a ** b}
    f = ops.get(type(op))
    if f is None:
        raise TypeError(f"operator {_opname(op)}")
    return f()


def _fold_cmp(op: ast.cmpop, a: int, b: int) -> bool:
    return {ast.Eq: a == b, ast.NotEq: a != b, ast.Lt: a < b, ast.LtE: a <= b, ast.Gt: a > b,
            ast.GtE: a >= b}[type(op)]


def _opname(op: ast.AST) -> str:
    return {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
            ast.Mod: "%", ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
            ast.BitXor: "^", ast.BitAnd: "&", ast.MatMult: "@", ast.USub: "unary -",
            ast.UAdd: "unary +", ast.Invert: "~", ast.Not: "not"}.get(type(op), type(op).__name__)


_DESCR = {
    "Try": "try/except", "With": "with", "AsyncFunctionDef": "async def",
    "ClassDef": "a class definition", "Lambda": "lambda", "ListComp": "a list comprehension",
    "List": "a list", "Dict": "a dict", "Tuple": "a tuple", "Set": "a set", "Yield": "yield",
    "Await": "await", "Raise": "raise", "Import": "import", "ImportFrom": "import",
    "Global": "global", "Nonlocal": "nonlocal", "Delete": "del", "Assert": "assert",
    "JoinedStr": "an f-string", "Starred": "*args", "GeneratorExp": "a generator",
    "DictComp": "a dict comprehension", "SetComp": "a set comprehension", "Match": "match",
    "NamedExpr": "the walrus operator (:=)", "Slice": "a slice",
}


def _describe(node: ast.AST) -> str:
    return _DESCR.get(type(node).__name__, type(node).__name__)


def _describe_obj(obj: Any) -> str:
    if isinstance(obj, type):
        return f"type {obj.__name__}"
    if callable(obj):
        return f"{getattr(obj, '__name__', repr(obj))}"
    return f"{type(obj).__name__} {obj!r}"[:80]


class Resolver:
    """What the names of a program mean; implemented by :mod:`uringbpf.lang.module`."""

    def env_of(self, fn: Callable) -> dict[str, Any]:
        """The names a Python function sees (its globals and closure)."""
        raise NotImplementedError

    def is_section(self, obj: Any) -> bool:
        """True if ``obj`` is a global-data section proxy (bss, data, rodata)."""
        raise NotImplementedError

    def section_field(self, section: Any, name: str) -> GlobalVar | None:
        """The global variable ``name`` of section ``obj``, or None."""
        raise NotImplementedError

    def call_hook(self, obj: Any) -> Callable | None:
        """A compile-time handler for calling ``obj`` (intrinsics), or None."""
        raise NotImplementedError
