"""The platform: everything a program may call or be, in one object passed explicitly.

A :class:`Platform` is what PREVAIL calls ``ebpf_platform_t`` and what libbpf keeps in
``section_defs[]``: the helpers (by id), the kfuncs (by name), the program types (by
section prefix, by struct_ops member, by name) and the struct_ops attach functions that a
program loaded *on this platform* can use.  The loader (:meth:`BpfObject.load(platform=)
<uringbpf.bpf.object.BpfObject.load>`), the verifier and the engines ask the platform, and
nothing else, about those things:

========================================  ==========================================
``get_helper(helper_id)``                 :class:`~uringbpf.bpf.helpers.Helper` or None
``get_kfunc(name)``                       :class:`~uringbpf.bpf.helpers.Helper` or None
``prog_type_for(program)``                :class:`~uringbpf.bpf.progtypes.ProgType`
                                          (raises :class:`ProgTypeError`)
``struct_ops_attach(type_name)``          ``attach(obj, st_map) -> link`` or None
``sections``                              the section table (:class:`SectionDef` list)
========================================  ==========================================

Two kinds of platform exist:

* :func:`base_platform`: ``bpf/`` alone — the base helpers and kfuncs of
  :mod:`uringbpf.bpf.base_helpers` and the ``socket``/``syscall`` program types.
* the *default* platform, assembled one level above ``bpf/`` in :mod:`uringbpf.platform`
  from the designs.  A design is added *lazily* (:meth:`Platform.add_design`): the platform
  knows which kfuncs, helper ids, struct_ops types and section prefixes it provides and
  imports it only when a lookup asks for one of them, so a socket filter never imports a
  design nor compiles a design's C.

``bpf/`` never imports ``designs/``: a design reaches a platform only through
:meth:`Platform.install` (called by the platform on demand) and its :class:`Design`
``contribute(platform)`` method.  Nothing registers itself at import time.

The base tables :data:`uringbpf.bpf.helpers.HELPERS` / ``KFUNCS`` and the ``progtypes``
registries are the base layer every platform falls back to (tests add their own entries
there); a platform's own entries win over them.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from . import base_helpers as _base_helpers
from . import helpers as _helpers
from . import progtypes as _pt
from . import struct_ops as _struct_ops
from ..errors import BpfLoadError, ProgTypeError
from .helpers import Arg, Helper, Proto, Ret

AttachFn = Callable[[Any, Any], Any]

__all__ = ["AttachFn", "Design", "DesignRef", "Platform", "SectionDef", "base_platform",
           "default_platform", "set_default_platform"]

# the base table is filled by the decorators of base_helpers when it is imported; this
# name keeps the import explicit (the platform is where the base helpers come from)
BASE_HELPERS_MODULE = _base_helpers.__name__


@dataclass(frozen=True)
class SectionDef:
    """One row of the section table (libbpf's ``section_defs[]``).

    A program whose ELF section is ``prefix``, or starts with ``prefix`` + ``/`` (``.s/``
    for the sleepable form), gets ``prog_type``.
    """

    prefix: str
    prog_type: _pt.ProgType

    def matches(self, section: str) -> bool:
        """True if ``section`` names this prefix (``prefix`` or ``prefix/...``, sleepable forms
        too)."""
        return _pt._section_matches(section, self.prefix)


@dataclass(frozen=True)
class DesignRef:
    """A design the platform will import when a lookup needs something it provides.

    ``module`` must define ``DESIGN``, an instance of :class:`Design`.  What it provides is
    declared here so that nothing is imported before it is needed; :meth:`Platform.install`
    checks the declaration against what the design actually contributes.
    """

    module: str
    kfuncs: frozenset[str] = frozenset()
    helpers: frozenset[int] = frozenset()
    struct_ops: frozenset[str] = frozenset()
    sections: frozenset[str] = frozenset()


class Design:
    """One io_uring+BPF design as a plug-in (base class).

    A design contributes to a platform — helpers, kfuncs, program types, section
    prefixes, struct_ops types — in :meth:`contribute`, and extends a ring only through
    the ring's public hooks (``Ring.set_enter_hook``, ``add_sqe_filter``,
    ``add_register_hook``, ``Ring.by_fd``, ``Ring.deny_sqe``).  See docs/adding-a-design.md.
    """

    #: short name (the folder under designs/)
    name: str = ""

    def contribute(self, platform: "Platform") -> None:
        """Add this design's helpers, kfuncs, program types and struct_ops to ``platform``."""
        raise NotImplementedError

    def platform(self) -> "Platform":
        """A platform of the base plus this design alone (for programs the design runs
        itself, e.g. hand-assembled ones that never went through ``BpfObject.load``)."""
        cached = self.__dict__.get("_own_platform")
        if cached is None:
            cached = base_platform(f"base+{self.name}")
            cached.install(self)
            self.__dict__["_own_platform"] = cached
        return cached


