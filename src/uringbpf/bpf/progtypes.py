"""Program types: what a program's context looks like and what it may return.

The verifier needs to know, for each program, what r1 (and for our data-buffer
programs r2) hold at entry, which context fields may be read or written, what a load
from the context yields (a scalar, or a pointer such as the ``struct io_ring_ctx *``
argument of a struct_ops member), the allowed return range and whether the program may
sleep.  Designs describe their attach points to a :class:`~uringbpf.bpf.platform.Platform`
(``add_section``, ``add_struct_ops_member``); the ``register_*`` functions below fill the
base registries every platform falls back to (socket and syscall, and test types).
:func:`resolve_prog_type` picks the type of a program from its section name and, for
struct_ops, from the member it is bound to.

Three context shapes exist:

``"struct"``
    r1 points to a struct (:class:`Layout`) whose :class:`Field` s say what may be read
    or written.  Used for e.g. the 2021 RFC's ``struct io_uring_bpf_ctx``.
``"args"``
    struct_ops style: r1 points to an array of u64 arguments (``BPF_PROG`` unpacks
    ``ctx[0]``, ``ctx[1]``); each argument has a :class:`ValueKind` (scalar, trusted
    pointer to an opaque kernel struct, pointer to a small struct with its own fields,
    memory of a known size).
``"buffer"``
    ``uringbpf run`` and socket filters here: r1 points to a data buffer whose length
    is only known at run time and r2 holds that length.  The verifier treats the
    buffer like the kernel treats packet data: an access at ``r1 + off`` of ``size``
    bytes is allowed only if ``off + size`` is at most a lower bound of the length,
    learnt from comparisons of r2 (or a copy of it) against constants, or given by the
    type's ``buffer_min_size``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from . import helpers as _helpers

SCALAR = "scalar"
TRUSTED = "trusted"      # pointer to an opaque kernel object; may be passed to kfuncs, not read
STRUCT = "struct"        # pointer to a Layout with per-field permissions
MEM = "mem"              # pointer to `size` bytes of plain memory
BUFFER = "buffer"        # pointer to the run-time data buffer


@dataclass(frozen=True)
class ValueKind:
    """What a context load yields (or what a struct_ops argument is)."""

    kind: str = SCALAR
    name: str = ""                       # struct name for TRUSTED / STRUCT
    layout: "Layout | None" = None       # for STRUCT
    size: int = 0                        # for MEM
    nullable: bool = False
    writable: bool = True                # for MEM

    @staticmethod
    def scalar() -> "ValueKind":
        """A plain integer argument."""
        return ValueKind(SCALAR)

    @staticmethod
    def trusted(struct_name: str, nullable: bool = False) -> "ValueKind":
        """A trusted pointer to an opaque kernel ``struct_name`` (passed to kfuncs, not read)."""
        return ValueKind(TRUSTED, struct_name, nullable=nullable)

    @staticmethod
    def struct(layout: "Layout", nullable: bool = False) -> "ValueKind":
        """A pointer to a struct described by ``layout`` (field permissions apply)."""
        return ValueKind(STRUCT, layout.name, layout, nullable=nullable)

    @staticmethod
    def mem(size: int, nullable: bool = False, writable: bool = True) -> "ValueKind":
        """A pointer to ``size`` bytes of plain memory (read-only unless ``writable``)."""
        return ValueKind(MEM, size=size, nullable=nullable, writable=writable)


@dataclass(frozen=True)
class Field:
    """One field of a context struct.

    Scalar fields may be read with any narrower load that stays inside the field
    (clang emits those); pointer fields must be loaded whole, as 8 bytes.
    Only scalar fields may be writable.
    """

    name: str
    offset: int
    size: int
    read: bool = True
    write: bool = False
    value: ValueKind = field(default_factory=ValueKind)


@dataclass(frozen=True, eq=False)
class Layout:
    """A context struct: its size and fields.  ``kind`` is "struct" or "args"."""

    name: str
    size: int
    fields: tuple[Field, ...] = ()
    kind: str = "struct"
    #: every access must be one whole field, no narrower load: for program types whose
    #: kernel ``is_valid_access`` compares offset and size exactly (the 2021 RFC's)
    exact: bool = False

    def field_at(self, offset: int, size: int) -> Field | None:
        """The field wholly containing ``size`` bytes at ``offset`` (with ``exact``: the
        field that is exactly those bytes), or None."""
        for f in self.fields:
            if self.exact:
                if f.offset == offset and f.size == size:
                    return f
            elif f.offset <= offset and offset + size <= f.offset + f.size:
                return f
        return None


def args_layout(name: str, args: list[ValueKind] | tuple[ValueKind, ...]) -> Layout:
    """The u64 argument array a struct_ops member receives in r1."""
    fields = tuple(Field(f"arg{i}", 8 * i, 8, True, False, kind) for i, kind in enumerate(args))
    return Layout(name, 8 * len(fields), fields, kind="args")


@dataclass(frozen=True, eq=False)
class ProgType:
    """Everything the verifier must know about one attach point."""

    name: str
    ctx: str = "struct"                  # "struct" | "args" | "buffer" | "none"
    layout: Layout | None = None         # for "struct" and "args"
    ret_range: tuple[int, int] | None = None   # inclusive signed range of r0 at exit; None: any
    sleepable: bool | None = None        # True: always sleepable; None: from the section (".s")
    buffer_min_size: int = 0             # for "buffer": bytes always present
    buffer_writable: bool = True
    groups: frozenset[str] = frozenset()  # extra names Proto.prog_types may list
    # struct_ops members declared `void f(...)`: the kernel's check_return_code returns
    # before looking at R0 for them (IORING_OP_BPF's fail_fn/cleanup_fn)
    ret_void: bool = False


# A run-time data buffer in r1, its length in r2 (see the module docstring).
SOCKET_FILTER = ProgType("socket_filter", ctx="buffer", groups=frozenset({"socket"}))
SYSCALL = ProgType("syscall", ctx="buffer", sleepable=None, groups=frozenset({"syscall"}))

_SECTION_TYPES: list[tuple[str, ProgType]] = []
_STRUCT_OPS: dict[tuple[str, str], ProgType] = {}
_BY_NAME: dict[str, ProgType] = {}
_RESOLVERS: list[Callable] = []


def register_prog_type(ptype: ProgType) -> ProgType:
    """Make ``ptype`` known by name (get_prog_type, Program.prog_type); returns it."""
    _BY_NAME[ptype.name] = ptype
    return ptype


def register_section_type(prefix: str, ptype: ProgType) -> ProgType:
    """Programs whose section is ``prefix`` or starts with ``prefix`` + "/" (or ".s/") get ``ptype``.

    Later registrations win over earlier ones with the same prefix.
    """
    _SECTION_TYPES[:] = [(p, t) for p, t in _SECTION_TYPES if p != prefix]
    _SECTION_TYPES.append((prefix, ptype))
    register_prog_type(ptype)
    return ptype


def register_struct_ops_member(type_name: str, member: str, arg_kinds, ret_range=None,
                               sleepable: bool | None = None, name: str | None = None) -> ProgType:
    """Describe the program bound to ``type_name.member`` (e.g. io_uring_bpf_ops.loop_step).

    ``arg_kinds`` are :class:`ValueKind` s of the member's arguments, in order; the
    program gets r1 = pointer to the u64 array of them.
    """
    pname = name or f"struct_ops:{type_name}.{member}"
    ptype = ProgType(pname, ctx="args", layout=args_layout(f"{type_name}.{member}", list(arg_kinds)),
                     ret_range=ret_range, sleepable=sleepable)
    _STRUCT_OPS[(type_name, member)] = ptype
    register_prog_type(ptype)
    return ptype


def register_resolver(fn: Callable) -> None:
    """``fn(program) -> ProgType | None`` consulted first (designs with unusual attach rules)."""
    if fn not in _RESOLVERS:
        _RESOLVERS.append(fn)


def get_prog_type(name: str) -> ProgType | None:
    """The registered program type called ``name``, or None."""
    return _BY_NAME.get(name)


register_section_type("socket", SOCKET_FILTER)
register_section_type("syscall", SYSCALL)


from ..errors import ProgTypeError  # noqa: E402,F401  (defined in uringbpf.errors)


def _section_matches(section: str, prefix: str) -> bool:
    if section == prefix:
        return True
    for sep in ("/", ".s/", ".s"):
        if section.startswith(prefix + sep):
            return True
    return False


def _struct_ops_member(program, members: dict) -> ProgType | None:
    attach = getattr(program, "attach", "") or ""
    section = getattr(program, "section", "") or ""
    candidates = []
    for text in (attach, section.split("/", 1)[1] if "/" in section else ""):
        if not text:
            continue
        for sep in (".", ":", "/"):
            if sep in text:
                t, m = text.rsplit(sep, 1)
                if (t, m) in members:
                    return members[(t, m)]
        candidates.append(text)
    for text in candidates:
        matches = [pt for (t, m), pt in members.items() if m == text]
        if len(matches) == 1:
            return matches[0]
    return None


def resolve_prog_type(program, sections: list[tuple[str, ProgType]],
                      members: dict[tuple[str, str], ProgType], by_name: dict[str, ProgType],
                      resolvers: list[Callable]) -> ProgType:
    """The :class:`ProgType` of ``program`` from these tables (resolvers, then struct_ops
    member, section, prog_type name); raises :class:`ProgTypeError`.  Later ``sections``
    rows win over earlier ones."""
    for fn in resolvers:
        pt = fn(program)
        if pt is not None:
            return pt
    section = getattr(program, "section", "") or ""
    if section.startswith("struct_ops"):
        pt = _struct_ops_member(program, members)
        if pt is None:
            raise ProgTypeError(
                f"program {program.name!r}: no struct_ops member registered for "
                f"attach={getattr(program, 'attach', '')!r} section={section!r} "
                "(its design must add it with Platform.add_struct_ops_member)")
        return pt
    for prefix, pt in reversed(sections):
        if _section_matches(section, prefix):
            return pt
    if not section:  # raw bytecode (uringbpf run, tests): the data-buffer convention
        return by_name.get(getattr(program, "prog_type", "") or "") or SOCKET_FILTER
    name = getattr(program, "prog_type", "") or ""
    if name != SOCKET_FILTER.name and name in by_name:  # an explicit, registered type
        return by_name[name]
    raise ProgTypeError(f"program {program.name!r}: unknown section {section!r}")


def prog_type_for(program) -> ProgType:
    """The :class:`ProgType` of ``program`` on :func:`~uringbpf.bpf.helpers.current_platform`
    (the active one, else the default).  Code that holds a
    :class:`~uringbpf.bpf.platform.Platform` calls its ``prog_type_for`` instead."""
    return _helpers.current_platform().prog_type_for(program)


def is_sleepable(program, ptype: ProgType) -> bool:
    """True if ``program`` of type ``ptype`` may sleep (the type's rule, else a ``.s`` section)."""
    if ptype.sleepable is not None:
        return ptype.sleepable
    if getattr(program, "sleepable", False):
        return True
    section = getattr(program, "section", "") or ""
    head = section.split("/", 1)[0]
    return head.endswith(".s")
