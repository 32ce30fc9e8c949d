"""``BpfObject``: a libbpf-style loader for clang-built eBPF ELF objects.

Flow (as libbpf's skeleton)::

    obj = BpfObject.open("prog.bpf.o")      # parse ELF + BTF, create maps, relocate code
    obj.rodata.max_inflight = 8             # global data by variable name
    obj.struct_ops.nops_ops.ring_fd = fd    # struct_ops fields
    obj.load()                              # resolve kfuncs, freeze .rodata, verify, JIT
    obj.programs["nops_loop_step"](ctx)     # run a program (JIT or interpreter)
    link = obj.attach_struct_ops("nops_ops")
    obj.close()

What ``open`` understands: programs by SEC name (several per section), ``.text``
subprograms reached by calls or used as callbacks, BTF-defined maps in ``.maps``, global
data in ``.rodata``/``.data``/``.bss`` and their ``.rodata.*``-style variants (one array map
each), ``extern ... __ksym`` kfuncs (``__weak`` allowed), ``__kconfig`` externs
(LINUX_KERNEL_VERSION), and struct_ops variables in ``.struct_ops``/``.struct_ops.link``.

Choices where libbpf differs: maps are created by :meth:`BpfObject.open` (not ``load``), so
``obj.maps[...]`` can be filled before loading and sizes come from the object only;
relocation happens at open (so malformed code fails early) and kfuncs are resolved at load,
against the platform ``load(platform=)`` is given (default: every design, each imported
only when a program needs it; see :mod:`uringbpf.bpf.platform`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import struct
import re
from dataclasses import dataclass
from typing import Any, Callable

from . import btf as _btf
from . import elf as _elf
from . import engines
from . import isa
from . import kernel_exec
from . import maps as _maps
from . import platform as _platform
from . import struct_ops as _struct_ops
from . import verifier as _verifier
from . import verify_cache as _verify_cache
from ..errors import BpfLoadError, BpfVerifierError, JitError, NativeBuildError, UringBpfError
from .helpers import Runtime
from .interp import Interpreter
from .memory import AddressSpace, BpfRuntimeError

log = logging.getLogger("uringbpf")

_ENTRY_FN = ctypes.CFUNCTYPE(ctypes.c_uint64, *[ctypes.c_uint64] * 5)
U64 = isa.U64

# Section name -> (prog_type, sleepable) by prefix; libbpf's names, plus the io_uring ones.
_SECTION_PREFIXES: list[tuple[str, str, bool]] = [
    ("struct_ops.s", "struct_ops", True), ("struct_ops", "struct_ops", False),
    ("iouring.s", "iouring", True), ("iouring", "iouring", False),
    ("socket", "socket_filter", False), ("syscall", "syscall", True),
    ("xdp", "xdp", False), ("tc", "sched_cls", False), ("classifier", "sched_cls", False),
    ("kprobe", "kprobe", False), ("uprobe", "kprobe", False), ("tracepoint", "tracepoint", False),
    ("tp", "tracepoint", False), ("raw_tp", "raw_tracepoint", False),
    ("fentry.s", "tracing", True), ("fentry", "tracing", False),
    ("fexit.s", "tracing", True), ("fexit", "tracing", False),
    ("lsm.s", "lsm", True), ("lsm", "lsm", False), ("tp_btf", "tracing", False),
    ("cgroup", "cgroup", False),
]
_DATA_SECTION = re.compile(r"^\.(rodata|data|bss)(\..+)?$")


def section_prog_type(section: str) -> tuple[str, bool, str]:
    """(prog_type, sleepable, attach target) for a program section name."""
    for prefix, ptype, sleepable in _SECTION_PREFIXES:
        if section == prefix or section.startswith(prefix + "/") or section.startswith(prefix + "+"):
            rest = section[len(prefix):].lstrip("/+")
            return ptype, sleepable, rest
    return section.split("/", 1)[0] or "unspec", False, section.split("/", 1)[1] if "/" in section else ""


@dataclass
class _Func:
    sec: int          # section index
    start: int        # first slot in the section
    end: int          # one past the last slot
    name: str


class LoadedProgram:
    """One program of an object.  After ``load()``: ``prog(*args) -> r0``.

    ``program`` is the relocated :class:`isa.Program` (exists from ``open``), ``runtime``
    its :class:`Runtime`, ``engine`` "jit" or "interp", ``entry_address`` a native
    ``uint64_t (*)(uint64_t r1..r5)`` (JIT code or a trampoline into the interpreter),
    ``jit``/``interp`` the engine objects.
    """

    def __init__(self, obj: "BpfObject", program: isa.Program, weak_kfunc_sites: list[tuple[int, str]]):
        self.obj = obj
        self.program = program
        self.name = program.name
        self.section = program.section
        self.autoload = True
        self.runtime: Runtime | None = None
        self.engine: str | None = None
        self.jit = None
        self.interp = None
        self.verifier_result = None
        self._weak_sites = weak_kfunc_sites
        self._entry_cb = None
        self.last_error: BaseException | None = None

    @property
    def loaded(self) -> bool:
        """True once ``load()`` prepared an engine for the program."""
        return self.engine is not None

    @property
    def sleepable(self) -> bool:
        """True for a sleepable program (``.s`` section or a sleepable attach point)."""
        return self.program.sleepable

    @property
    def insns(self) -> list[isa.Insn]:
        """The relocated instructions (what the verifier and the engines see)."""
        return self.program.insns

    def __call__(self, r1: int = 0, r2: int = 0, r3: int = 0, r4: int = 0, r5: int = 0) -> int:
        if self.engine is None:
            raise BpfLoadError(f"program {self.name!r} is not loaded (call obj.load() first)")
        if self.engine == "kernel":
            raise BpfLoadError(f"program {self.name!r} was loaded into the kernel; it runs there")
        if self.engine == "jit":
            return self.jit(r1, r2, r3, r4, r5)
        return self.interp.run(r1 & U64, r2 & U64, r3 & U64, r4 & U64, r5 & U64)

    run = __call__

    @property
    def entry_address(self) -> int:
        """Native address to call the loaded program (JIT code or the interpreter's trampoline)."""
        if self.engine is None:
            raise BpfLoadError(f"program {self.name!r} is not loaded")
        if self.engine == "jit":
            return self.jit.address
        return self.interp.entry_address

    def take_error(self) -> BaseException | None:
        """The exception of the last native-entry run (interpreter trampoline or JIT)."""
        eng = self.jit if self.engine == "jit" else self.interp
        return eng.take_error() if eng is not None else None

    def __repr__(self) -> str:
        return (f"<LoadedProgram {self.name!r} section={self.section!r} "
                f"engine={self.engine or 'not loaded'} insns={len(self.program.insns)}>")


class GlobalData:
    """Skeleton access to one global-data map (``obj.rodata``, ``obj.bss``, ``obj.data``).

    Reads and writes go straight to the map's memory (what programs see).  Integers,
    enums, pointers and bools read as ``int``; char arrays as ``bytes`` (up to the NUL);
    anything else as raw ``bytes``.  ``.rodata`` becomes read-only after ``load()``.
    """

    def __init__(self, section: str, m: _maps.Map, variables: dict[str, tuple[int, int, int]],
                 btf: _btf.Btf | None):
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_map", m)
        object.__setattr__(self, "_vars", variables)  # name -> (offset, size, btf type id)
        object.__setattr__(self, "_btf", btf)

    @property
    def map(self) -> _maps.Map:
        """The array map holding the section's bytes."""
        return self._map

    @property
    def variables(self) -> list[str]:
        """Names of the section's variables (from BTF), in declaration order."""
        return list(self._vars)

    def raw(self) -> memoryview:
        """A memoryview of the whole section's bytes."""
        return self._map.memory()[:self._map.value_size]

    def _kind(self, tid: int):
        btf = self._btf
        if btf is None or tid == 0:
            return None
        return btf.resolve(tid)

    def get(self, name: str) -> Any:
        """The value of variable ``name``: an int, bool, or raw ``bytes`` for other types."""
        off, size, tid = self._var(name)
        raw = bytes(self._map.memory()[off:off + size])
        t = self._kind(tid)
        if t is None:
            return int.from_bytes(raw, "little") if size in (1, 2, 4, 8) else raw
        if t.kind == _btf.KIND_INT:
            if t.int_encoding & _btf.INT_BOOL:
                return bool(raw[0])
            return int.from_bytes(raw, "little", signed=bool(t.int_encoding & _btf.INT_SIGNED))
        if t.kind in (_btf.KIND_ENUM, _btf.KIND_ENUM64):
            return int.from_bytes(raw, "little", signed=t.kind == _btf.KIND_ENUM)
        if t.kind == _btf.KIND_PTR:
            return int.from_bytes(raw, "little")
        if t.kind == _btf.KIND_ARRAY:
            elem = self._btf.resolve(t.elem_type)
            if elem.kind == _btf.KIND_INT and elem.size == 1:
                return raw.split(b"\0", 1)[0]
        return raw

    def set(self, name: str, value: Any) -> None:
        """Set variable ``name`` from an int, bool or bytes; BpfLoadError once ``.rodata`` is
        frozen."""
        if self._map.frozen:
            raise BpfLoadError(f"{self._section} is read-only after load(): cannot set {name!r}")
        off, size, _tid = self._var(name)
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int):
            if size not in (1, 2, 4, 8):
                raise TypeError(f"{self._section}.{name} is {size} bytes; assign bytes")
            raw = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        else:
            raw = value.encode() if isinstance(value, str) else bytes(value)
            if len(raw) > size:
                raise ValueError(f"{self._section}.{name}: {len(raw)} bytes do not fit in {size}")
            raw = raw.ljust(size, b"\0")
        self._map.memory()[off:off + size] = raw

    def address_of(self, name: str) -> int:
        """Native address of a variable (what the program's lddw of it yields)."""
        return self._map.value_addr + self._var(name)[0]

    def _var(self, name: str) -> tuple[int, int, int]:
        try:
            return self._vars[name]
        except KeyError:
            raise AttributeError(f"{self._section} has no variable {name!r} "
                                 f"(have: {', '.join(self._vars) or 'none'})") from None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def __dir__(self):
        return list(self._vars)

    def __repr__(self) -> str:
        return f"<GlobalData {self._section} vars={list(self._vars)}>"