class Platform:
    """Helpers, kfuncs, program types, sections and struct_ops attach functions.

    Build one with :func:`base_platform` (or ``Platform()``), add designs with
    :meth:`add_design` (lazy) or :meth:`install` (now).  Lookups are thread-safe.
    """

    def __init__(self, name: str = "base") -> None:
        self.name = name
        self.helpers: dict[int, Helper] = {}
        self.kfuncs: dict[str, Helper] = {}
        self.sections: list[SectionDef] = []
        self.prog_types: dict[str, _pt.ProgType] = {}
        self.struct_ops_members: dict[tuple[str, str], _pt.ProgType] = {}
        self.struct_ops_types: dict[str, AttachFn] = {}
        self.resolvers: list[Callable[[Any], _pt.ProgType | None]] = []
        self.designs: list[Design] = []
        self._pending: list[DesignRef] = []
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        pending = [r.module for r in self._pending]
        return (f"<Platform {self.name!r} designs={[d.name for d in self.designs]} "
                f"pending={pending}>")

    # ------------------------------------------------------------------ designs ---
    def add_design(self, module: str, *, kfuncs: Iterable[str] = (), helpers: Iterable[int] = (),
                   struct_ops: Iterable[str] = (), sections: Iterable[str] = ()) -> None:
        """Declare design ``module`` (imported on first need; see :class:`DesignRef`)."""
        self._pending.append(DesignRef(module, frozenset(kfuncs), frozenset(helpers),
                                       frozenset(struct_ops), frozenset(sections)))

    @property
    def pending(self) -> tuple[DesignRef, ...]:
        """Declared designs not imported yet."""
        return tuple(self._pending)

    def install(self, design: Design, ref: DesignRef | None = None) -> None:
        """Let ``design`` contribute now; with ``ref``, check it provides what ``ref`` says."""
        with self._lock:
            if design in self.designs:
                return
            before = (set(self.kfuncs), set(self.helpers), set(self.struct_ops_types),
                      {s.prefix for s in self.sections})
            design.contribute(self)
            self.designs.append(design)
            if ref is not None:
                added = (set(self.kfuncs) - before[0], set(self.helpers) - before[1],
                         set(self.struct_ops_types) - before[2],
                         {s.prefix for s in self.sections} - before[3])
                declared = (ref.kfuncs, ref.helpers, ref.struct_ops, ref.sections)
                for what, got, want in zip(("kfuncs", "helpers", "struct_ops", "sections"),
                                           added, declared):
                    if set(want) - got:
                        raise BpfLoadError(f"design {ref.module}: declared {what} "
                                           f"{sorted(set(want) - got)} but did not provide them")

    def _load(self, ref: DesignRef) -> None:
        with self._lock:
            if ref not in self._pending:
                return
            self._pending.remove(ref)
            module = importlib.import_module(ref.module)
            self.install(module.DESIGN, ref)

    def _load_where(self, pred: Callable[[DesignRef], bool]) -> bool:
        """Install the pending designs ``pred`` selects. Under the lock, so a caller that
        missed a name while another thread was installing its design waits for that
        install to finish (the caller then looks again)."""
        with self._lock:
            refs = [r for r in self._pending if pred(r)]
            for ref in refs:
                self._load(ref)
            return bool(refs)

    def load_all(self) -> None:
        """Import every declared design (for tools that list everything, e.g. disasm names)."""
        self._load_where(lambda r: True)

    # ------------------------------------------------------------- contributing ---
    def helper(self, helper_id: int, name: str, args: tuple[Arg, ...], ret: Ret = Ret.INTEGER,
               **proto_kw) -> Callable[[Callable[..., int]], Callable[..., int]]:
        """Decorator: ``fn(runtime, r1..r5) -> int`` becomes helper ``helper_id`` here."""

        def register(fn: Callable[..., int]) -> Callable[..., int]:
            self.add_helper(Helper(Proto(name, tuple(args), ret, **proto_kw), fn, helper_id))
            return fn

        return register

    def kfunc(self, name: str, args: tuple[Arg, ...], ret: Ret = Ret.INTEGER,
              **proto_kw) -> Callable[[Callable[..., int]], Callable[..., int]]:
        """Decorator: ``fn(runtime, r1..r5) -> int`` becomes kfunc ``name`` here."""

        def register(fn: Callable[..., int]) -> Callable[..., int]:
            self.add_kfunc(Helper(Proto(name, tuple(args), ret, **proto_kw), fn, None))
            return fn

        return register

    def add_helper(self, h: Helper) -> Helper:
        """Add a numbered helper; ValueError for a kfunc or an id added twice."""
        if h.helper_id is None:
            raise ValueError(f"helper {h.name!r} has no id (a kfunc? use add_kfunc)")
        if h.helper_id in self.helpers:
            raise ValueError(f"platform {self.name!r}: helper id {h.helper_id} added twice")
        self.helpers[h.helper_id] = h
        return h

    def add_kfunc(self, h: Helper) -> Helper:
        """Add a kfunc by name; ValueError if the name is taken."""
        if h.name in self.kfuncs:
            raise ValueError(f"platform {self.name!r}: kfunc {h.name!r} added twice")
        self.kfuncs[h.name] = h
        return h

    def add_prog_type(self, ptype: _pt.ProgType) -> _pt.ProgType:
        """Add (or replace) a program type by name; returns it."""
        self.prog_types[ptype.name] = ptype
        return ptype

    def add_section(self, prefix: str, ptype: _pt.ProgType) -> _pt.ProgType:
        """Programs in section ``prefix`` (``prefix/...``, ``prefix.s/...``) get ``ptype``;
        a later row with the same prefix replaces the earlier one."""
        self.sections[:] = [s for s in self.sections if s.prefix != prefix]
        self.sections.append(SectionDef(prefix, ptype))
        return self.add_prog_type(ptype)

    def add_struct_ops_member(self, type_name: str, member: str, arg_kinds,
                              ret_range: tuple[int, int] | None = None,
                              sleepable: bool | None = None,
                              name: str | None = None, ret_void: bool = False) -> _pt.ProgType:
        """The program type of ``type_name.member`` (r1 = u64 array of ``arg_kinds``);
        ``ret_void``: the member returns void, so R0 is not checked at exit."""
        pname = name or f"struct_ops:{type_name}.{member}"
        ptype = _pt.ProgType(pname, ctx="args",
                             layout=_pt.args_layout(f"{type_name}.{member}", list(arg_kinds)),
                             ret_range=ret_range, sleepable=sleepable, ret_void=ret_void)
        self.struct_ops_members[(type_name, member)] = ptype
        return self.add_prog_type(ptype)

    def add_struct_ops_type(self, type_name: str, attach: AttachFn) -> None:
        """``attach(obj, st_map) -> link`` attaches struct_ops maps of BTF type ``type_name``."""
        self.struct_ops_types[type_name] = attach

    def add_resolver(self, fn: Callable[[Any], _pt.ProgType | None]) -> None:
        """``fn(program) -> ProgType | None``, consulted before the section table."""
        if fn not in self.resolvers:
            self.resolvers.append(fn)

    # ------------------------------------------------------------------ lookups ---
    def get_helper(self, helper_id: int) -> Helper | None:
        """The helper ``helper_id`` (``call imm``), or None."""
        h = self.helpers.get(helper_id)
        if h is None:
            self._load_where(lambda r: helper_id in r.helpers)
            h = self.helpers.get(helper_id)
        return h if h is not None else _helpers.HELPERS.get(helper_id)

    def get_kfunc(self, name: str) -> Helper | None:
        """The kfunc ``name`` (an ``extern ... __ksym``), or None."""
        h = self.kfuncs.get(name)
        if h is None:
            self._load_where(lambda r: name in r.kfuncs)
            h = self.kfuncs.get(name)
        return h if h is not None else _helpers.KFUNCS.get(name)

    def helper_ids(self) -> list[int]:
        """Every helper id this platform has (designs imported first)."""
        self.load_all()
        return sorted(set(self.helpers) | set(_helpers.HELPERS))

    def helper_by_name(self, name: str) -> Helper | None:
        """A helper found by its name (for messages; imports every declared design)."""
        self.load_all()
        for table in (self.helpers, _helpers.HELPERS):
            for h in table.values():
                if h.name == name:
                    return h
        return None

    def get_prog_type(self, name: str) -> _pt.ProgType | None:
        """The program type ``name`` of this platform (or a globally registered one), or None."""
        return self.prog_types.get(name) or _pt.get_prog_type(name)

    def struct_ops_attach(self, type_name: str) -> AttachFn | None:
        """The attach function of struct_ops type ``type_name``, or None."""
        fn = self.struct_ops_types.get(type_name)
        if fn is None:
            self._load_where(lambda r: type_name in r.struct_ops)
            fn = self.struct_ops_types.get(type_name)
        return fn if fn is not None else _struct_ops.get_attach(type_name)

    def _struct_ops_type_names(self, program: Any) -> set[str]:
        """BTF type names a struct_ops program may belong to (from attach/section text)."""
        attach = getattr(program, "attach", "") or ""
        section = getattr(program, "section", "") or ""
        names = set()
        for text in (attach, section.split("/", 1)[1] if "/" in section else ""):
            for sep in (".", ":", "/"):
                if sep in text:
                    names.add(text.rsplit(sep, 1)[0])
        return names

    def _resolve(self, program: Any) -> _pt.ProgType:
        return _pt.resolve_prog_type(
            program,
            list(_pt._SECTION_TYPES) + [(s.prefix, s.prog_type) for s in self.sections],
            {**_pt._STRUCT_OPS, **self.struct_ops_members},
            {**_pt._BY_NAME, **self.prog_types},
            self.resolvers + _pt._RESOLVERS)

    def prog_type_for(self, program: Any) -> _pt.ProgType:
        """The :class:`ProgType` of ``program`` from its attach target, section or prog_type.

        Imports the designs that declare the program's section or struct_ops type on a
        miss. Raises :class:`ProgTypeError` when no design of this platform describes it.
        """
        try:
            return self._resolve(program)
        except ProgTypeError:
            section = getattr(program, "section", "") or ""
            with self._lock:    # (see _load_where: waits for installs in progress)
                if section.startswith("struct_ops"):
                    types = self._struct_ops_type_names(program)
                    if not self._load_where(lambda r: bool(r.struct_ops & types)):
                        # only a member name: any design with struct_ops may own it
                        self._load_where(lambda r: bool(r.struct_ops))
                else:
                    self._load_where(
                        lambda r: any(_pt._section_matches(section, p) for p in r.sections))
        return self._resolve(program)

    # --------------------------------------------------- the bridge for old callers ---
    @contextlib.contextmanager
    def active(self) -> Iterator["Platform"]:
        """Make this the platform that the module-level lookups
        (``helpers.get_helper``, ``progtypes.prog_type_for``, ...) answer from, in this
        thread/task, while the block runs.  Code that receives a platform uses it
        directly; this exists for callers that do not take one yet."""
        token = _helpers.ACTIVE_PLATFORM.set(self)
        try:
            yield self
        finally:
            _helpers.ACTIVE_PLATFORM.reset(token)


def base_platform(name: str = "base") -> Platform:
    """A platform of ``bpf/`` alone: base helpers and kfuncs, socket and syscall programs."""
    p = Platform(name)
    p.add_section("socket", _pt.SOCKET_FILTER)
    p.add_section("syscall", _pt.SYSCALL)
    return p


_default_factory: Callable[[], Platform] | None = None
_default: Platform | None = None
_default_lock = threading.Lock()


def set_default_platform(factory: Callable[[], Platform]) -> None:
    """Set how the default platform is built (``uringbpf/__init__.py`` passes
    :func:`uringbpf.platform.default_platform`: the composition root lives above bpf/)."""
    global _default_factory, _default
    with _default_lock:
        _default_factory = factory
        _default = None


def default_platform() -> Platform:
    """The platform ``BpfObject.load()`` uses when none is passed (built once), and the
    one the module-level lookups (``helpers.get_helper``...) answer from outside
    :meth:`Platform.active`."""
    global _default
    with _default_lock:
        if _default is None:
            _default = _default_factory() if _default_factory is not None else base_platform()
        return _default


_helpers.DEFAULT_PLATFORM.append(default_platform)
