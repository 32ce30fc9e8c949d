"""Modules of Python-written programs: sections, functions, programs, compilation, loading.

A :class:`Module` collects what one ``.bpf.o`` holds: global sections (``@bpf.rodata``,
``@bpf.bss``, ``@bpf.data`` classes), local functions (``@bpf.function``) and programs
(``@bpf.socket_filter``, ``@bpf.loop_step(...)``...).  :meth:`Module.compile` turns them
into a real ELF object (LLVM's BPF backend through llvmlite, with BTF); the object is
opened by our own :class:`~uringbpf.bpf.object.BpfObject`, so verifier, JIT, interpreter
and designs treat it like any clang-built object.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib
import inspect
import os
import re
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

import llvmlite.binding as binding

from ..bpf import elf as _elf
from ..bpf import maps as _maps
from ..bpf.memory import BpfRuntimeError, Buffer
from ..bpf.object import BpfObject
from ..bpf.platform import Platform, default_platform
from ..errors import BpfVerifierError, MapError
from . import compiler as C
from . import srcmap
from . import types as T
from .appmode import AppRuntime, ArenaPtr, Ptr, app_runtime, arena_memory_ptr, buffer_ptr, memory_ptr
from .maps import BpfMap
from .errors import LangCompileError, LangRuntimeError, LangVerifierError

_LLVM = None
#: r1-r5: the kernel's MAX_BPF_FUNC_ARGS
MAX_BPF_FUNC_ARGS = 5


def _design_part(name: str) -> ModuleType:
    """``uringbpf.lang.<name>`` (loop, ops, requests): the part of lang for one design,
    imported when a module first uses that design. It imports this module and its
    design, so importing it here at the top would be a cycle and would load every design
    for any lang program."""
    return importlib.import_module(f"{__package__}.{name}")


def llvm():
    """llvmlite's binding with the BPF target ready (initialised once)."""
    global _LLVM
    if _LLVM is None:
        binding.initialize_all_targets()
        binding.initialize_all_asmprinters()
        # LLVM's BPF backend reports a stack over 512 bytes as an error that exits the
        # process (llvmlite installs no diagnostic handler); let it emit the code and the
        # verifier refuse it, naming the Python line, as the kernel would refuse it.
        # A BPF-target option: the JIT's host target is unaffected.
        binding.set_option("uringbpf.lang", "-bpf-stack-size=32768")
        target = binding.Target.from_triple("bpfel")
        tm = target.create_target_machine(cpu="v3", opt=2)
        _LLVM = (binding, tm)
    return _LLVM


# LLVM's BPF backend reports what BPF cannot do (a libcall, more than 5 arguments) as an
# error that exits the process: llvmlite installs no diagnostic handler.  The compiler
# avoids what it can; this finds, in the optimised IR, what the optimiser made of the
# rest, so it becomes a compile error at its Python line instead.
_HAZARDS = [
    (re.compile(r"= (?:mul|udiv|sdiv|urem|srem) i128 |@llvm\.[us]mul\.with\.overflow\.i64\("),
     "this needs a 128-bit multiplication or division, which BPF does not have (LLVM "
     "makes one of an overflow test like x * y // y != x: test y != 0 and x > MAX // y "
     "instead)"),
    (re.compile(r"@llvm\.mem(?:cpy|move|set)\.[^(]*\((?:(?!i64 \d).)*i64 %"),
     "a copy or fill of a size known only at run time: BPF has no memcpy/memset to call"),
]
_DBG = re.compile(r"!dbg !(\d+)")


def backend_hazard(ir: str) -> tuple[int, str] | None:
    """``(python line, message)`` of the first instruction of optimised ``ir`` the BPF
    backend could not lower, or None."""
    if "i128" not in ir and ".with.overflow.i64" not in ir and "@llvm.mem" not in ir:
        return None                  # the usual case, without a line-by-line scan
    for text in ir.splitlines():
        if not text.startswith("  "):
            continue
        for pattern, what in _HAZARDS:
            if pattern.search(text):
                m = _DBG.search(text)
                line = 0
                if m is not None:
                    loc = re.search(rf"^!{m.group(1)} = !DILocation\(line: (\d+)", ir, re.M)
                    line = int(loc.group(1)) if loc else 0
                return line, what
    return None


def _is_struct(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, (ctypes.Structure, ctypes.Union))


