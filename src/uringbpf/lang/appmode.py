"""The application side of a program: the same function run as Python.

Pointers become :class:`Ptr` (a memoryview over the very memory the compiled program
would reach, an offset and an element type); reads give :mod:`~uringbpf.lang.types`
integers, writes wrap to the field's width.  An access outside the memory raises
:class:`LangMemoryError` (the compiled program would be refused by the verifier or
stopped by the engine there).
"""

from __future__ import annotations

import contextlib
import ctypes
from typing import Any, Iterator

from ..bpf import maps as _maps
from ..bpf.helpers import Helper, Runtime
from ..bpf.platform import Platform
from . import types as T


class LangMemoryError(IndexError):
    """An application-side access outside the memory a pointer covers."""


def _elem_size(elem: Any) -> int:
    if isinstance(elem, T.Opaque):
        raise TypeError(f"{elem.name} is opaque")
    return T.sizeof(elem)


class Ptr:
    """A pointer in the application run: ``buf`` (None for NULL), byte ``off``, ``elem``."""

    __slots__ = ("_pbuf", "_poff", "_pelem", "_pobj")

    def __init__(self, buf: memoryview | None, off: int, elem: Any, obj: Any = None):
        object.__setattr__(self, "_pbuf", buf)
        object.__setattr__(self, "_poff", off)
        object.__setattr__(self, "_pelem", elem)
        object.__setattr__(self, "_pobj", obj)     # opaque objects: what the kfuncs act on

    # identity --------------------------------------------------------------------------
    def __bool__(self) -> bool:
        return self._pbuf is not None or self._pobj is not None

    def __eq__(self, other: Any) -> bool:
        if other is None or (isinstance(other, int) and other == 0):
            return not self
        if not isinstance(other, Ptr):
            return NotImplemented
        return self._pbuf is other._pbuf and self._poff == other._poff and self._pobj is other._pobj

    def __ne__(self, other: Any) -> bool:
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if not self:
            return f"{T.ptr[self._pelem]!r}(NULL)"
        return f"{T.ptr[self._pelem]!r}(+{self._poff})"

    def _paddr(self) -> int:
        """The native address this pointer holds (0 for NULL): what kfuncs receive."""
        if self._pbuf is None:
            return 0
        return ctypes.addressof(ctypes.c_char.from_buffer(self._pbuf)) + self._poff

    def _pretype(self, elem: Any) -> "Ptr":
        return Ptr(self._pbuf, self._poff, elem, self._pobj)

    def _to_generic(self, elem: Any) -> "Ptr":
        """``ptr[elem](self)``: the same pointer re-typed (arena pointers override it)."""
        return self._pretype(elem)

    # arithmetic ------------------------------------------------------------------------
    def __add__(self, n: Any) -> "Ptr":
        if not isinstance(n, int):
            return NotImplemented
        self._need()
        return type(self)(self._pbuf, self._poff + int(n) * _elem_size(self._pelem), self._pelem)

    def __sub__(self, n: Any) -> "Ptr":
        if not isinstance(n, int):
            return NotImplemented
        return self + (-int(n))

    # memory ----------------------------------------------------------------------------
    def _need(self) -> None:
        if self._pbuf is None:
            raise LangMemoryError("NULL pointer dereference")

    def _span(self, off: int, size: int) -> memoryview:
        self._need()
        if off < 0 or off + size > len(self._pbuf):
            raise LangMemoryError(f"access of {size} bytes at offset {off} outside the "
                                  f"{len(self._pbuf)}-byte memory this pointer covers")
        return self._pbuf[off:off + size]

    def _read(self, off: int, kind: Any) -> Any:
        if isinstance(kind, type) and issubclass(kind, T.FixedInt):
            raw = self._span(off, kind.BITS // 8)
            return kind(int.from_bytes(raw, "little", signed=kind.SIGNED))
        if isinstance(kind, tuple):
            self._span(off, T.sizeof(kind))
            return Ptr(self._pbuf, off, kind[1])
        self._span(off, T.sizeof(kind))
        return Ptr(self._pbuf, off, kind)

    def _write(self, off: int, kind: Any, value: Any) -> None:
        if not (isinstance(kind, type) and issubclass(kind, T.FixedInt)):
            raise TypeError(f"cannot assign to a {T.kind_name(kind)}")
        if isinstance(value, Ptr):
            raise TypeError("programs cannot store pointers")
        v = kind(value)
        self._span(off, kind.BITS // 8)[:] = int(v).to_bytes(kind.BITS // 8, "little", signed=kind.SIGNED)

    def __getitem__(self, i: Any) -> Any:
        return self._read(self._poff + int(i) * _elem_size(self._pelem), self._pelem)

    def __setitem__(self, i: Any, value: Any) -> None:
        self._write(self._poff + int(i) * _elem_size(self._pelem), self._pelem, value)

    def _field(self, name: str) -> tuple[int, Any]:
        elem = self._pelem
        if not (isinstance(elem, type) and issubclass(elem, (ctypes.Structure, ctypes.Union))):
            raise AttributeError(f"{self!r} points to no structure (no field {name!r})")
        fields = T.struct_fields(elem)
        if name not in fields:
            raise AttributeError(f"{elem.__name__} has no field {name!r}")
        off, kind = fields[name]
        return self._poff + off, kind

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name.startswith("_p"):
            raise AttributeError(name)
        off, kind = self._field(name)
        return self._read(off, kind)

    def __setattr__(self, name: str, value: Any) -> None:
        off, kind = self._field(name)
        self._write(off, kind, value)

    def _pzero(self) -> None:
        self._span(self._poff, _elem_size(self._pelem))[:] = bytes(_elem_size(self._pelem))


class ArenaPtr(Ptr):
    """An ``arena_ptr[T]`` in the application run: a pointer over the whole arena (as the
    compiled program may reach any of it) whose value is the arena address (``u64(p)``)."""

    __slots__ = ()

    def __int__(self) -> int:
        return self._paddr()

    __index__ = __int__

    def _pretype(self, elem: Any) -> "Ptr":
        return ArenaPtr(self._pbuf, self._poff, elem, self._pobj)

    def _to_generic(self, elem: Any) -> "Ptr":
        return KernArenaPtr(self._pbuf, self._poff, elem, self._pobj)

    def __repr__(self) -> str:
        return "arena_" + super().__repr__()


class KernArenaPtr(Ptr):
    """``ptr[T](p)`` of an arena pointer ``p``: the kernel's cast to address space 0 keeps
    only the low 32 bits of the address (loads and stores add the arena's window), so the
    pointer is NULL to a test when those bits are 0 -- the arena's first page can be such
    an address -- while accesses through it still reach the arena."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return self._pbuf is not None and bool(self._paddr() & 0xFFFFFFFF)

    def _pretype(self, elem: Any) -> "Ptr":
        return KernArenaPtr(self._pbuf, self._poff, elem, self._pobj)


def arena_memory_ptr(arena: Any, addr: int, elem: Any) -> ArenaPtr:
    """``arena_ptr[elem]`` to ``addr`` inside native arena map ``arena`` (0: NULL).  Like
    the kernel's cast to address space 1, only the low 32 bits of ``addr`` count: they
    are the offset in the arena's 4 GiB window."""
    if not addr:
        return ArenaPtr(None, 0, elem)
    mem = arena.memory()
    base = arena.arena_window | (addr & 0xFFFFFFFF)
    return ArenaPtr(mem, base - arena.value_addr, elem)


def arena_pointer(value: Any, elem: Any) -> Ptr:
    """``arena_ptr[T](value)`` in the application: a pointer of either kind re-typed (the
    same memory), or an integer address in the arena of the run."""
    if isinstance(value, KernArenaPtr) and not value:
        return ArenaPtr(None, 0, elem)        # the cast back keeps 0 as NULL, as the kernel's
    if isinstance(value, Ptr):
        return ArenaPtr(value._pbuf, value._poff, elem, value._pobj)
    if isinstance(value, int):
        if int(value) == 0:
            return ArenaPtr(None, 0, elem)
        arenas = [m for m in app_runtime().rt.maps if m.type == _maps.MAP_TYPE_ARENA and not m.closed]
        if len(arenas) != 1:
            raise LangMemoryError(f"arena_ptr of the address {int(value):#x}: the run has "
                                  f"{len(arenas)} arenas (a program uses one)")
        return arena_memory_ptr(arenas[0], int(value), elem)
    raise TypeError(f"cannot make an arena pointer from {value!r} in the application")


T.ArenaPtrType.app_cast = staticmethod(arena_pointer)


def memory_ptr(addr: int, size: int, elem: Any = T.u8) -> Ptr:
    """A :class:`Ptr` over ``size`` bytes of native memory at ``addr`` (ring regions...)."""
    mv = memoryview((ctypes.c_char * size).from_address(addr)).cast("B")
    return Ptr(mv, 0, elem)


def buffer_ptr(buf: bytearray | memoryview, elem: Any = T.u8) -> Ptr:
    """A typed pointer over a Python buffer, for running programs as plain Python."""
    return Ptr(memoryview(buf).cast("B"), 0, elem)


def opaque_ptr(kind: T.Opaque, obj: Any) -> Ptr:
    """A pointer to an opaque kernel object (``kind``) backed by ``obj``, in app mode."""
    return Ptr(None, 0, kind, obj)


def zero(p: Ptr) -> None:
    """``zero(p)``: clear the ``sizeof(*p)`` bytes ``p`` points to (``memset(p, 0, ...)``)."""
    p._pzero()


def sizeof(t: Any) -> int:
    """``sizeof(T)`` of an int type or a ctypes structure."""
    return T.sizeof(t)


# --- the application run's runtime: what helper/kfunc implementations may touch ---------
class AppRuntime:
    """A :class:`~uringbpf.bpf.helpers.Runtime` for calls the application run makes into the
    helper table of ``platform`` (the same implementations the engines call for a program
    loaded against that platform), plus the stack memory (``stack()``) handed out during
    the run."""

    def __init__(self, platform: Platform, printk: list[str] | None = None) -> None:
        self.platform = platform
        self.rt = Runtime(platform=platform, printk=printk if printk is not None else [])
        self.keep: list = []
        self.regions: list = []
        self._maps: dict[int, tuple[Any, list]] = {}

    def use_map(self, m: Any) -> None:
        """Let helper calls of this runtime reach native map ``m`` (its memory included,
        as a loaded object's runtime does); maps closed since are forgotten."""
        if id(m) in self._maps and not m.closed:
            return
        for key, (old, regions) in list(self._maps.items()):
            if old.closed or old is m:
                for r in regions:
                    self.rt.mem.remove(r)
                self.rt.maps.remove(old)
                del self._maps[key]
        regions = [self.rt.mem.add(r.base, r.size, r.writable, r.name) for r in m.regions()]
        self.rt.maps.append(m)
        self._maps[id(m)] = (m, regions)

    def helper(self, helper_id: int) -> Helper:
        """Helper ``helper_id`` of this run's platform (NotImplementedError if it has none)."""
        h = self.platform.get_helper(helper_id)
        if h is None:
            raise NotImplementedError(f"helper #{helper_id} is not on platform {self.platform.name}")
        return h

    def kfunc(self, name: str) -> Helper:
        """Kfunc ``name`` of this run's platform (NotImplementedError if it has none)."""
        h = self.platform.get_kfunc(name)
        if h is None:
            raise NotImplementedError(f"kfunc {name} is not on platform {self.platform.name}")
        return h

    def add(self, addr: int, size: int, writable: bool, name: str) -> None:
        """Let app-mode helper calls touch ``size`` bytes at ``addr`` (once per range)."""
        if self.rt.mem.find(addr, size) is None:
            self.regions.append(self.rt.mem.add(addr, size, writable, name))

    def release(self) -> None:
        """Forget the stack memory of a finished run."""
        for r in self.regions:
            self.rt.mem.remove(r)
        self.regions.clear()
        self.keep.clear()

    @contextlib.contextmanager
    def running(self) -> Iterator["AppRuntime"]:
        """Make this the runtime of the program code run inside the block (helpers,
        kfuncs, maps and ``stack()`` use it); its stack memory is released at the end."""
        _RUNTIMES.append(self)
        try:
            yield self
        finally:
            _RUNTIMES.pop()
            self.release()


_RUNTIMES: list[AppRuntime] = []


def app_runtime() -> AppRuntime:
    """The runtime of the application run in progress (``run_in_app``)."""
    if not _RUNTIMES:
        raise RuntimeError("program code called outside an application run: use "
                           "prog.run_in_app(...) (helpers, kfuncs and stack() need its runtime)")
    return _RUNTIMES[-1]


def stack(t: Any, n: int = 1) -> Ptr:
    """``stack(T, n=1)``: zeroed room for ``n`` values of ``T`` on the program's stack."""
    size = T.sizeof(t) * int(n)
    raw = (ctypes.c_char * max(size, 1))()
    rt = app_runtime()
    rt.keep.append(raw)
    rt.add(ctypes.addressof(raw), max(size, 1), True, "stack")
    return Ptr(memoryview(raw).cast("B"), 0, t)


def copy(dst: Ptr, src: Ptr, n: int) -> None:
    """``copy(dst, src, n)``: ``memcpy`` of ``n`` bytes (``n`` a constant)."""
    data = bytes(src._span(src._poff, int(n)))
    dst._span(dst._poff, int(n))[:] = data


def bpf_printk(fmt: str, *args: Any) -> int:
    """``bpf_printk(fmt, a, b, c)``: the kernel's ``bpf_trace_printk`` (``%d %u %x %s %c %p``
    with ``l``/``ll``; three values at most).  The line goes to the module's ``printk``
    list in both runs; returns the helper's result (the line's length + 1, or -errno)."""
    rt = app_runtime()
    raw = fmt.encode() + b"\0"
    buf = ctypes.create_string_buffer(raw, len(raw))
    rt.keep.append(buf)
    rt.add(ctypes.addressof(buf), len(raw), False, "printk format")
    regs = [(a._paddr() if isinstance(a, Ptr) else int(a)) & 0xFFFFFFFFFFFFFFFF for a in args]
    regs += [0] * (3 - len(regs))
    return T.s64(rt.helper(BPF_FUNC_trace_printk).impl(rt.rt, ctypes.addressof(buf), len(raw), *regs))


#: ``bpf_trace_printk``'s helper id
BPF_FUNC_trace_printk = 6


def bpf_range(start: int, end: int) -> range:
    """``for i in bpf_range(a, b)``: like ``range(a, b)``; compiled as libbpf's ``bpf_for``
    (an open-coded iterator: the verifier checks the body once, not every iteration)."""
    return range(int(start), int(end))
