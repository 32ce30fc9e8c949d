"""Value types shared by both ways a ``uringbpf.lang`` program runs.

The same classes give the compiler its types and give the Python run its values:
``u32(x)`` in a program is a conversion the compiler lowers to ``trunc``/``zext``/``sext``,
and in the application it returns a :class:`u32`, an ``int`` whose arithmetic wraps
exactly as the compiled code does.  One rule (:func:`common`) decides the type of every
mixed operation for both, so the two runs cannot drift apart:

* same type: that type;  different widths: the wider one;  same width, different
  signedness: the unsigned one (C's usual arithmetic conversions, without C's
  promotion of narrow types to ``int``: ``u8 + u8`` is a ``u8``);
* a plain Python ``int`` (a literal, or a local first assigned one) takes the other
  operand's type; two plain ints stay plain (64-bit signed in compiled code);
* ``//`` and ``%`` floor as in Python on signed types too (not C's truncation; the
  compiled code builds it from unsigned division, BPF v3 has no signed one); a typed
  x // 0 is 0 and x % 0 is x, as BPF defines them;  shift counts are taken modulo the width.
"""

from __future__ import annotations

import ctypes
from typing import Any


class FixedInt(int):
    """Base of u8..u64 / s8..s64: an ``int`` that wraps at ``BITS`` bits."""

    BITS = 64
    SIGNED = False
    __slots__ = ()

    MASK = (1 << 64) - 1
    HALF = 1 << 63

    def __new__(cls, value: Any = 0) -> "FixedInt":
        if cls is FixedInt:
            raise TypeError("use a concrete width: u8..u64, s8..s64")
        v = int(value) & cls.MASK
        if cls.SIGNED and v >= cls.HALF:
            v -= cls.MASK + 1
        return int.__new__(cls, v)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self)})"

    # --- arithmetic -------------------------------------------------------------------
    def _bin(self, other: Any, op, reflected: bool = False):
        to = type(other)
        if to is type(self) or to is int or to is bool:
            # +, -, *, &, |, ^ commute with reduction modulo 2**BITS: wrap once, at the end
            a, b = int(self), int(other)
            return type(self)(op(b, a) if reflected else op(a, b))
        if not isinstance(other, int):
            return NotImplemented
        t = common(type(self), to)
        a, b = t(self), t(other)
        if reflected:
            a, b = b, a
        return t(op(int(a), int(b)))

    def __add__(self, o): return self._bin(o, int.__add__)
    def __radd__(self, o): return self._bin(o, int.__add__, True)
    def __sub__(self, o): return self._bin(o, int.__sub__)
    def __rsub__(self, o): return self._bin(o, int.__sub__, True)
    def __mul__(self, o): return self._bin(o, int.__mul__)
    def __rmul__(self, o): return self._bin(o, int.__mul__, True)
    def __and__(self, o): return self._bin(o, int.__and__)
    def __rand__(self, o): return self._bin(o, int.__and__, True)
    def __or__(self, o): return self._bin(o, int.__or__)
    def __ror__(self, o): return self._bin(o, int.__or__, True)
    def __xor__(self, o): return self._bin(o, int.__xor__)
    def __rxor__(self, o): return self._bin(o, int.__xor__, True)

    def _div(self, other: Any, mod: bool, reflected: bool = False):
        if not isinstance(other, int):
            return NotImplemented
        # Python's floor division and modulo, wrapped to the width; a zero divisor gives
        # BPF's answers (the compiled code does the same: compiler.signed_divmod)
        t = common(type(self), type(other))
        a, b = int(t(self)), int(t(other))
        if reflected:
            a, b = b, a
        if b == 0:
            return t(a if mod else 0)
        return t(a % b if mod else a // b)

    def __floordiv__(self, o): return self._div(o, False)
    def __rfloordiv__(self, o): return self._div(o, False, True)
    def __mod__(self, o): return self._div(o, True)
    def __rmod__(self, o): return self._div(o, True, True)

    def __truediv__(self, o):
        raise TypeError("/ is not integer division: use //")

    __rtruediv__ = __truediv__

    def __lshift__(self, o):
        if not isinstance(o, int):
            return NotImplemented
        t = type(self)
        return t(int(self) << (int(o) & (t.BITS - 1)))

    def __rshift__(self, o):
        if not isinstance(o, int):
            return NotImplemented
        t = type(self)
        return t(int(self) >> (int(o) & (t.BITS - 1)))   # arithmetic for signed, as in C/BPF

    def __rlshift__(self, o):
        if not isinstance(o, int):
            return NotImplemented
        if isinstance(o, FixedInt):
            return o.__lshift__(self)
        return int(o) << (int(self) & 63)

    def __rrshift__(self, o):
        if not isinstance(o, int):
            return NotImplemented
        if isinstance(o, FixedInt):
            return o.__rshift__(self)
        return int(o) >> (int(self) & 63)

    def __neg__(self): return type(self)(-int(self))
    def __pos__(self): return self
    def __invert__(self): return type(self)(~int(self))
    # abs() keeps the type and wraps (abs(s32(-2**31)) is itself), as the compiled code
    def __abs__(self): return type(self)(abs(int(self)))

    # --- comparisons: both sides converted to the common type first ---------------------
    def _cmp(self, other: Any, op):
        if type(other) is type(self):
            return op(int(self), int(other))
        if not isinstance(other, int):
            return NotImplemented
        t = common(type(self), type(other))
        return op(int(t(self)), int(t(other)))

    def __eq__(self, o): return self._cmp(o, int.__eq__)
    def __ne__(self, o): return self._cmp(o, int.__ne__)
    def __lt__(self, o): return self._cmp(o, int.__lt__)
    def __le__(self, o): return self._cmp(o, int.__le__)
    def __gt__(self, o): return self._cmp(o, int.__gt__)
    def __ge__(self, o): return self._cmp(o, int.__ge__)
    __hash__ = int.__hash__


def _make(name: str, bits: int, signed: bool) -> type:
    return type(name, (FixedInt,), {"BITS": bits, "SIGNED": signed, "__slots__": (),
                                     "MASK": (1 << bits) - 1, "HALF": 1 << (bits - 1),
                                     "__doc__": f"{'signed' if signed else 'unsigned'} {bits}-bit integer "
                                                "with C wrap-around"})


u8 = _make("u8", 8, False)
u16 = _make("u16", 16, False)
u32 = _make("u32", 32, False)
u64 = _make("u64", 64, False)
s8 = _make("s8", 8, True)
s16 = _make("s16", 16, True)
s32 = _make("s32", 32, True)
s64 = _make("s64", 64, True)
INT_TYPES: dict[str, type] = {t.__name__: t for t in (u8, u16, u32, u64, s8, s16, s32, s64)}
_BY_KEY = {(t.BITS, t.SIGNED): t for t in INT_TYPES.values()}


def int_type(bits: int, signed: bool) -> type:
    """The integer type of ``bits`` bits and signedness (u8...s64)."""
    return _BY_KEY[(bits, signed)]


def common(a: type, b: type) -> type:
    """The result type of a binary operation between values of types ``a`` and ``b``.

    ``int`` (and ``bool``) stand for a plain Python int: it takes the other side's type.
    """
    fa = isinstance(a, type) and issubclass(a, FixedInt)
    fb = isinstance(b, type) and issubclass(b, FixedInt)
    if not fa and not fb:
        return s64
    if not fb:
        return a
    if not fa:
        return b
    if a is b:
        return a
    if a.BITS != b.BITS:
        return a if a.BITS > b.BITS else b
    return a if not a.SIGNED else b


# --- ctypes field types -> our types ------------------------------------------------------
_CTYPE_INT = {
    ctypes.c_uint8: u8, ctypes.c_uint16: u16, ctypes.c_uint32: u32, ctypes.c_uint64: u64,
    ctypes.c_int8: s8, ctypes.c_int16: s16, ctypes.c_int32: s32, ctypes.c_int64: s64,
    ctypes.c_char: u8, ctypes.c_bool: u8, ctypes.c_void_p: u64,
}


def ctype_kind(ct: Any) -> Any:
    """What a ctypes field type is for the language: an int class, a struct class, or
    ``("array", elem_kind, length)``."""
    if ct in _CTYPE_INT:
        return _CTYPE_INT[ct]
    if isinstance(ct, type) and issubclass(ct, ctypes.Array):
        return ("array", ctype_kind(ct._type_), ct._length_)
    if isinstance(ct, type) and issubclass(ct, (ctypes.Structure, ctypes.Union)):
        return ct
    if isinstance(ct, type) and issubclass(ct, ctypes._Pointer):
        return u64
    # c_int/c_uint/c_long... are aliases of the fixed ones on this ABI
    for base, t in _CTYPE_INT.items():
        if ctypes.sizeof(ct) == ctypes.sizeof(base) and getattr(ct, "_type_", None) == getattr(base, "_type_", None):
            return t
    raise TypeError(f"ctypes type {ct!r} has no language equivalent")


_FIELDS_CACHE: dict[type, dict[str, tuple[int, Any]]] = {}


def struct_fields(st: type) -> dict[str, tuple[int, Any]]:
    """``name -> (byte offset, kind)`` of a ctypes Structure/Union, anonymous members
    flattened as C does."""
    cached = _FIELDS_CACHE.get(st)
    if cached is not None:
        return cached
    out: dict[str, tuple[int, Any]] = {}
    anon = set(getattr(st, "_anonymous_", ()))
    for entry in st._fields_:
        name, ct = entry[0], entry[1]
        if len(entry) > 2:
            continue   # bit fields are not addressable
        off = getattr(st, name).offset
        if name in anon:
            for sub, (soff, kind) in struct_fields(ct).items():
                out.setdefault(sub, (off + soff, kind))
            continue
        out[name] = (off, ctype_kind(ct))
    _FIELDS_CACHE[st] = out
    return out


def sizeof(kind: Any) -> int:
    """Size in bytes of an int class, a ctypes struct, or an array kind."""
    if isinstance(kind, type) and issubclass(kind, FixedInt):
        return kind.BITS // 8
    if isinstance(kind, tuple) and kind[0] == "array":
        return sizeof(kind[1]) * kind[2]
    if isinstance(kind, PtrType):
        return 8
    return ctypes.sizeof(kind)


def alignof(kind: Any) -> int:
    """Alignment in bytes of a type."""
    if isinstance(kind, type) and issubclass(kind, FixedInt):
        return kind.BITS // 8
    if isinstance(kind, tuple) and kind[0] == "array":
        return alignof(kind[1])
    if isinstance(kind, PtrType):
        return 8
    return ctypes.alignment(kind)


class Opaque:
    """A kernel object programs only pass around (``struct io_ring_ctx *``); ``name`` is its
    C struct name, which the object's BTF gives pointers to it (libbpf matches kfunc
    prototypes against the kernel's by it)."""

    def __init__(self, name: str, size: int = 0):
        self.name = name
        self.size = size

    def __repr__(self) -> str:
        return f"Opaque({self.name})"


class PtrType:
    """``ptr[T]``: the type of a pointer to ``T``; calling it converts (casts) a pointer."""

    _cache: dict[Any, "PtrType"] = {}
    #: LLVM address space: 0 for kernel/ring memory, 1 for the arena (C's ``__arena``)
    space = 0

    def __init__(self, elem: Any):
        self.elem = elem

    def __repr__(self) -> str:
        e = self.elem
        return f"ptr[{getattr(e, '__name__', None) or getattr(e, 'name', None) or e}]"

    def __call__(self, value: Any) -> Any:
        from .appmode import Ptr  # why: appmode is built on this module (a top import would be a cycle); only calling ptr[T] on an app-mode value needs it
        if isinstance(value, Ptr):
            return value._to_generic(self.elem)
        if isinstance(value, int) and int(value) == 0:
            return Ptr(None, 0, self.elem)
        raise TypeError(f"cannot make a {self!r} from {value!r} in the application")


class _PtrFactory:
    """``ptr[T]`` (``arena_ptr[T]``): one type object per element type."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __getitem__(self, elem: Any) -> PtrType:
        t = self.cls._cache.get(elem)
        if t is None:
            t = self.cls._cache[elem] = self.cls(elem)
        return t


ptr = _PtrFactory(PtrType)


class ArenaPtrType(PtrType):
    """``arena_ptr[T]``: a pointer into the program's arena map, C's ``T __arena *``
    (LLVM address space 1, as libbpf's ``bpf_arena_common.h`` declares it).

    Compiled, it is what clang makes of ``__arena`` pointers: loads and stores go through
    ``BPF_ADDR_SPACE_CAST`` (LLVM inserts it), the value is the arena address the
    application also sees, so it converts to and from ``u64`` (to store it in arena memory,
    as C stores ``__arena`` pointers), and ``ptr[T](p)`` / ``arena_ptr[T](q)`` cast between
    the address spaces."""

    _cache: dict[Any, "ArenaPtrType"] = {}
    space = 1

    def __repr__(self) -> str:
        return "arena_" + super().__repr__()

    #: ``(value, elem) -> Ptr``: the application-side cast, set by :mod:`.appmode` (which
    #: is built on this module, so this module cannot import it)
    app_cast: Any = None

    def __call__(self, value: Any) -> Any:
        return ArenaPtrType.app_cast(value, self.elem)


arena_ptr = _PtrFactory(ArenaPtrType)


class array:
    """``array(u64, 8)``: the annotation of a global array (``slot_pos: array(u64, 8)``)."""

    def __init__(self, elem: Any, length: int):
        self.kind = ("array", elem, int(length))


class volatile:
    """``nsqe: volatile(u32)``: a global the compiled code reloads at every use (C's
    ``volatile``), e.g. so the verifier sees a masked value instead of following a counter."""

    def __init__(self, kind: Any):
        self.kind = kind


def kind_name(kind: Any) -> str:
    """The name of a type as messages print it."""
    if isinstance(kind, type):
        return kind.__name__
    if isinstance(kind, tuple) and kind[0] == "array":
        return f"{kind_name(kind[1])}[{kind[2]}]"
    return repr(kind)
