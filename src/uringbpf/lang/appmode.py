"""The application side of a program: the same function run as Python.

Pointers become :class:`Ptr` (a memoryview over the very memory the compiled program
would reach, an offset and an element type); reads give :mod:`~uringbpf.lang.types`
integers, writes wrap to the field's width.  An access outside the memory raises
:class:`LangMemoryError` (the compiled program would be refused by the verifier or
stopped by the engine there).
"""

from __future__ import annotations

import ctypes
from typing import Any

from . import types as T


class LangMemoryError(IndexError):
    """An application-side access outside the memory a pointer covers."""


def _elem_size(elem: Any) -> int:
    if isinstance(elem, T.Opaque):
        raise TypeError(f"{elem.name} is opaque")
    return T.sizeof(elem)


class Ptr:
    """A pointer in the application run: ``buf`` (None for NULL), byte ``off``, ``elem``."""

    __slots__ = ("buf", "off", "elem", "obj")

    def __init__(self, buf: memoryview | None, off: int, elem: Any, obj: Any = None):
        object.__setattr__(self, "buf", buf)
        object.__setattr__(self, "off", off)
        object.__setattr__(self, "elem", elem)
        object.__setattr__(self, "obj", obj)     # opaque objects: what the kfuncs act on

    # identity --------------------------------------------------------------------------
    def __bool__(self) -> bool:
        return self.buf is not None or self.obj is not None

    def __eq__(self, other: Any) -> bool:
        if other is None or (isinstance(other, int) and other == 0):
            return not self
        if not isinstance(other, Ptr):
            return NotImplemented
        return self.buf is other.buf and self.off == other.off and self.obj is other.obj

    def __ne__(self, other: Any) -> bool:
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if not self:
            return f"{T.ptr[self.elem]!r}(NULL)"
        return f"{T.ptr[self.elem]!r}(+{self.off})"

    def retype(self, elem: Any) -> "Ptr":
        return Ptr(self.buf, self.off, elem, self.obj)

    # arithmetic ------------------------------------------------------------------------
    def __add__(self, n: Any) -> "Ptr":
        if not isinstance(n, int):
            return NotImplemented
        self._need()
        return Ptr(self.buf, self.off + int(n) * _elem_size(self.elem), self.elem)

    def __sub__(self, n: Any) -> "Ptr":
        if not isinstance(n, int):
            return NotImplemented
        return self + (-int(n))

    # memory ----------------------------------------------------------------------------
    def _need(self) -> None:
        if self.buf is None:
            raise LangMemoryError("NULL pointer dereference")

    def _span(self, off: int, size: int) -> memoryview:
        self._need()
        if off < 0 or off + size > len(self.buf):
            raise LangMemoryError(f"access of {size} bytes at offset {off} outside the "
                                  f"{len(self.buf)}-byte memory this pointer covers")
        return self.buf[off:off + size]

    def _read(self, off: int, kind: Any) -> Any:
        if isinstance(kind, type) and issubclass(kind, T.FixedInt):
            raw = self._span(off, kind.BITS // 8)
            return kind(int.from_bytes(raw, "little", signed=kind.SIGNED))
        if isinstance(kind, tuple):
            self._span(off, T.sizeof(kind))
            return Ptr(self.buf, off, kind[1])
        self._span(off, T.sizeof(kind))
        return Ptr(self.buf, off, kind)

    def _write(self, off: int, kind: Any, value: Any) -> None:
        if not (isinstance(kind, type) and issubclass(kind, T.FixedInt)):
            raise TypeError(f"cannot assign to a {T.kind_name(kind)}")
        if isinstance(value, Ptr):
            raise TypeError("programs cannot store pointers")
        v = kind(value)
        self._span(off, kind.BITS // 8)[:] = int(v).to_bytes(kind.BITS // 8, "little", signed=kind.SIGNED)

    def __getitem__(self, i: Any) -> Any:
        return self._read(self.off + int(i) * _elem_size(self.elem), self.elem)

    def __setitem__(self, i: Any, value: Any) -> None:
        self._write(self.off + int(i) * _elem_size(self.elem), self.elem, value)

    def _field(self, name: str) -> tuple[int, Any]:
        elem = self.elem
        if not (isinstance(elem, type) and issubclass(elem, (ctypes.Structure, ctypes.Union))):
            raise AttributeError(f"{self!r} points to no structure (no field {name!r})")
        fields = T.struct_fields(elem)
        if name not in fields:
            raise AttributeError(f"{elem.__name__} has no field {name!r}")
        off, kind = fields[name]
        return self.off + off, kind

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        off, kind = self._field(name)
        return self._read(off, kind)

    def __setattr__(self, name: str, value: Any) -> None:
        off, kind = self._field(name)
        self._write(off, kind, value)

    def zero(self) -> None:
        self._span(self.off, _elem_size(self.elem))[:] = bytes(_elem_size(self.elem))


def memory_ptr(addr: int, size: int, elem: Any = T.u8) -> Ptr:
    """A :class:`Ptr` over ``size`` bytes of native memory at ``addr`` (ring regions...)."""
    mv = memoryview((ctypes.c_char * size).from_address(addr)).cast("B")
    return Ptr(mv, 0, elem)


def buffer_ptr(buf: bytearray | memoryview, elem: Any = T.u8) -> Ptr:
    return Ptr(memoryview(buf).cast("B"), 0, elem)


def opaque_ptr(kind: T.Opaque, obj: Any) -> Ptr:
    return Ptr(None, 0, kind, obj)


def zero(p: Ptr) -> None:
    """``zero(p)``: clear the ``sizeof(*p)`` bytes ``p`` points to (``memset(p, 0, ...)``)."""
    p.zero()


def sizeof(t: Any) -> int:
    """``sizeof(T)`` of an int type or a ctypes structure."""
    return T.sizeof(t)
