"""struct_ops maps and the registry of designs that can attach them.

A struct_ops object is a C variable in ``.struct_ops`` or ``.struct_ops.link`` whose type is
the ops struct (``struct io_uring_bpf_ops``...) and whose function-pointer members are bound,
by ``R_BPF_64_ABS64`` relocations, to programs of the object.  :class:`StructOpsMap` keeps
its bytes, BTF layout and member -> program bindings; fields are settable before
``load()`` (``obj.struct_ops.ops.ring_fd = fd``) and a function-pointer field holds a
:class:`~uringbpf.bpf.object.LoadedProgram` after it.

Designs add an attach function per ops type name to a platform
(``Platform.add_struct_ops_type``); ``obj.attach_struct_ops(name)`` asks the object's
platform for the map's BTF type name. :func:`register` fills the base registry every
platform falls back to (used by tests).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from . import btf as _btf
from .elf import BpfLoadError


class Link(Protocol):
    """What attaching a struct_ops returns: something to ``destroy()``."""
    def destroy(self) -> None:
        """Detach (idempotent)."""


AttachFn = Callable[[Any, "StructOpsMap"], Any]
_REGISTRY: dict[str, AttachFn] = {}


def register(type_name: str, attach_fn: AttachFn) -> None:
    """Let ``attach_fn(obj, st_map) -> link`` attach struct_ops maps of ``type_name``."""
    _REGISTRY[type_name] = attach_fn


def unregister(type_name: str) -> None:
    """Forget the design registered for struct ``type_name`` (no-op if none)."""
    _REGISTRY.pop(type_name, None)


def get_attach(type_name: str) -> AttachFn | None:
    """The attach function of ``type_name`` in the base registry (tests' types)."""
    return _REGISTRY.get(type_name)


def attach(obj: Any, st_map: "StructOpsMap", platform: Any) -> Any:
    """Attach ``st_map`` with the function ``platform`` has for its BTF type."""
    fn = platform.struct_ops_attach(st_map.type_name)
    if fn is None:
        known = sorted(set(_REGISTRY) | set(platform.struct_ops_types))
        raise BpfLoadError(f"struct_ops {st_map.name!r}: no design of platform "
                           f"{platform.name!r} provides struct_ops type {st_map.type_name!r} "
                           f"(known: {', '.join(known) or 'none'})")
    return fn(obj, st_map)


class StructOpsMap:
    """One struct_ops variable: its bytes, layout and bound programs."""

    def __init__(self, name: str, section: str, btf: _btf.Btf, type_id: int, data: bytes):
        t = btf.resolve(type_id)
        if t.kind != _btf.KIND_STRUCT:
            raise BpfLoadError(f"struct_ops {name!r} in {section}: type is {t.kind_name}, not a struct")
        object.__setattr__(self, "_init", True)
        self.name = name
        self.section = section
        self.is_link = section == ".struct_ops.link"
        self.btf = btf
        self.type_id = t.id
        self.type_name = t.name
        self.data = bytearray(data)
        self.programs: dict[str, Any] = {}  # member -> LoadedProgram
        self.loaded = False
        self.link = None
        self._members = {m.name: m for m in t.members if m.name}
        object.__setattr__(self, "_init", False)

    # --- layout ---------------------------------------------------------------------
    @property
    def member_names(self) -> list[str]:
        """The struct's member names, in order."""
        return list(self._members)

    def member(self, name: str) -> _btf.Member:
        """The BTF member ``name``; AttributeError listing the members if absent."""
        m = self._members.get(name)
        if m is None:
            raise AttributeError(f"struct {self.type_name} has no member {name!r} "
                                 f"(members: {', '.join(self._members)})")
        return m

    def is_func_member(self, name: str) -> bool:
        """True if member ``name`` is a callback (a function pointer slot)."""
        return self.btf.is_func_ptr(self.member(name).type)

    def field_offset(self, name: str) -> int:
        """Byte offset of member ``name``."""
        return self.member(name).offset

    def field_size(self, name: str) -> int:
        """Size in bytes of member ``name``."""
        return self.btf.size_of(self.member(name).type)

    # --- values ----------------------------------------------------------------------
    def get(self, name: str) -> Any:
        """Member ``name``: the program bound to a callback, an int for scalars, raw bytes
        otherwise."""
        m = self.member(name)
        if self.btf.is_func_ptr(m.type):
            return self.programs.get(name)
        size = self.btf.size_of(m.type)
        raw = bytes(self.data[m.offset:m.offset + size])
        t = self.btf.resolve(m.type)
        if t.kind in (_btf.KIND_INT, _btf.KIND_ENUM, _btf.KIND_ENUM64, _btf.KIND_PTR):
            signed = t.kind == _btf.KIND_INT and bool(t.int_encoding & _btf.INT_SIGNED)
            if t.kind == _btf.KIND_ENUM:
                signed = True
            return int.from_bytes(raw, "little", signed=signed)
        return raw

    def set(self, name: str, value: Any) -> None:
        """Set member ``name`` (a program for callbacks, an int or bytes for data) before load().
        """
        if self.loaded:
            raise BpfLoadError(f"struct_ops {self.name!r}: field {name!r} cannot change after load()")
        m = self.member(name)
        if self.btf.is_func_ptr(m.type):
            if value is None:
                self.programs.pop(name, None)
            else:
                self.programs[name] = value  # resolved (name -> program) by the object
            return
        size = self.btf.size_of(m.type)
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int):
            if m.bitfield_size:
                raise BpfLoadError(f"struct_ops {self.name!r}: bitfield {name!r} is not settable")
            raw = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        else:
            raw = bytes(value)
            if len(raw) > size:
                raise ValueError(f"struct_ops {self.name!r}.{name}: {len(raw)} bytes > field size {size}")
            raw = raw.ljust(size, b"\0")
        self.data[m.offset:m.offset + size] = raw

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            members = object.__getattribute__(self, "_members")
        except AttributeError:
            raise AttributeError(name) from None
        if name in members:
            return self.get(name)
        raise AttributeError(f"struct_ops {self.name!r} ({self.type_name}) has no field {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or self.__dict__.get("_init", True) or name in self.__dict__ \
                or name not in self.__dict__.get("_members", {}):
            object.__setattr__(self, name, value)
            return
        self.set(name, value)

    def __repr__(self) -> str:
        progs = {k: getattr(v, "name", v) for k, v in self.programs.items()}
        return f"<StructOpsMap {self.name!r} struct {self.type_name} programs={progs}>"


class StructOpsNamespace:
    """``obj.struct_ops.NAME`` access to the object's struct_ops maps."""

    def __init__(self, maps: dict[str, StructOpsMap]):
        object.__setattr__(self, "_maps", maps)

    def __getattr__(self, name: str) -> StructOpsMap:
        maps = object.__getattribute__(self, "_maps")
        if name in maps:
            return maps[name]
        raise AttributeError(f"no struct_ops map {name!r} (have: {', '.join(maps) or 'none'})")

    def __getitem__(self, name: str) -> StructOpsMap:
        return self._maps[name]

    def __iter__(self):
        return iter(self._maps.values())

    def __len__(self) -> int:
        return len(self._maps)

    def __contains__(self, name: str) -> bool:
        return name in self._maps

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("struct_ops maps cannot be replaced; set their fields instead")