# --- sections (global variables) ---------------------------------------------------------
class Section:
    """A global section: the decorated class's annotated fields become variables.

    In the application each field reads and writes typed values in this object's own
    memory, laid out as the compiled object lays them out; while a compiled program is
    attached the fields are the loaded object's variables (``obj.bss.NAME``).
    """

    def __init__(self, module: "Module", kind: str, cls: type):
        d = object.__setattr__
        d(self, "_module", module)
        d(self, "_kind", kind)
        d(self, "__name__", cls.__name__)
        try:
            d(self, "_line", inspect.getsourcelines(cls)[1])
        except (OSError, TypeError):     # TypeError: its module is not in sys.modules
            raise LangCompileError(inspect.getsourcefile(cls) or "<unknown>", 0,
                                   f"the source of section {cls.__name__} is not available (exec, "
                                   "python -c?): define modules in a file") from None
        fields: dict[str, tuple[Any, int]] = {}
        volatiles: set[str] = set()
        off = 0
        annotations = cls.__dict__.get("__annotations__", {})
        for name, ann in annotations.items():
            if isinstance(ann, str):
                ann = eval(ann, vars(inspect.getmodule(cls)))  # noqa: S307 - the user's own annotation
            is_volatile = isinstance(ann, T.volatile)
            if is_volatile:
                ann = ann.kind
            if isinstance(ann, T.array):
                fkind = ann.kind
            elif isinstance(ann, type) and issubclass(ann, T.FixedInt) and ann is not T.FixedInt:
                fkind = ann
            elif isinstance(ann, type) and issubclass(ann, (ctypes.Structure, ctypes.Union)) \
                    and not is_volatile:
                fkind = ann              # a structure: programs reach it through its fields
            elif isinstance(ann, T.ArenaPtrType) and kind == "addr_space.1" and not is_volatile:
                fkind = ann              # C's `T __arena * __arena p;`: an arena address
            else:
                raise LangCompileError(inspect.getsourcefile(cls) or "?", self._line,
                                       f"{cls.__name__}.{name}: a section field is u8..u64, s8..s64, "
                                       f"array(T, n), a ctypes structure or (arena globals) "
                                       f"arena_ptr[T], not {ann!r}")
            align = T.alignof(fkind)
            off = (off + align - 1) // align * align
            fields[name] = (fkind, off)
            if is_volatile:
                volatiles.add(name)
            off += T.sizeof(fkind)
        d(self, "_fields", fields)
        d(self, "_volatile", volatiles)
        d(self, "_mem", bytearray(max(off, 1)))
        d(self, "_size", off)
        d(self, "_bound", None)
        d(self, "_arena", None)      # __arena globals: their BpfMap, set once initialised
        d(self, "frozen", False)
        for name, (fkind, off) in fields.items():
            if name in cls.__dict__:
                init = cls.__dict__[name]
                if isinstance(fkind, T.ArenaPtrType) and init not in (0, None):
                    # arena addresses exist once the arena does: only NULL is an initialiser
                    raise LangCompileError(inspect.getsourcefile(cls) or "?", self._line,
                                           f"{cls.__name__}.{name}: an arena pointer starts NULL "
                                           f"(= 0), not {init!r}")
                if isinstance(fkind, T.ArenaPtrType):
                    continue                 # NULL: the memory is zero already
                if _is_struct(fkind):
                    self._mem[off:off + T.sizeof(fkind)] = bytes(init)   # a ctypes instance
                elif isinstance(fkind, tuple):
                    for i, v in enumerate(init):
                        self._ptr(name)[i] = v
                else:
                    self._set(name, init)

    @property
    def section_name(self) -> str:
        """The ELF section (``.bss``, ``.data``, ``.rodata``, ``.addr_space.1``)."""
        return "." + self._kind

    @property
    def arena_offset(self) -> int:
        """``__arena`` globals: their offset in the arena, the start of its last pages
        (where libbpf puts ``.addr_space.1`` since Dec 2025, and our loader too)."""
        if self._arena is None:
            raise AttributeError(f"section {self.__name__} is not in an arena")
        return (self._arena.max_entries - self.arena_pages) * _maps.PAGE_SIZE

    @property
    def arena_pages(self) -> int:
        """Pages the section takes (``__arena`` globals)."""
        return -(-self._size // _maps.PAGE_SIZE)

    def place_in_arena(self, m: Any) -> None:
        """Take the globals' pages of the new native arena ``m`` (so ``alloc_pages``
        never returns them) and write the declared initial values there: what the loader
        does for ``.addr_space.1``."""
        if not self._size:
            return
        addr = m.value_addr + self.arena_offset
        if m.arena_alloc_pages(self.arena_pages, addr=addr) != addr:
            raise MapError(errno.EBUSY, f"arena {m.name!r}: cannot take its last "
                                        f"{self.arena_pages} pages for {self.__name__}")
        m.memory()[self.arena_offset:self.arena_offset + self._size] = self._mem[:self._size]

    def _ptr(self, name: str) -> Ptr:
        fkind, off = self._fields[name]
        elem = fkind[1] if isinstance(fkind, tuple) else fkind
        if self._arena is not None:
            # __arena globals have no memory of their own: they are the arena's last pages,
            # in the application run as in a loaded object (which uses the same native map)
            m = self._arena_map()
            where = (self._bound.address_of(name) - m.value_addr if self._bound is not None
                     else self.arena_offset + off)
            return ArenaPtr(m.memory(), where, elem)
        if self._bound is not None:
            raw = self._bound.raw()
            return Ptr(raw, self._bound.address_of(name) - self._bound.map.value_addr,
                       fkind[1] if isinstance(fkind, tuple) else fkind)
        return Ptr(memoryview(self._mem), off, fkind[1] if isinstance(fkind, tuple) else fkind)

    def _arena_map(self) -> Any:
        """The native arena holding these ``__arena`` globals now."""
        return self._bound.map if self._bound is not None else self._arena.map

    def _get(self, name: str) -> Any:
        fkind, _off = self._fields[name]
        if isinstance(fkind, T.ArenaPtrType):       # an arena address, as an arena pointer
            return arena_memory_ptr(self._arena_map(), int(self._ptr(name)._pretype(T.u64)[0]),
                                    fkind.elem)
        p = self._ptr(name)
        return p if isinstance(fkind, tuple) or _is_struct(fkind) else p[0]

    def _set(self, name: str, value: Any) -> None:
        fkind, _off = self._fields[name]
        if isinstance(fkind, tuple):
            raise TypeError(f"{self.__name__}.{name} is an array: assign its elements")
        if _is_struct(fkind):
            raise TypeError(f"{self.__name__}.{name} is a structure: assign its fields")
        if self.frozen:
            raise AttributeError(f"{self.__name__} is read-only while the program runs (.rodata)")
        if isinstance(fkind, T.ArenaPtrType):
            if isinstance(value, Ptr) and not isinstance(value, ArenaPtr):
                raise TypeError(f"{self.__name__}.{name} is {fkind!r}: assign an arena pointer "
                                "or an arena address")
            # the address the program would store: the arena's upper half + the low 32 bits
            addr = int(value) if not isinstance(value, Ptr) else (value._paddr() if value else 0)
            self._ptr(name)._pretype(T.u64)[0] = addr
            return
        if self._bound is not None:
            self._bound.set(name, int(fkind(value)))
            return
        self._ptr(name)[0] = value

    def __getattr__(self, name: str) -> Any:
        fields = object.__getattribute__(self, "_fields")
        if name in fields:
            return self._get(name)
        raise AttributeError(f"section {self.__name__} has no field {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._fields:
            self._set(name, value)
        elif name == "frozen":
            object.__setattr__(self, name, value)
        else:
            raise AttributeError(f"section {self.__name__} has no field {name!r}")

    def values(self) -> dict[str, Any]:
        """Every field's current value (arrays as lists)."""
        out = {}
        for name, (fkind, _o) in self._fields.items():
            if isinstance(fkind, tuple):
                p = self._ptr(name)
                out[name] = [p[i] for i in range(fkind[2])]
            elif _is_struct(fkind):
                out[name] = self.raw_bytes(name)
            elif isinstance(fkind, T.ArenaPtrType):
                out[name] = int(self._ptr(name)._pretype(T.u64)[0])   # the arena address
            else:
                out[name] = self._get(name)
        return out

    def raw_bytes(self, name: str) -> bytes:
        """The bytes of field ``name``."""
        fkind, _off = self._fields[name]
        p = self._ptr(name)
        return bytes(p._pbuf[p._poff:p._poff + T.sizeof(fkind)])

    def _write_raw(self, name: str, data: bytes) -> None:
        p = self._ptr(name)
        p._pbuf[p._poff:p._poff + len(data)] = data

    def bind(self, gd: Any) -> None:
        """Make the fields the loaded object's variables (copying the current values in).

        One loaded object at a time: the fields cannot be two objects' variables at once.
        """
        if self._bound is not None and self._bound is not gd:
            raise RuntimeError(f"section {self.__name__} already belongs to a loaded object of "
                               f"module {self._module.name}: close that attachment first")
        data = {n: self.raw_bytes(n) for n in self._fields}
        object.__setattr__(self, "_bound", gd)
        frozen_before = gd.map.frozen if hasattr(gd.map, "frozen") else False
        if not frozen_before:
            for n, raw in data.items():
                off = gd.address_of(n) - gd.map.value_addr
                gd.map.memory()[off:off + len(raw)] = raw

    def unbind(self) -> None:
        """Back to own memory, keeping the values the program left."""
        gd = self._bound
        if gd is None:
            return
        data = {n: self.raw_bytes(n) for n in self._fields}
        object.__setattr__(self, "_bound", None)
        for n, raw in data.items():
            self._write_raw(n, raw)

    def __repr__(self) -> str:
        return f"<section .{self._kind} {self.__name__} {self.values()}>"


def bind_sections(module: "Module", obj: BpfObject) -> list[Section]:
    """Make ``module``'s sections ``obj``'s variables; on failure none stays bound by this
    call (a section another attachment holds keeps its binding)."""
    bound: list[Section] = []
    with contextlib.ExitStack() as undo:
        undo.callback(unbind_sections, bound)   # the ones bound so far
        for sec in module.sections:
            if sec.section_name in obj.datasecs:
                sec.bind(obj.datasec(sec.section_name))
                bound.append(sec)
        undo.pop_all()
    return bound


def unbind_sections(bound: list[Section]) -> None:
    """Give each section back its own memory (see ``Section.unbind``), keeping the values."""
    for sec in bound:
        sec.unbind()


def attach_compiled(module: "Module", ring: Any, engine: str, ops_name: str) -> tuple[Any, Any, list]:
    """Compile and load ``module``, point its struct_ops variable ``ops_name`` at ``ring``,
    bind its sections to the object's variables and attach: ``(loaded, link, bound)``.
    A failure undoes what was done (the loop and ops programs' ``attach``)."""
    obj = module.open()
    getattr(obj.struct_ops, ops_name).ring_fd = ring.fd
    loaded = module.load(engine, obj=obj)
    with contextlib.ExitStack() as undo:
        undo.callback(loaded.close)
        bound = bind_sections(module, obj)
        undo.callback(unbind_sections, bound)
        link = obj.attach_struct_ops(ops_name)
        undo.pop_all()
    return loaded, link, bound


# --- functions and programs --------------------------------------------------------------
def _annotation(fn: Callable, ann: Any) -> Any:
    if isinstance(ann, str):
        env = dict(fn.__globals__)
        env.update(_closure(fn))
        ann = eval(ann, env)  # noqa: S307 - the user's own annotation text
    if ann is None or ann is inspect.Signature.empty:
        return None
    if ann is int:
        return C.FLEX
    if ann is bool:
        return C.BOOL
    if isinstance(ann, type) and issubclass(ann, T.FixedInt) and ann is not T.FixedInt:
        return ann
    if isinstance(ann, T.PtrType):
        return ann
    raise TypeError(f"{ann!r} is not a type for a program value (u8..u64, s8..s64, int, bool, ptr[T])")


def _closure(fn: Callable) -> dict[str, Any]:
    out = {}
    if fn.__closure__:
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__):
            try:
                out[name] = cell.cell_contents
            except ValueError:
                pass
    return out


def _convert(value: Any, ty: Any) -> Any:
    """What storing ``value`` into a ``ty`` does (the Python run's argument/return rule)."""
    if ty is None or ty is C.FLEX:
        return int(value) if ty is C.FLEX and not isinstance(value, Ptr) else value
    if ty is C.BOOL:
        return bool(value)
    if isinstance(ty, T.PtrType):
        if value is None or (isinstance(value, int) and value == 0):
            return Ptr(None, 0, ty.elem)
        return value._pretype(ty.elem) if isinstance(value, Ptr) else value
    return ty(value)


class LangFunction:
    """A function programs call: a BPF-to-BPF call (``@bpf.function``) or inlined
    (``@inline``).  Called from Python it converts arguments and result as the compiled
    code does, so both runs see the same values."""

    def __init__(self, fn: Callable, inline: bool = False):
        self.fn = fn
        self.inline = inline
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self._sig: tuple | None = None

    def signature(self) -> tuple[list, Any]:
        """Parameter types and return type from the annotations (cached)."""
        if self._sig is None:
            sig = inspect.signature(self.fn)
            params = []
            for p in sig.parameters.values():
                if p.annotation is inspect.Parameter.empty:
                    raise _err_at(self.fn, f"{self.fn.__name__}: parameter {p.name!r} needs a type "
                                           "annotation")
                params.append((p.name, _ann_or_err(self.fn, p.annotation)))
            ret = _ann_or_err(self.fn, sig.return_annotation) \
                if sig.return_annotation is not inspect.Signature.empty else None
            self._sig = (params, ret)
        return self._sig

    def __call__(self, *args: Any) -> Any:
        params, ret = self.signature()
        conv = [_convert(a, t) for a, (_n, t) in zip(args, params)]
        return _convert(self.fn(*conv), ret)

    def __repr__(self) -> str:
        return f"<lang function {self.fn.__name__}{' (inline)' if self.inline else ''}>"


def _ann_or_err(fn: Callable, ann: Any) -> Any:
    try:
        return _annotation(fn, ann)
    except (TypeError, NameError) as exc:
        raise _err_at(fn, f"{fn.__name__}: {exc}") from None


def _err_at(fn: Callable, msg: str) -> LangCompileError:
    return LangCompileError(inspect.getsourcefile(fn) or "?", fn.__code__.co_firstlineno, msg)


def inline(fn: Callable) -> LangFunction:
    """Decorator: a function every caller gets a copy of (no BPF-to-BPF call)."""
    return LangFunction(fn, inline=True)


class Kfunc:
    """A kfunc (or helper, with ``helper_id``) programs call by name; in the application
    ``app(*args)`` does what the kernel function does."""

    def __init__(self, name: str, ret: Any, args: tuple, app: Callable | None,
                 helper_id: int | None = None):
        self.sig = C.KfuncSig(name, ret, tuple(args), helper_id)
        self.app = app
        self.__name__ = name

    def __call__(self, *args: Any) -> Any:
        conv = [_convert(a, t) for a, t in zip(args, self.sig.args)]
        if self.app is not None:
            return _convert(self.app(*conv), self.sig.ret)
        return self._table_call(conv)

    def _table_call(self, args: list) -> Any:
        """The application run calls the helper table's implementation itself (the one
        the interpreter calls), with native addresses for pointers."""
        rt = app_runtime()
        h = rt.helper(self.sig.helper_id) if self.sig.helper_id is not None else rt.kfunc(self.sig.name)
        regs = [(a._paddr() if isinstance(a, Ptr) else int(a)) & 0xFFFFFFFFFFFFFFFF for a in args]
        regs += [0] * (5 - len(regs))
        r = h.impl(rt.rt, *regs)
        ret = self.sig.ret
        if isinstance(ret, T.PtrType):
            if not r:
                return Ptr(None, 0, ret.elem)
            size = h.proto.ret_size or T.sizeof(ret.elem)
            return memory_ptr(int(r), size, ret.elem)
        return _convert(r, ret) if ret is not None else None

    def __repr__(self) -> str:
        return f"<kfunc {self.__name__}>"


_APPMODE_BUILTINS = ("zero", "sizeof", "stack", "copy", "bpf_printk")


@dataclass
class Compiled:
    """The compiler's output: LLVM IR, the ELF object and timings (seconds)."""

    ir: str
    elf: bytes
    ir_seconds: float
    llvm_seconds: float
    records: list = field(default_factory=list)


class Program:
    """A program of a module; subclasses know how their design runs it."""

    section_prefix = ""
    kind = "program"

    def __init__(self, module: "Module", fn: Callable, name: str | None = None):
        self.module = module
        self.fn = fn
        self.name = name or fn.__name__
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        module._add_program(self)

    # compiler view ---------------------------------------------------------------------
    def func_info(self) -> C.FuncInfo:
        """What the compiler needs to know about the program (each kind defines it)."""
        raise NotImplementedError

    @property
    def section(self) -> str:
        """The program's ELF section: ``PREFIX/NAME`` (the prefix depends on the kind)."""
        return f"{self.section_prefix}/{self.name}"

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def __repr__(self) -> str:
        return f"<{self.kind} program {self.name} of module {self.module.name}>"


class SocketFilter(Program):
    """``SEC("socket")``: r1 = data buffer, r2 = its length; the test-bench program kind."""

    kind = "socket_filter"

    @property
    def section(self) -> str:
        """``socket/NAME``."""
        return "socket"          # libbpf's exact name: SEC("socket"), several per section

    def func_info(self) -> C.FuncInfo:
        """A socket filter: r1 = data, r2 = length, returns an int."""
        sig = inspect.signature(self.fn)
        params = list(sig.parameters)
        if len(params) > 2:
            raise _err_at(self.fn, f"{self.name}: a socket filter takes (data, length) at most")
        types = [T.ptr[T.u8], T.u64][:len(params)]
        ret = T.u64
        if sig.return_annotation is not inspect.Signature.empty:
            ret = _ann_or_err(self.fn, sig.return_annotation)
        return C.FuncInfo(self.fn, self.name, list(zip(params, types)), ret, section=self.section,
                          ctx_buffer=True)

    def run_in_app(self, data: bytes = b"") -> int:
        """Run the function as Python on a copy of ``data``; returns its result.
        ``self.last_data`` holds the buffer afterwards."""
        self.module.check()
        buf = bytearray(data)
        info = self.func_info()
        args = [buffer_ptr(buf), T.u64(len(buf))][:len(info.params)]
        with self.module.app_run().running():
            ret = _convert(self.fn(*args), info.ret)
        self.last_data = bytes(buf)
        return int(ret)

    def run(self, data: bytes = b"", engine: str = "jit") -> int:
        """Compile, verify, load with ``engine`` and run once on a copy of ``data``."""
        with self.loaded(engine) as runner:
            ret = runner(data)
            self.last_data = runner.last_data
            return ret

    def loaded(self, engine: str = "jit") -> "SocketRunner":
        """Load once, run many times: ``with prog.loaded() as run: run(data)``."""
        return SocketRunner(self, engine)


class SocketRunner:
    """A loaded socket filter; the module's sections are its variables until close()."""

    def __init__(self, prog: SocketFilter, engine: str):
        self.prog = prog
        self.loaded = prog.module.load(engine=engine, only=[prog.name])
        self.program = self.loaded.obj.programs[prog.name]
        self.ret = prog.func_info().ret
        self.last_data = b""

    def _bind(self) -> list[Section]:
        # bound for the call only: several runners (JIT, interpreter) of one module coexist,
        # and each call sees the sections' current values and leaves its results there
        return bind_sections(self.prog.module, self.loaded.obj)

    @property
    def engine(self) -> str:
        """The engine running the program (``jit`` or ``interp``)."""
        return self.program.engine

    def __call__(self, data: bytes = b"") -> int:
        prog = self.program
        buf = Buffer(max(len(data), 1), data)
        region = prog.runtime.mem.add(buf.addr, max(len(data), 1), True, "data")
        bound = self._bind()
        try:
            if prog.engine == "jit" and getattr(prog.jit, "checked", False):
                prog.jit.refresh_regions()
            try:
                ret = prog(buf.addr, len(data))
            except BpfRuntimeError as exc:
                raise self.loaded.runtime_error(self.prog.name, exc) from exc
            self.last_data = buf.read(0, len(data))
            # r0 read as the declared return type (an s64 -1 is -1, as run_in_app says;
            # the bits above a narrower type are not part of the result)
            return int(_convert(ret, self.ret))
        finally:
            unbind_sections(bound)
            prog.runtime.mem.remove(region)

    def close(self) -> None:
        """Release the loaded object (idempotent)."""
        self.loaded.close()

    def __enter__(self) -> "SocketRunner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --- the module ---------------------------------------------------------------------------
class Module:
    """One BPF object written in Python."""

    def __init__(self, name: str, platform: Platform | None = None):
        self.name = name
        # one platform for both runs: the loader resolves the compiled program's helpers
        # and kfuncs against it, the application run calls its implementations
        self.platform = platform if platform is not None else default_platform()
        self._app_rt: AppRuntime | None = None
        #: ``bpf_printk`` lines of both runs, in order (the loaded objects append here too)
        self.printk: list[str] = []
        self.sections: list[Section] = []
        self.maps: list = []
        self.programs: dict[str, Program] = {}
        self._compiled: Compiled | None = None
        self._resolver = _Resolver(self)

    # decorators ------------------------------------------------------------------------
    def rodata(self, cls: type) -> Section:
        """Read-only constants set by the application before load (``const volatile``)."""
        return self._section("rodata", cls)

    def bss(self, cls: type) -> Section:
        """Zero-initialised variables (initial values other than 0 go to ``.data``)."""
        return self._section("bss", cls)

    def data(self, cls: type) -> Section:
        """Declare a ``.data`` section from a class of typed fields; returns its proxy."""
        return self._section("data", cls)

    def arena_globals(self, cls: type) -> Section:
        """Variables in the module's arena (C's ``__arena`` globals, section
        ``.addr_space.1``): its last pages, reserved so ``alloc_pages`` never returns them.
        Programs reach them through casts (arrays and structures are ``arena_ptr``); the
        application reads and writes them in the arena's memory."""
        sec = Section(self, "addr_space.1", cls)
        arenas = [m for m in self.maps if m.map_type == _maps.MAP_TYPE_ARENA]
        where = inspect.getsourcefile(cls) or "?"
        if len(arenas) != 1:
            raise LangCompileError(where, sec._line, f"arena globals {cls.__name__}: the module needs "
                                   f"exactly one arena declared before them, it has {len(arenas)}")
        if any(s.section_name == sec.section_name for s in self.sections):
            raise LangCompileError(where, sec._line, f"arena globals {cls.__name__}: a module has one "
                                   "class of arena globals (put the fields together)")
        if sec.arena_pages > arenas[0].max_entries:
            raise LangCompileError(where, sec._line, f"arena globals {cls.__name__} ({sec._size} bytes) "
                                   f"do not fit in arena {arenas[0].name} ({arenas[0].max_entries} "
                                   "pages): the loader refuses it as libbpf does (-E2BIG)")
        if arenas[0]._map is not None and not arenas[0]._map.closed:
            raise LangCompileError(where, sec._line, f"arena globals {cls.__name__}: arena "
                                   f"{arenas[0].name} is already in use (declare them before use)")
        object.__setattr__(sec, "_arena", arenas[0])
        object.__setattr__(sec, "_arena_cls", cls)
        self.sections.append(sec)
        self._compiled = None
        return sec

    def _section(self, kind: str, cls: type) -> Section:
        sec = Section(self, kind, cls)
        if kind == "bss" and any(sec._mem):
            object.__setattr__(sec, "_kind", "data")
        self.sections.append(sec)
        self._compiled = None
        return sec

    def function(self, fn: Callable) -> LangFunction:
        """A local function: compiled once and reached by BPF-to-BPF calls."""
        return LangFunction(fn)

    def socket_filter(self, fn: Callable) -> SocketFilter:
        """Decorator: compile the function as a socket-filter program."""
        return SocketFilter(self, fn)

    def loop_step(self, ops_name: str) -> Callable[[Callable], Any]:
        """The Linux 7.1 ``io_uring_bpf_ops.loop_step`` struct_ops, bound in ``ops_name``."""
        def deco(fn: Callable) -> Any:
            return _design_part("loop").LoopStep(self, fn, ops_name)
        return deco

    def array_map(self, name: str, key: Any, value: Any, max_entries: int) -> Any:
        """``BPF_MAP_TYPE_ARRAY``: ``key`` an int type (u32), ``value`` an int type or a
        ctypes structure."""
        return self._map(name, 2, key, value, max_entries)

    def hash_map(self, name: str, key: Any, value: Any, max_entries: int) -> Any:
        """``BPF_MAP_TYPE_HASH``."""
        return self._map(name, 1, key, value, max_entries)

    def ringbuf(self, name: str, size: int) -> Any:
        """``BPF_MAP_TYPE_RINGBUF`` of ``size`` bytes (a power-of-two number of pages)."""
        return self._map(name, 27, None, None, size)

    def arena(self, name: str, pages: int) -> Any:
        """``BPF_MAP_TYPE_ARENA`` of ``pages`` pages (``BPF_F_MMAPABLE``): memory the program
        allocates with ``alloc_pages`` and the application reads through ``.map.memory()``."""
        return self._map(name, 33, None, None, pages, 1 << 10)

    def _map(self, name: str, map_type: int, key: Any, value: Any, max_entries: int,
             map_flags: int = 0) -> Any:
        m = BpfMap(self, name, map_type, key, value, max_entries, map_flags)
        self.maps.append(m)
        self._compiled = None
        return m

    def request(self, fn: Callable) -> Any:
        """A BPF request program of the 2021 RFC (``SEC("iouring.s/NAME")``)."""
        return _design_part("requests").RequestProgram(self, fn)

    def uring_bpf_ops(self, name: str, op_id: int = 0) -> Any:
        """An IORING_OP_BPF ``struct uring_bpf_ops`` variable; its ``.prep``/``.issue``/
        ``.fail``/``.cleanup`` decorate the callbacks."""
        return _design_part("ops").OpsStruct(self, name, op_id)

    def _add_program(self, prog: Program) -> None:
        if prog.name in self.programs:
            raise ValueError(f"module {self.name}: two programs named {prog.name!r}")
        self.programs[prog.name] = prog
        self._compiled = None

    @property
    def app_rt(self) -> AppRuntime:
        """The runtime of the application's own map calls outside any program run."""
        if self._app_rt is None:
            self._app_rt = AppRuntime(self.platform, self.printk)
        return self._app_rt

    def app_run(self) -> AppRuntime:
        """A fresh runtime for one application run of a program of this module
        (``with module.app_run().running(): ...``)."""
        return AppRuntime(self.platform, self.printk)

    # compiling -------------------------------------------------------------------------
    def check(self) -> None:
        """Type-check every program (what run_in_app requires): compile to IR."""
        self.compile()

    def compile(self) -> Compiled:
        """Python -> LLVM IR -> BPF ELF object (cached until the module changes)."""
        if self._compiled is not None:
            return self._compiled
        t0 = time.perf_counter()
        ir = self.ir()
        t1 = time.perf_counter()
        binding, tm = llvm()
        try:
            mod = binding.parse_assembly(ir)
            mod.verify()
        except RuntimeError as exc:   # our IR generator's bug, not the user's
            raise RuntimeError(f"uringbpf.lang produced invalid LLVM IR: {exc}") from exc
        pto = binding.create_pipeline_tuning_options(speed_level=2)
        pb = binding.create_pass_builder(tm, pto)
        # IndVarSimplify would replace a summing loop's exit value by a closed form
        # computed in i128, which the BPF backend can only lower to a __multi3 libcall it
        # then reports as an error that exits the process: not for our module (the
        # option is process-wide, so it is restored for the JIT's own compiles)
        binding.set_option("uringbpf.lang", "-replexitval=never")
        try:
            pb.getModulePassManager().run(mod, pb)
        finally:
            binding.set_option("uringbpf.lang", "-replexitval=cheap")
        hazard = backend_hazard(str(mod))
        if hazard is not None:
            line, what = hazard
            first = next(iter(self.programs.values()), None)
            raise LangCompileError(inspect.getsourcefile(first.fn) if first else "?", line, what)
        elf_bytes = tm.emit_object(mod)
        t2 = time.perf_counter()
        self._compiled = Compiled(ir, elf_bytes, t1 - t0, t2 - t1,
                                  srcmap.line_records(_elf.parse(elf_bytes, self.name)))
        return self._compiled

    def ir(self) -> str:
        """The module's LLVM IR."""
        first = next(iter(self.programs.values()), None)
        filename = inspect.getsourcefile(first.fn) if first else f"{self.name}.py"
        gen = C.ModuleGen(self.name, os.path.basename(filename or "?"),
                          os.path.dirname(os.path.abspath(filename or ".")))
        n_arenas = sum(m.map_type == _maps.MAP_TYPE_ARENA for m in self.maps)
        for sec in self.sections:
            if sec._arena is not None and n_arenas != 1:
                # an arena declared after the globals: the loader would refuse the object
                raise LangCompileError(inspect.getsourcefile(sec._arena_cls) or "?", sec._line,
                                       f"arena globals {sec.__name__}: the module has {n_arenas} "
                                       "arenas, arena globals need exactly one")
            for fname, (fkind, off) in sec._fields.items():
                size = T.sizeof(fkind)
                # .bss is zeros in the object whatever the application stored since (its
                # values are copied in at open(); a non-zero .bss initialiser is an LLVM
                # error that exits the process)
                init = bytes(size) if sec._kind == "bss" else bytes(sec._mem[off:off + size])
                try:
                    gen.add_global(C.GlobalVar(fname, fkind, sec.section_name, init,
                                               fname in sec._volatile), sec._line)
                except ValueError as exc:
                    raise LangCompileError(filename or "?", sec._line, str(exc)) from None
        for m in self.maps:
            gen.add_map(m.name, m.map_type, m.key, m.value, m.max_entries, m.map_flags)
        self._resolver.reset(gen)
        for prog in self.programs.values():
            info = prog.func_info()
            C.FuncGen(gen, info, self._resolver).generate()
            extra = getattr(prog, "module_extra", None)
            if extra is not None:
                extra(gen)
        self._resolver.drain()
        return gen.ir()

    def emit_obj(self, path: str | os.PathLike) -> str:
        """Write the ``.bpf.o`` (what ``--emit-obj`` does); returns the path."""
        path = os.fspath(path)
        with open(path, "wb") as f:
            f.write(self.compile().elf)
        return path

    # loading ---------------------------------------------------------------------------
    def open(self) -> BpfObject:
        """The compiled object opened by our loader, sections' values copied in."""
        obj = BpfObject.from_bytes(self.compile().elf, f"{self.name}.bpf.o")
        obj.printk = self.printk        # the compiled run's bpf_printk lines join the app run's
        # the current values first: reusing the arena writes the object's initial __arena
        # globals over the ones the application holds (as libbpf's copy into a reused arena)
        values = [(sec, {n: sec.raw_bytes(n) for n in sec._fields}) for sec in self.sections]
        for m in self.maps:
            # both runs use the one native map: its contents are an observable of both
            obj.reuse_map(m.name, m.map)
        for sec, raws in values:
            if sec.section_name not in obj.datasecs:
                continue
            gd = obj.datasec(sec.section_name)
            for n, raw in raws.items():
                off = gd.address_of(n) - gd.map.value_addr
                gd.map.memory()[off:off + len(raw)] = raw
        return obj

    def load(self, engine: str = "jit", only: list[str] | None = None,
             obj: BpfObject | None = None) -> "Loaded":
        """Open (unless ``obj`` is given), verify and load; verifier refusals become
        :class:`LangVerifierError` naming the Python line."""
        obj = obj or self.open()
        if only is not None:
            for name, p in obj.programs.items():
                p.autoload = name in only
        loaded = Loaded(self, obj)
        with contextlib.ExitStack() as undo:
            undo.callback(obj.close)
            try:
                obj.load(engine, strict_engine=True, platform=self.platform)
            except BpfVerifierError as exc:
                raise loaded.verifier_error(exc) from exc
            undo.pop_all()
        return loaded


class Loaded:
    """A loaded object plus what maps its instructions back to Python lines."""

    def __init__(self, module: Module, obj: BpfObject):
        self.module = module
        self.obj = obj
        self._lines: dict[str, list] = {}

    def lines(self, prog_name: str) -> list:
        """Source position of each instruction of program ``prog_name`` (from its line info)."""
        if prog_name not in self._lines:
            p = self.obj.programs[prog_name]
            self._lines[prog_name] = srcmap.program_lines(self.obj.elf, p.program.insns,
                                                          p.section, self.module.compile().records)
        return self._lines[prog_name]

    def line_of(self, prog_name: str, pc: int | None) -> tuple[str, int]:
        """``(file, line)`` of instruction ``pc`` of ``prog_name``."""
        lines = self.lines(prog_name)
        if pc is not None and 0 <= pc < len(lines) and lines[pc] is not None:
            return lines[pc]
        prog = self.module.programs.get(prog_name)
        fn = prog.fn if prog else None
        return (os.path.basename(inspect.getsourcefile(fn) or "?") if fn else "?",
                fn.__code__.co_firstlineno if fn else 0)

    def _failing_program(self, exc: Exception) -> str:
        for name, p in self.obj.programs.items():
            if p.autoload and not p.loaded:
                return name
        return next(iter(self.obj.programs))

    def verifier_error(self, exc: Exception) -> LangVerifierError:
        """A LangVerifierError naming the Python line of the refused instruction."""
        name = self._failing_program(exc)
        pc = getattr(exc, "pc", None)
        fname, line = self.line_of(name, pc)
        log = getattr(exc, "log", "") or ""
        lines = self.lines(name)
        annotated = []
        for ln in log.splitlines():
            head = ln.split(":", 1)[0].strip()
            if head.isdigit() and int(head) < len(lines) and lines[int(head)] is not None:
                annotated.append(f"{ln}    ; {lines[int(head)][0]}:{lines[int(head)][1]}")
            else:
                annotated.append(ln)
        msg = getattr(exc, "message", str(exc))
        return LangVerifierError(self._path(fname), line, f"{msg}", "\n".join(annotated), pc)

    def runtime_error(self, prog_name: str, exc: BaseException) -> LangRuntimeError:
        """A LangRuntimeError naming the Python line where the program faulted."""
        pc = getattr(exc, "pc", None)
        fname, line = self.line_of(prog_name, pc)
        return LangRuntimeError(self._path(fname), line, str(exc), pc)

    def _path(self, fname: str) -> str:
        for p in self.module.programs.values():
            src = inspect.getsourcefile(p.fn) or ""
            if os.path.basename(src) == fname:
                return src
        return fname

    def close(self) -> None:
        """Close the underlying BpfObject."""
        self.obj.close()


class _Resolver(C.Resolver):
    def __init__(self, module: Module):
        self.module = module
        self.gen: C.ModuleGen | None = None
        self.done: dict[int, C.FuncInfo] = {}
        self.queue: list[tuple[LangFunction, C.FuncInfo]] = []

    def reset(self, gen: C.ModuleGen) -> None:
        self.gen = gen
        self.done = {}
        self.queue = []

    def drain(self) -> None:
        while self.queue:
            lf, info = self.queue.pop(0)
            C.FuncGen(self.gen, info, self).generate()

    def env_of(self, fn: Callable) -> dict[str, Any]:
        env = dict(fn.__globals__)
        env.update(_closure(fn))
        return env

    def is_section(self, obj: Any) -> bool:
        return isinstance(obj, Section)

    def section_field(self, section: Any, name: str) -> C.GlobalVar | None:
        if section not in self.module.sections:
            return None
        if name not in section._fields:
            return None
        return self.gen.gvars.get(name)

    def function_info(self, lf: LangFunction) -> C.FuncInfo:
        info = self.done.get(id(lf))
        if info is None:
            params, ret = lf.signature()
            if len(params) > MAX_BPF_FUNC_ARGS and not lf.inline:
                # BPF passes arguments in r1-r5 only (LLVM's BPF backend would stop the
                # process on such a call instead of reporting it)
                raise _err_at(lf.fn, f"{lf.fn.__name__}() takes {len(params)} arguments: a BPF "
                                     f"function takes at most {MAX_BPF_FUNC_ARGS} (make it "
                                     "@inline, or pass a pointer to a structure)")
            sym = lf.fn.__name__
            n = 1
            while sym in self.gen.symbols:
                n += 1
                sym = f"{lf.fn.__name__}_{n}"
            self.gen.symbols.add(sym)
            info = C.FuncInfo(lf.fn, sym, params, ret, inline=lf.inline)
            self.done[id(lf)] = info
            self.queue.append((lf, info))
        return info

    def call_hook(self, obj: Any) -> Callable | None:
        if isinstance(obj, LangFunction):
            return lambda g, e, want: g.call_function(self.function_info(obj), e)
        if isinstance(obj, Kfunc):
            return lambda g, e, want: g.call_kfunc(obj.sig, e)
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, BpfMap) and owner in self.module.maps:
            return lambda g, e, want: g.map_call(owner, obj.__name__, e)
        builtin = (getattr(obj, "__module__", None) == "uringbpf.lang.appmode"
                   and getattr(obj, "__name__", None) in _APPMODE_BUILTINS)
        if builtin and obj.__name__ == "zero":
            return lambda g, e, want: g.zero(e)
        if builtin and obj.__name__ == "stack":
            return lambda g, e, want: g.stack(e)
        if builtin and obj.__name__ == "copy":
            return lambda g, e, want: g.copy(e)
        if builtin and obj.__name__ == "bpf_printk":
            return lambda g, e, want: g.printk(e)
        if builtin and obj.__name__ == "sizeof":
            def size(g, e, want):
                if len(e.args) != 1:
                    raise g.err(e, "sizeof(T) takes one type")
                t = g.type_of_annotation(e.args[0], allow_struct=True)
                return C.Val(None, const=T.sizeof(t if t is not C.FLEX else T.s64))
            return size
        if isinstance(obj, Program):
            return lambda g, e, want: (_ for _ in ()).throw(
                g.err(e, f"{obj.name} is a program: programs cannot call programs "
                         "(make the shared code a @bpf.function)"))
        return None