class BpfObject:
    """An opened eBPF ELF object: programs, maps, global data, struct_ops."""

    def __init__(self, path: str, elf_file: _elf.ElfFile):
        self.path = path
        self.name = os.path.basename(path).split(".")[0] or "obj"
        self.elf = elf_file
        self.btf: _btf.Btf | None = None
        self.license = ""
        self.maps: dict[str, _maps.Map] = {}
        self.map_list: list[_maps.Map] = []
        self.programs: dict[str, LoadedProgram] = {}
        self.printk: list[str] = []
        self.loaded = False
        self.closed = False
        self._datasec: dict[str, GlobalData] = {}
        self._sec_map: dict[int, int] = {}        # data section index -> map index
        self._arena_data_off: dict[int, int] = {}  # .addr_space.1 index -> its offset in the arena
        self._struct_ops: dict[str, _struct_ops.StructOpsMap] = {}
        self._links: list[Any] = []
        self._kconfig: dict[str, tuple[int, int, bool]] = {}  # name -> (offset, size, weak)
        self._ksyms: dict[str, bool] = {}       # extern name -> weak
        self._owned: set[int] = set()           # id() of the maps this object created
        self._kernel = None                     # kernel_exec.KernelState after load(executor="kernel")
        self.executor = "emulated"

    # ------------------------------------------------------------------ opening --
    @classmethod
    def open(cls, path: str | os.PathLike) -> "BpfObject":
        """Parse the ELF object at ``path`` (maps created, programs relocated, nothing verified
        yet)."""
        path = os.fspath(path)
        return cls._build(path, _elf.read(path))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<memory>") -> "BpfObject":
        """Like :meth:`open`, from the bytes of an ELF object; ``name`` appears in messages."""
        return cls._build(name, _elf.parse(data, name))

    @classmethod
    def _build(cls, path: str, ef: _elf.ElfFile) -> "BpfObject":
        obj = cls(path, ef)
        with contextlib.ExitStack() as undo:    # any failure closes the half-built object
            undo.callback(obj.close)
            try:
                obj._parse()
            except BpfLoadError:            # already names what is wrong (some are ValueErrors)
                raise
            except (IndexError, KeyError, ValueError, TypeError, OverflowError,
                    isa.DecodeError) as exc:
                # a malformed object that slipped past a specific check: still a load error
                raise BpfLoadError(f"{path}: malformed object ({type(exc).__name__}: {exc})") \
                    from exc
            undo.pop_all()
        return obj

    def _err(self, msg: str) -> BpfLoadError:
        return BpfLoadError(f"{self.path}: {msg}")

    def _parse(self) -> None:
        ef = self.elf
        btf_sec = ef.section(".BTF")
        if btf_sec is not None:
            self.btf = _btf.Btf.parse(btf_sec.data, f"{self.path}: .BTF")
        lic = ef.section("license")
        if lic is not None:
            self.license = lic.data.split(b"\0", 1)[0].decode("utf-8", "replace")
        self._collect_externs()
        self._create_legacy_maps()
        self._create_btf_maps()
        self._create_data_maps()
        self._place_arena_globals()
        self._collect_struct_ops()
        self._collect_programs()
        self._bind_struct_ops()

    # --- externs ---------------------------------------------------------------------
    def _datasec_vars(self, name: str) -> list[_btf.Type]:
        if self.btf is None:
            return []
        sec = self.btf.find(name, _btf.KIND_DATASEC)
        return [self.btf[v.type] for v in sec.vars] if sec else []

    def _collect_externs(self) -> None:
        for sym in self.elf.symbols:
            if sym.is_undef and sym.name and sym.bind in (_elf.STB_GLOBAL, _elf.STB_WEAK):
                self._ksyms[sym.name] = sym.bind == _elf.STB_WEAK
        kconfig = [t for t in self._datasec_vars(".kconfig") if t.kind == _btf.KIND_VAR]
        off = 0
        for var in kconfig:
            size = self.btf.size_of(var.ref)
            off = (off + min(size, 8) - 1) & ~(min(size, 8) - 1)
            self._kconfig[var.name] = (off, size, self._ksyms.get(var.name, False))
            off += size

    # --- maps ------------------------------------------------------------------------
    def _add_map(self, name: str, m: _maps.Map) -> int:
        if name in self.maps:
            m.close()
            raise self._err(f"duplicate map name {name!r}")
        self.maps[name] = m
        self.map_list.append(m)
        self._owned.add(id(m))
        return len(self.map_list) - 1

    def _create_legacy_maps(self) -> None:
        """libbpf 0.x ``struct bpf_map_def SEC("maps") m = {...}`` definitions.

        As libbpf did: the section holds one record per map symbol, all of the same size
        (section size / number of symbols), starting with the five u32 of
        ``struct bpf_map_def`` (type, key_size, value_size, max_entries, map_flags); a
        shorter record leaves the rest zero, a longer one is accepted only if its extra
        bytes are zero (libbpf's checks).
        """
        sec = self.elf.section("maps")
        if sec is None:
            return
        syms = sorted((s for s in self.elf.symbols if s.shndx == sec.index and s.name
                       and s.type in (_elf.STT_OBJECT, _elf.STT_NOTYPE)), key=lambda s: s.value)
        if not syms:
            raise self._err("section 'maps' holds no map symbols")
        if sec.size % len(syms):
            raise self._err(f"section 'maps': size {sec.size} is not a multiple of its "
                            f"{len(syms)} map definitions")
        rec = sec.size // len(syms)
        for sym in syms:
            raw = bytes(sec.data[sym.value:sym.value + rec])
            if len(raw) != rec:
                raise self._err(f"legacy map {sym.name!r}: definition runs past section 'maps'")
            # a shorter record (an older struct bpf_map_def) leaves the rest zero, as libbpf
            mtype, ksz, vsz, nmax, flags = struct.unpack_from("<5I", raw.ljust(20, b"\0"))
            if any(raw[20:]):
                raise self._err(f"legacy map {sym.name!r}: unknown non-zero fields after "
                                "struct bpf_map_def (libbpf 0.x refused them too)")
            try:
                m = _maps.Map(sym.name, mtype, ksz, vsz, nmax, flags)
            except _maps.MapError as exc:
                raise self._err(f"cannot create map {sym.name!r}: {exc.strerror}") from None
            self._add_map(sym.name, m)

    def _create_btf_maps(self) -> None:
        sec = self.elf.section(".maps")
        if sec is None:
            return
        if self.btf is None:
            raise self._err("section .maps needs BTF (compile with -g)")
        types = {t.name: t for t in self._datasec_vars(".maps") if t.kind == _btf.KIND_VAR}
        syms = sorted((s for s in self.elf.symbols if s.shndx == sec.index and s.type == _elf.STT_OBJECT),
                      key=lambda s: s.value)
        for sym in syms:
            var = types.get(sym.name)
            if var is None:
                raise self._err(f".maps: map {sym.name!r} has no BTF description")
            self._add_map(sym.name, self._btf_map(sym.name, var.ref))

    def _btf_map(self, name: str, tid: int) -> _maps.Map:
        btf = self.btf
        t = btf.resolve(tid)
        if t.kind != _btf.KIND_STRUCT:
            raise self._err(f"map {name!r}: definition is a {t.kind_name}, not a struct")
        spec: dict[str, int] = {}
        key_type = value_type = 0
        for m in t.members:
            mt = btf.resolve(m.type)
            if m.name in ("type", "max_entries", "map_flags", "key_size", "value_size",
                          "numa_node", "pinning", "map_extra"):
                # __uint(name, N) is `int (*name)[N]`; __ulong(name, N) (libbpf 1.4, for
                # 64-bit values such as an arena's map_extra) is an anonymous enum whose
                # only enumerator is N
                if mt.kind in (_btf.KIND_ENUM, _btf.KIND_ENUM64) and len(mt.enum_values) == 1:
                    spec[m.name] = mt.enum_values[0][1] & ((1 << 64) - 1)
                    continue
                if mt.kind != _btf.KIND_PTR or btf.resolve(mt.ref).kind != _btf.KIND_ARRAY:
                    raise self._err(f"map {name!r}: member {m.name!r} is neither a __uint() "
                                    "nor a __ulong() definition")
                spec[m.name] = btf.resolve(mt.ref).nelems
            elif m.name in ("key", "value"):
                if mt.kind != _btf.KIND_PTR:
                    raise self._err(f"map {name!r}: member {m.name!r} is not a __type() definition")
                size = btf.size_of(mt.ref)
                spec[m.name + "_size"] = size
                if m.name == "key":
                    key_type = mt.ref
                else:
                    value_type = mt.ref
            elif m.name == "values":
                raise self._err(f"map {name!r}: map-in-map/prog-array initial values are not supported")
            else:
                raise self._err(f"map {name!r}: unknown map definition member {m.name!r}")
        if "type" not in spec:
            raise self._err(f"map {name!r}: no map type (__uint(type, ...))")
        mtype = spec["type"]
        max_entries = spec.get("max_entries", 0)
        try:
            # map_extra: an arena's user address (user_vm_start), as libbpf passes it
            m = _maps.Map(name, mtype, spec.get("key_size", 0), spec.get("value_size", 0),
                          max_entries, spec.get("map_flags", 0), key_type, value_type,
                          map_extra=spec.get("map_extra", 0))
        except _maps.MapError as exc:
            raise self._err(f"cannot create map {name!r}: {exc.strerror}") from None
        return m

    def _place_arena_globals(self) -> None:
        """``.addr_space.1``: the globals clang puts in the arena (``__arena_global``,
        address_space(1) variables).  As libbpf (since "move arena globals to the end of
        the arena", Dec 2025): the object's one arena holds them in its last pages (taken,
        so bpf_arena_alloc_pages never hands them out) and references to them become the
        arena's address + that offset + the variable's (the kernel's
        arena_map_direct_value_addr; the verifier sees a number, which the program casts
        before use)."""
        sec = self.elf.section(".addr_space.1")
        if sec is None or sec.size == 0:
            return
        arenas = [m for m in self.map_list if m.type == _maps.MAP_TYPE_ARENA]
        if len(arenas) != 1:
            raise self._err(f".addr_space.1 ({sec.size} bytes of arena globals) needs exactly "
                            f"one arena map, the object has {len(arenas)}")
        arena = arenas[0]
        pages = -(-sec.size // _maps.PAGE_SIZE)
        if pages > arena.max_entries:
            raise self._err(f"declared ARENA map size ({arena.max_entries} pages) is too small "
                            f"to hold global __arena variables of size {sec.size}")
        base = (arena.max_entries - pages) * _maps.PAGE_SIZE
        if arena.arena_alloc_pages(pages, addr=arena.value_addr + base) != arena.value_addr + base:
            raise self._err(f"arena {arena.name!r}: cannot reserve its last {pages} pages "
                            "for .addr_space.1")
        if sec.type != _elf.SHT_NOBITS:
            arena.memory()[base:base + sec.size] = sec.data
        idx = self.map_list.index(arena)
        self._sec_map[sec.index] = idx
        self._arena_data_off[sec.index] = base
        btf_types = {t.name: t.ref for t in self._datasec_vars(sec.name) if t.kind == _btf.KIND_VAR}
        variables = {sym.name: (base + sym.value, sym.size, btf_types.get(sym.name, 0))
                     for sym in self.elf.symbols
                     if sym.shndx == sec.index and sym.type == _elf.STT_OBJECT and sym.name}
        self._datasec[sec.name] = GlobalData(sec.name, arena, variables, self.btf)

    def _create_data_maps(self) -> None:
        for sec in self.elf.sections:
            if not _DATA_SECTION.match(sec.name) or not sec.is_alloc:
                continue
            if sec.size == 0:
                continue
            readonly = sec.name.startswith(".rodata")
            flags = _maps.BPF_F_MMAPABLE | (_maps.BPF_F_RDONLY_PROG if readonly else 0)
            try:
                m = _maps.Map(sec.name, _maps.MAP_TYPE_ARRAY, 4, sec.size, 1, flags)
            except _maps.MapError as exc:
                raise self._err(f"cannot create map for {sec.name}: {exc.strerror}") from None
            if sec.type != _elf.SHT_NOBITS:
                m.memory()[:sec.size] = sec.data
            idx = self._add_map(sec.name, m)
            self._sec_map[sec.index] = idx
            variables: dict[str, tuple[int, int, int]] = {}
            btf_types = {t.name: t.ref for t in self._datasec_vars(sec.name) if t.kind == _btf.KIND_VAR}
            for sym in self.elf.symbols:
                if sym.shndx == sec.index and sym.type == _elf.STT_OBJECT and sym.name:
                    if sym.value + sym.size > sec.size:
                        raise self._err(f"variable {sym.name!r} [{sym.value}, +{sym.size}) is outside "
                                        f"{sec.name} ({sec.size} bytes)")
                    variables[sym.name] = (sym.value, sym.size, btf_types.get(sym.name, 0))
            self._datasec[sec.name] = GlobalData(sec.name, m, variables, self.btf)
        if self._kconfig:
            size = max(off + size for off, size, _ in self._kconfig.values())
            m = _maps.Map(".kconfig", _maps.MAP_TYPE_ARRAY, 4, max(size, 1), 1,
                          _maps.BPF_F_RDONLY_PROG | _maps.BPF_F_MMAPABLE)
            mem = m.memory()
            for name, (off, sz, weak) in self._kconfig.items():
                value = _kconfig_value(name)
                if value is None:
                    if not weak:
                        m.close()
                        raise self._err(f"unknown __kconfig extern {name!r} (declare it __weak "
                                        "to get 0)")
                    value = 0
                mem[off:off + sz] = (value & ((1 << (8 * sz)) - 1)).to_bytes(sz, "little")
            self._kconfig_map = self._add_map(".kconfig", m)

    # --- struct_ops ------------------------------------------------------------------
    def _collect_struct_ops(self) -> None:
        for sec in self.elf.sections:
            if sec.name not in (".struct_ops", ".struct_ops.link"):
                continue
            if self.btf is None:
                raise self._err(f"{sec.name} needs BTF (compile with -g)")
            types = {t.name: t.ref for t in self._datasec_vars(sec.name) if t.kind == _btf.KIND_VAR}
            for sym in self.elf.symbols:
                if sym.shndx != sec.index or sym.type != _elf.STT_OBJECT or not sym.name:
                    continue
                if sym.name not in types:
                    raise self._err(f"{sec.name}: struct_ops {sym.name!r} has no BTF type")
                if sym.value + sym.size > len(sec.data):
                    raise self._err(f"{sec.name}: struct_ops {sym.name!r} runs past the section")
                st = _struct_ops.StructOpsMap(sym.name, sec.name, self.btf, types[sym.name],
                                              sec.data[sym.value:sym.value + sym.size])
                st._sym_value = sym.value
                st._sec_index = sec.index
                self._struct_ops[sym.name] = st

    def _bind_struct_ops(self) -> None:
        for st in self._struct_ops.values():
            for rel in self.elf.relocs.get(st._sec_index, []):
                if not st._sym_value <= rel.offset < st._sym_value + len(st.data):
                    continue
                member = self._member_at(st, rel.offset - st._sym_value)
                if rel.type != _elf.R_BPF_64_ABS64:
                    raise self._err(f"{st.name}: unsupported relocation {rel.type_name} at member "
                                    f"{member!r}")
                if member is None or not st.is_func_member(member):
                    raise self._err(f"{st.name}: relocation at offset {rel.offset - st._sym_value} "
                                    "is not on a function-pointer member")
                prog = self._program_for_symbol(rel.symbol)
                if prog is None:
                    raise self._err(f"{st.name}.{member}: {rel.symbol.name!r} is not a program of "
                                    "this object")
                st.programs[member] = prog
                self._mark_struct_ops_prog(st, member, prog)
                # the pointer slot holds no meaningful bytes in the object
                off = st.field_offset(member)
                st.data[off:off + 8] = bytes(8)

    def _mark_struct_ops_prog(self, st: _struct_ops.StructOpsMap, member: str, prog: LoadedProgram) -> None:
        if not prog.section.startswith("struct_ops"):
            raise self._err(f"{st.name}.{member}: program {prog.name!r} is in section "
                            f"{prog.section!r}, not struct_ops/")
        prog.program.prog_type = "struct_ops"
        if not prog.program.attach or "." not in prog.program.attach:
            prog.program.attach = f"{st.type_name}.{member}"

    @staticmethod
    def _member_at(st: _struct_ops.StructOpsMap, offset: int) -> str | None:
        for name in st.member_names:
            m = st.member(name)
            if m.offset <= offset < m.offset + max(st.field_size(name), 1):
                return name
        return None

    def _program_for_symbol(self, sym: _elf.Symbol) -> LoadedProgram | None:
        for prog in self.programs.values():
            if prog.name == sym.name:
                return prog
        if sym.type == _elf.STT_SECTION:
            sec = self.elf.sections[sym.shndx]
            for prog in self.programs.values():
                if prog.section == sec.name.lstrip("?") and prog._sec_start == sym.value // 8:
                    return prog
        return None

    # --- programs --------------------------------------------------------------------
    def _collect_programs(self) -> None:
        ef = self.elf
        self._code: dict[int, list[isa.Insn]] = {}
        self._funcs: dict[int, list[_Func]] = {}
        # symbols by section, once (not a scan of every symbol per section and per function)
        by_sec: dict[int, list[_elf.Symbol]] = {}
        for sym in ef.symbols:
            by_sec.setdefault(sym.shndx, []).append(sym)
        for sec in ef.sections:
            if not (sec.is_exec and sec.type == _elf.SHT_PROGBITS) or sec.size == 0:
                continue
            if sec.size % isa.INSN_SIZE:
                raise self._err(f"section {sec.name}: size {sec.size} is not a multiple of 8")
            try:
                self._code[sec.index] = isa.decode(sec.data)
            except isa.DecodeError as exc:
                raise self._err(f"section {sec.name}: {exc}") from None
            funcs = []
            sec_syms = by_sec.get(sec.index, [])
            for sym in sec_syms:
                # functions: STT_FUNC, or global labels of hand-written assembly (STT_NOTYPE);
                # local NOTYPE symbols are branch labels (LBB0_3)
                is_func = sym.type == _elf.STT_FUNC or (
                    sym.type == _elf.STT_NOTYPE and sym.bind != _elf.STB_LOCAL and sym.name)
                if is_func:
                    if sym.value % 8 or sym.size % 8 or sym.value + sym.size > sec.size:
                        raise self._err(f"function {sym.name!r} in {sec.name} has a bad range "
                                        f"[{sym.value}, +{sym.size})")
                    start = sym.value // 8
                    end = (sym.value + sym.size) // 8 if sym.size else len(self._code[sec.index])
                    funcs.append(_Func(sec.index, start, end, sym.name))
            if not funcs and sec.name != ".text":
                funcs.append(_Func(sec.index, 0, len(self._code[sec.index]),
                                   sec.name.replace("/", "_")))
            funcs.sort(key=lambda f: f.start)
            # symbols without a size (hand-written assembly) end where the next one starts
            sized = {s.name for s in sec_syms if s.size}
            for i, f in enumerate(funcs):
                if f.name not in sized:
                    nxt = [g.start for g in funcs[i + 1:] if g.start > f.start]
                    f.end = nxt[0] if nxt else len(self._code[sec.index])
            self._funcs[sec.index] = funcs
        self._check_relocs()
        for sec_idx, funcs in self._funcs.items():
            sec = ef.sections[sec_idx]
            if sec.name == ".text":
                continue
            sym_binds = {s.name: s.bind for s in by_sec.get(sec_idx, [])}
            for f in funcs:
                if sym_binds.get(f.name, _elf.STB_GLOBAL) == _elf.STB_LOCAL:
                    continue  # static helpers placed in a program section are subprograms
                if f.name in self.programs:
                    raise self._err(f"duplicate program name {f.name!r}")
                prog = self._relocate(f)
                self.programs[f.name] = prog

    def _check_relocs(self) -> None:
        for sec_idx, rels in self.elf.relocs.items():
            sec = self.elf.sections[sec_idx]
            if sec_idx not in self._code:
                continue
            for rel in rels:
                if rel.type not in (_elf.R_BPF_64_64, _elf.R_BPF_64_32, _elf.R_BPF_NONE):
                    raise self._err(f"section {sec.name}: unsupported relocation {rel.type_name} at "
                                    f"insn {rel.offset // 8} (symbol {rel.symbol.name!r})")
                if rel.offset % 8:
                    raise self._err(f"section {sec.name}: relocation at offset {rel.offset} is not "
                                    "on an instruction boundary")

    def _func_at(self, sec_idx: int, slot: int, where: str) -> _Func:
        for f in self._funcs.get(sec_idx, []):
            if f.start == slot:
                return f
        for f in self._funcs.get(sec_idx, []):
            if f.start <= slot < f.end:
                if f.start != slot:
                    raise self._err(f"{where}: call target is inside function {f.name!r}, not at "
                                    "its start")
                return f
        sec = self.elf.sections[sec_idx]
        raise self._err(f"{where}: call target {slot} in {sec.name} is not a function")

    def _relocate(self, main: _Func) -> LoadedProgram:
        """Build one program: its function, then every subprogram it reaches, relocated."""
        ef = self.elf
        out: list[isa.Insn] = []
        placed: dict[tuple[int, int], int] = {}
        pending: list[_Func] = []
        kfuncs: list[str] = []
        weak_sites: list[tuple[int, str]] = []

        func_names: dict[int, str] = {}     # first insn -> function name (verifier: global funcs)

        def place(f: _Func) -> int:
            key = (f.sec, f.start)
            if key not in placed:
                placed[key] = len(out)
                func_names[len(out)] = f.name
                # fresh slots (relocation writes them); the constructor, not copy.copy, which
                # went through __reduce_ex__ and was most of open()'s time
                out.extend([isa.Insn(i.opcode, i.dst, i.src, i.off, i.imm, i.imm64)
                            for i in self._code[f.sec][f.start:f.end]])
                pending.append(f)
            return placed[key]

        place(main)
        sec_relocs = {}
        while pending:
            f = pending.pop(0)
            if f.sec not in sec_relocs:
                sec_relocs[f.sec] = {r.offset // 8: r for r in ef.relocs.get(f.sec, [])
                                     if r.type != _elf.R_BPF_NONE}
            relocs = sec_relocs[f.sec]
            sname = ef.sections[f.sec].name
            base = placed[(f.sec, f.start)]
            for slot in range(f.start, f.end):
                o = base + slot - f.start
                insn = out[o]
                rel = relocs.get(slot)
                if rel is not None:
                    where = f"program {main.name!r} ({sname} insn {slot})"
                    self._apply_reloc(rel, insn, out, o, slot, f, where, place, kfuncs, weak_sites)
                elif insn.opcode == isa.OP_CALL and insn.src == isa.PSEUDO_CALL:
                    where = f"program {main.name!r} ({sname} insn {slot})"
                    target = self._func_at(f.sec, slot + insn.imm + 1, where)
                    insn.imm = place(target) - (o + 1)
                elif insn.opcode == isa.OP_LDDW and insn.src == isa.PSEUDO_FUNC:
                    where = f"program {main.name!r} ({sname} insn {slot})"
                    target = self._func_at(f.sec, slot + insn.imm + 1, where)
                    self._set_func_ptr(insn, out, o, place(target))
        section = ef.sections[main.sec].name
        autoload = not section.startswith("?")   # libbpf: SEC("?name") is not loaded by default
        section = section.lstrip("?")
        ptype, sleepable, attach = section_prog_type(section)
        program = isa.Program(main.name, out, section=section, prog_type=ptype,
                              maps=self.map_list, kfuncs=kfuncs, sleepable=sleepable,
                              attach=attach, btf_func_name=main.name)
        program.btf = self.btf  # struct layouts for the verifier (isa.Program allows extra attributes)
        program.func_names = func_names  # the verifier checks global functions on their own
        prog = LoadedProgram(self, program, weak_sites)
        prog.autoload = autoload
        prog._sec_start = main.start
        return prog

    @staticmethod
    def _set_func_ptr(insn: isa.Insn, out: list[isa.Insn], o: int, target: int) -> None:
        rel = target - (o + 1)
        insn.src = isa.PSEUDO_FUNC
        insn.imm = rel
        insn.imm64 = rel & isa.U32
        out[o + 1].imm = 0

    def _apply_reloc(self, rel: _elf.Reloc, insn: isa.Insn, out: list[isa.Insn], o: int, slot: int,
                     f: _Func, where: str, place: Callable[[_Func], int], kfuncs: list[str],
                     weak_sites: list[tuple[int, str]]) -> None:
        ef = self.elf
        sym = rel.symbol
        if insn.is_call:
            if rel.type != _elf.R_BPF_64_32:
                raise self._err(f"{where}: call has relocation {rel.type_name}, expected R_BPF_64_32")
            if sym.is_undef:
                self._check_extern_call(sym.name, where)
                if insn.src not in (isa.PSEUDO_CALL, isa.PSEUDO_KFUNC_CALL):
                    raise self._err(f"{where}: call to extern {sym.name!r} is not a kfunc call")
                if sym.name not in kfuncs:
                    kfuncs.append(sym.name)
                insn.src = isa.PSEUDO_KFUNC_CALL
                insn.imm = kfuncs.index(sym.name)
                insn.off = 0
                if sym.bind == _elf.STB_WEAK:
                    weak_sites.append((o, sym.name))
                else:
                    weak_sites.append((o, "!" + sym.name))
                return
            if insn.src != isa.PSEUDO_CALL:
                raise self._err(f"{where}: relocated call is not a BPF-to-BPF call (src {insn.src})")
            if sym.shndx not in self._code:
                raise self._err(f"{where}: call into {ef.sections[sym.shndx].name}, which holds no code")
            target = self._func_at(sym.shndx, sym.value // 8 + insn.imm + 1, where)
            insn.imm = place(target) - (o + 1)
            return
        if not insn.is_lddw:
            raise self._err(f"{where}: relocation {rel.type_name} against {sym.name!r} on an "
                            f"instruction that is neither lddw nor call (opcode {insn.opcode:#04x})")
        if rel.type != _elf.R_BPF_64_64:
            raise self._err(f"{where}: lddw has relocation {rel.type_name}, expected R_BPF_64_64")
        if sym.is_undef:
            self._reloc_extern_lddw(sym, insn, out, o, where)
            return
        if sym.shndx in (_elf.SHN_ABS, _elf.SHN_COMMON):
            raise self._err(f"{where}: relocation against absolute/common symbol {sym.name!r}")
        tsec = ef.sections[sym.shndx]
        if tsec.name in (".maps", "maps"):     # "maps": libbpf 0.x legacy definitions
            if sym.type == _elf.STT_SECTION:
                name = next((s.name for s in ef.symbols if s.shndx == sym.shndx and s.name and
                             s.type in (_elf.STT_OBJECT, _elf.STT_NOTYPE) and s.value == insn.imm), None)
            else:
                name = sym.name
            if name not in self.maps:
                raise self._err(f"{where}: reference to unknown map {name!r}")
            idx = self.map_list.index(self.maps[name])
            insn.src = isa.PSEUDO_MAP_IDX
            insn.imm = idx
            insn.imm64 = idx
            out[o + 1].imm = 0
            return
        if sym.shndx in self._sec_map:
            idx = self._sec_map[sym.shndx]
            off = (sym.value if sym.type != _elf.STT_SECTION else 0) + insn.imm
            if not 0 <= off <= tsec.size:
                raise self._err(f"{where}: offset {off} is outside {tsec.name} ({tsec.size} bytes)")
            off += self._arena_data_off.get(sym.shndx, 0)    # arena globals: the arena's end
            insn.src = isa.PSEUDO_MAP_IDX_VALUE
            insn.imm = idx
            insn.imm64 = idx | (off << 32)
            out[o + 1].imm = off
            return
        if sym.shndx in self._code:
            target = self._func_at(sym.shndx, (sym.value + insn.imm) // 8, where)
            self._set_func_ptr(insn, out, o, place(target))
            return
        if tsec.name in (".struct_ops", ".struct_ops.link"):
            raise self._err(f"{where}: programs cannot reference struct_ops variable {sym.name!r}")
        raise self._err(f"{where}: relocation against {sym.name!r} in section {tsec.name!r} "
                        "(not a map, global data or code)")

    def _check_extern_call(self, name: str, where: str) -> None:
        """Refuse a call to an undefined function that is not an ``extern ... __ksym`` kfunc.

        clang < 15 turns a call to an undeclared function (a helper missing from the
        headers) into exactly such a call; libbpf refuses it, and so do we, by name.
        Objects without BTF cannot say what is a kfunc, so they are not checked here.
        """
        if self.btf is None:
            return
        ksyms = {t.name for t in self._datasec_vars(".ksyms") if t.kind == _btf.KIND_FUNC}
        if name in ksyms:
            return
        hint = "declare it `extern ... __ksym` if it is a kfunc"
        h = self.platform.helper_by_name(name)
        if h is not None:
            hint = (f"it is BPF helper #{h.helper_id}: include <bpf/bpf_helpers.h> (which "
                    f"declares it) or declare `static ... (* const {name})(...) = (void *) "
                    f"{h.helper_id};`")
        raise self._err(f"{where}: call to undefined symbol {name!r}: it is not defined in "
                        f"this object and not a __ksym kfunc; {hint}")

    def _reloc_extern_lddw(self, sym: _elf.Symbol, insn: isa.Insn, out: list[isa.Insn], o: int,
                           where: str) -> None:
        weak = sym.bind == _elf.STB_WEAK
        if sym.name in self._kconfig:
            off = self._kconfig[sym.name][0]
            idx = self._kconfig_map
            insn.src = isa.PSEUDO_MAP_IDX_VALUE
            insn.imm = idx
            insn.imm64 = idx | (off << 32)
            out[o + 1].imm = off
            return
        # a __ksym address (bpf_ksym_exists(kfunc)): non-zero when the kfunc exists (the
        # value is only ever tested: a program cannot call through it)
        k = self.platform.get_kfunc(sym.name)
        value = 0
        if k is not None:
            value = 1
        elif not weak:
            raise self._err(f"{where}: extern {sym.name!r} is not a known kfunc or kconfig value")
        insn.src = 0
        insn.imm = isa.to_s32(value & isa.U32)
        insn.imm64 = value
        out[o + 1].imm = isa.to_s32(value >> 32)

    def reuse_map(self, name: str, other: _maps.Map) -> None:
        """Use ``other`` (e.g. a map of another object) instead of this object's map ``name``.

        Like libbpf's ``bpf_map__reuse_fd``: call before ``load()``; type, key size, value
        size and max_entries must match.  Programs refer to maps by index, so they pick the
        shared map up without re-relocation.  The caller keeps ``other`` open while this
        object uses it (``close()`` closes it too, as it now belongs to both).
        """
        if self.loaded:
            raise BpfLoadError(f"{self.path}: reuse_map({name!r}) must come before load()")
        mine = self.maps.get(name)
        if mine is None:
            raise BpfLoadError(f"{self.path}: no map {name!r} (have: {', '.join(self.maps)})")
        if other.closed:
            raise BpfLoadError(f"{self.path}: reuse_map({name!r}): the replacement map is closed")
        for attr in ("type", "key_size", "value_size", "max_entries"):
            if getattr(mine, attr) != getattr(other, attr):
                raise BpfLoadError(f"{self.path}: reuse_map({name!r}): {attr} differs "
                                   f"({getattr(mine, attr)} here, {getattr(other, attr)} given)")
        idx = self.map_list.index(mine)
        self.map_list[idx] = other
        self.maps[name] = other
        if name in self._datasec:
            gd = self._datasec[name]
            object.__setattr__(gd, "_map", other)
        if mine is not other:
            self._move_arena_globals(mine, other)
            self._owned.discard(id(mine))
            mine.close()

    def _move_arena_globals(self, mine: _maps.Map, other: _maps.Map) -> None:
        """``reuse_map`` of the arena holding ``.addr_space.1``: as libbpf copies the
        object's arena globals into a reused arena's mapping (which populates those pages),
        take the same last pages of ``other`` unless already taken and copy the bytes."""
        for sec_index, base in self._arena_data_off.items():
            sec = self.elf.sections[sec_index]
            gd = self._datasec.get(sec.name)
            if gd is None or gd.map is not mine:
                continue
            for page in range(-(-sec.size // _maps.PAGE_SIZE)):
                ret = other.arena_reserve_pages(other.value_addr + base + page * _maps.PAGE_SIZE)
                if ret not in (0, -errno.EBUSY):        # EBUSY: already populated
                    raise BpfLoadError(f"{self.path}: reuse_map({mine.name!r}): cannot take "
                                       f"the page of .addr_space.1 at +{base + page * _maps.PAGE_SIZE}")
            other.memory()[base:base + sec.size] = mine.memory()[base:base + sec.size]
            object.__setattr__(gd, "_map", other)

    # ------------------------------------------------------------------ skeleton --
    def _data(self, name: str) -> GlobalData:
        try:
            return self._datasec[name]
        except KeyError:
            raise AttributeError(f"{self.path} has no {name} section") from None

    @property
    def rodata(self) -> GlobalData:
        """The ``.rodata`` globals (``const volatile``): settable until ``load()`` freezes them."""
        return self._data(".rodata")

    @property
    def data(self) -> GlobalData:
        """The ``.data`` globals (initialised, writable by programs and Python)."""
        return self._data(".data")

    @property
    def bss(self) -> GlobalData:
        """The ``.bss`` globals (zero-initialised, writable by programs and Python)."""
        return self._data(".bss")

    def datasec(self, name: str) -> GlobalData:
        """Any global-data section by name (``.rodata.cfg``, ``.data.table``...)."""
        return self._data(name)

    @property
    def datasecs(self) -> dict[str, GlobalData]:
        """Every global-data section by name (``.rodata``, ``.bss``, ``.data.foo``...)."""
        return dict(self._datasec)

    @property
    def struct_ops(self) -> _struct_ops.StructOpsNamespace:
        """The object's struct_ops maps by name (``obj.struct_ops.my_ops.ring_fd = ring.fd``)."""
        return _struct_ops.StructOpsNamespace(self._struct_ops)

    # -------------------------------------------------------------------- loading --
    def load(self, engine: str | None = None, verify: bool = True, *, strict_engine: bool = True,
             checked: bool | None = None, executor: str = "emulated",
             platform: "_platform.Platform | None" = None,
             jit_tier: str | None = None) -> "BpfObject":
        """Resolve kfuncs, freeze ``.rodata``, verify and prepare every program to run.

        ``engine`` is "jit", "interp", or None/"auto" (the default): the JIT when llvmlite
        (the ``uringbpf[jit]`` extra) is installed, else the interpreter; "jit" without
        llvmlite raises :class:`~uringbpf.bpf.engines.JitUnavailableError`
        (:mod:`uringbpf.bpf.engines` decides).  A program the JIT cannot compile raises
        :class:`JitError`; only with ``strict_engine=False`` does it run on the interpreter
        instead (logged on the ``uringbpf`` logger, the error kept in ``prog.jit_error``).
        ``verify=True`` runs :func:`uringbpf.bpf.verifier.verify`; its
        :class:`BpfVerifierError` propagates, naming this object and the program.
        ``verify=False`` is the only way to run an unverified program, and its JIT code is
        then checked (``checked`` defaults to ``not verify``).
        ``platform`` (default :func:`uringbpf.bpf.platform.default_platform`) supplies
        helpers, kfuncs, program types and struct_ops attach functions.
        ``jit_tier`` ("auto", "direct", "llvm", "tiered"; default ``URINGBPF_JIT_TIER`` or
        "auto")
        chooses the JIT's code tier (:func:`uringbpf.bpf.engines.jit_tier`).
        """
        if self.closed:
            raise BpfLoadError(f"{self.path}: object is closed")
        if self.loaded:
            raise BpfLoadError(f"{self.path}: already loaded")
        engine = engines.resolve(engine)     # None/"auto": the JIT when llvmlite is installed
        # executor="kernel" (or "auto" on a kernel with io_uring_bpf_ops): the running
        # kernel loads, verifies and runs the programs (bpf/kernel_exec.py)
        if kernel_exec.resolve_executor(executor) == "kernel":
            self._kernel = kernel_exec.load(self)
            self.executor = "kernel"
            for prog in self.programs.values():
                if prog.autoload:
                    prog.engine = "kernel"
            for st in self._struct_ops.values():
                st.loaded = True
            self.loaded = True
            return self
        if platform is not None:
            self.platform = platform
        checked = (not verify) if checked is None else checked
        self.prepare()
        progs = [p for p in self.programs.values() if p.autoload]
        for m in self.map_list:
            if m.map_flags & _maps.BPF_F_RDONLY_PROG and m.type == _maps.MAP_TYPE_ARRAY:
                m.freeze()
        for prog in progs:
            self._load_program(prog, engine, verify, strict_engine, checked, jit_tier)
        for m in self.map_list:      # loaded programs hold their maps (closing one raises)
            m.hold(self)
        self._holds_maps = True
        for st in self._struct_ops.values():
            st.loaded = True
        self.loaded = True
        return self

    @property
    def platform(self) -> "_platform.Platform":
        """The platform this object resolves against (``load(platform=)``, else the default)."""
        p = self.__dict__.get("_platform")
        if p is None:
            p = self.__dict__["_platform"] = _platform.default_platform()
        return p

    @platform.setter
    def platform(self, value: "_platform.Platform") -> None:
        if self.loaded:
            raise BpfLoadError(f"{self.path}: the platform cannot change after load()")
        self.__dict__["_platform"] = value

    def prepare(self) -> list[isa.Program]:
        """Resolve kfuncs against the table (what ``load()`` does first) and return the
        relocated programs that would be loaded, e.g. for ``uringbpf verify``.

        A missing non-weak kfunc raises :class:`BpfLoadError`; calls to missing ``__weak``
        kfuncs become ``r0 = 0``.  Safe to call more than once.
        """
        self._check_btf_func_params()
        progs = [p for p in self.programs.values() if p.autoload]
        for prog in progs:
            self._resolve_kfuncs(prog)
        return [p.program for p in progs]

    def _check_btf_func_params(self) -> None:
        """Refuse what the kernel's BTF check refuses in a function's prototype.

        libbpf must load the object's BTF into the kernel when the object has struct_ops
        (``kernel_needs_btf``), and the kernel's ``btf_func_check`` refuses a defined
        (static or global) function whose prototype has a typed parameter without a name:
        what clang emits for a naked function declared with parameters.  Such an object
        never loads on Linux 7.2 ("Invalid arg#1"), so it must not load here either (#20,
        held-out corpus 3: l_btf_naked_unnamed_param).  Extern declarations (kfuncs) are
        not checked: the loader rewrites those before the kernel sees them.
        """
        if self.btf is None or not self._struct_ops:
            return
        for func in self.btf.funcs():
            if func.linkage not in (_btf.FUNC_STATIC, _btf.FUNC_GLOBAL):
                continue
            for i, param in enumerate(self.btf[func.ref].params):
                if param.type and not param.name:
                    raise self._err(f"[{func.id}] FUNC {func.name} type_id={func.ref} "
                                    f"Invalid arg#{i + 1}: a parameter without a name in BTF "
                                    "(a naked function declared with parameters?)")

    def _resolve_kfuncs(self, prog: LoadedProgram) -> None:
        program = prog.program
        missing: set[str] = set()
        for name in program.kfuncs:
            if self.platform.get_kfunc(name) is None:
                missing.add(name)
        for o, tag in prog._weak_sites:
            name = tag.lstrip("!")
            if name not in missing:
                continue
            if tag.startswith("!"):
                raise BpfLoadError(f"{self.path}: program {prog.name!r}: kfunc {name!r} (called at "
                                   f"insn {o}) is not registered; import the design that provides "
                                   "it or declare it __weak")
            # unresolved __weak kfunc: the call becomes `r0 = 0` (libbpf poisons it likewise)
            program.insns[o] = isa.Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 0)

    def _new_runtime(self, prog: LoadedProgram) -> Runtime:
        rt = Runtime(mem=AddressSpace(), maps=self.map_list, sleepable=prog.program.sleepable,
                     printk=self.printk, platform=self.platform)
        for m in self.map_list:
            for r in m.regions():
                rt.mem.add(r.base, r.size, r.writable, r.name)
        return rt

    def _load_program(self, prog: LoadedProgram, engine: str, verify: bool, strict: bool,
                      checked: bool, jit_tier: str | None = None) -> None:
        program = prog.program
        if verify:
            try:
                # an unchanged program's earlier verdict, when the cache has it
                prog.verifier_result = _verify_cache.verify(program, self.platform,
                                                            self.elf.digest, _verifier.verify)
            except BpfVerifierError as exc:
                raise exc.with_context(self.path, prog.name)
        rt = self._new_runtime(prog)
        prog.runtime = rt
        if engine == "jit":
            try:
                prog.jit = engines.jit_module().compile(program, rt, checked=checked,
                                                        tier=jit_tier)
                prog.engine = "jit"
                return
            except (JitError, NativeBuildError) as exc:
                if strict:
                    raise
                log.warning("%s: program %r runs on the interpreter: the JIT failed: %s",
                            self.path, prog.name, exc)
                prog.jit_error = exc
        interp = Interpreter(program, rt)
        prog.interp = interp
        prog.engine = "interp"
        rt.call_function = _callback_caller(interp)

    # -------------------------------------------------------------------- attach --
    def attach_struct_ops(self, name: str) -> Any:
        """Hand struct_ops ``name`` to the design registered for its type; returns its link."""
        if not self.loaded:
            raise BpfLoadError(f"{self.path}: load() the object before attaching struct_ops")
        st = self._struct_ops.get(name)
        if st is None:
            raise BpfLoadError(f"{self.path}: no struct_ops map {name!r} "
                               f"(have: {', '.join(self._struct_ops) or 'none'})")
        for member, prog in list(st.programs.items()):
            if isinstance(prog, str):
                prog = self.programs.get(prog)
                if prog is None:
                    raise BpfLoadError(f"{self.path}: struct_ops {name}.{member}: no program named "
                                       f"{st.programs[member]!r}")
                st.programs[member] = prog
            if not prog.loaded:
                raise BpfLoadError(f"{self.path}: struct_ops {name}.{member}: program "
                                   f"{prog.name!r} is not loaded")
        if self._kernel is not None:
            link = kernel_exec.attach_struct_ops(self, st)
        else:
            link = _struct_ops.attach(self, st, self.platform)
        st.link = link
        self._links.append(link)
        return link

    # --------------------------------------------------------------------- closing --
    def close(self) -> None:
        """Destroy the links, drop the engines and release the maps this object owns (idempotent).
        """
        if self.closed:
            return
        self.closed = True
        errors = []
        for link in reversed(self._links):
            try:
                link.destroy()
            except (OSError, UringBpfError) as exc:   # release the rest first, then raise
                errors.append(exc)
        self._links.clear()
        if self._kernel is not None:
            self._kernel.close()
            self._kernel = None
        for prog in self.programs.values():
            if prog.jit is not None:
                # before the maps go: a background switch to LLVM's code reads their
                # addresses, and a caller still holding the function must get an error,
                # not run over released maps
                prog.jit.close()
            prog.jit = None
            prog.interp = None
            prog.engine = None
        if self.__dict__.pop("_holds_maps", False):
            for m in self.map_list:
                m.release(self)
        for m in self.map_list:
            if id(m) in self._owned:
                m.close()
        if errors:
            raise errors[0]

    def __enter__(self) -> "BpfObject":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<BpfObject {self.path} programs={list(self.programs)} maps={list(self.maps)} "
                f"struct_ops={list(self._struct_ops)}>")


def _callback_caller(interp: Any) -> Callable[..., int]:
    """``runtime.call_function(fn, r1..r5)`` for helpers that take a callback (bpf_loop).

    ``fn`` must be one of this interpreter's ``lddw PSEUDO_FUNC`` values; anything else is
    refused instead of being called as a native pointer.
    """
    def call(fn: int, *args: int) -> int:
        if interp.function_for_address(fn) is None:
            raise BpfRuntimeError(f"callback {fn:#x} is not a function of program {interp.program.name!r}")
        result = _ENTRY_FN(fn)(*(list(args) + [0] * (5 - len(args))))
        err = interp.take_error() if hasattr(interp, "take_error") else None
        if err is not None:
            raise err
        return result

    return call


def _kconfig_value(name: str) -> int | None:
    if name == "LINUX_KERNEL_VERSION":
        nums = re.findall(r"\d+", os.uname().release)[:3] + ["0", "0", "0"]
        major, minor, patch = (int(x) for x in nums[:3])
        return (major << 16) | (minor << 8) | min(patch, 255)
    if name == "LINUX_HAS_BPF_COOKIE":
        return 0
    return None


def open_object(path: str | os.PathLike) -> BpfObject:
    """``BpfObject.open(path)``, as a function."""
    return BpfObject.open(path)
