"""Memory a BPF program may touch, as real addresses in this process.

Programs, helpers and both engines work on real pointers: ring memory is the kernel's
mmap, map values and global data live in buffers allocated here, the stack is a
buffer per run.  That way the interpreter and the JIT see the same addresses and a
program's loads of CQ head/tail hit the real ring.

The interpreter checks every access against an :class:`AddressSpace` (a list of
:class:`Region`); the JIT trusts the verifier (or, in checked mode, calls the same
check).  A violation raises :class:`BpfMemoryError` — never a segfault.
"""

from __future__ import annotations

import bisect
import ctypes
import threading
import weakref
from dataclasses import dataclass


from .. import native
from ..errors import BpfMemoryError, BpfRuntimeError  # noqa: E402,F401  (defined in uringbpf.errors)


@dataclass(eq=False)
class Region:
    """One range of memory a program may touch: ``[base, base + size)``, maybe read-only."""
    base: int
    size: int
    writable: bool
    name: str

    @property
    def end(self) -> int:
        """First address past the region."""
        return self.base + self.size

    def contains(self, addr: int, size: int) -> bool:
        """True when ``[addr, addr + size)`` lies inside the region."""
        return self.base <= addr and addr + size <= self.base + self.size


class Buffer:
    """A zero-filled native buffer with a stable address (kept alive by this object).

    ``guard=True`` registers it as runtime-owned memory (see :func:`guard_add`) for as long
    as it lives: BPF stacks and engine contexts, which no user pointer may name.
    """

    __slots__ = ("raw", "addr", "size", "_guard", "__weakref__")

    def __init__(self, size: int, data: bytes | None = None, align: int = 8,
                 guard: bool = False):
        if size < 0:
            raise ValueError("buffer size must be >= 0")
        # Over-allocate so the usable part is aligned (ctypes only guarantees 16 on most libcs).
        self.raw = ctypes.create_string_buffer(max(size, 1) + align)
        base = ctypes.addressof(self.raw)
        self.addr = (base + align - 1) & ~(align - 1)
        self.size = size
        self._guard = guard_object(self, self.addr, max(size, 1)) if guard else None
        if data:
            if len(data) > size:
                raise ValueError("initial data larger than buffer")
            ctypes.memmove(self.addr, data, len(data))

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes ``[offset, offset + length)`` of the buffer (IndexError outside it)."""
        length = self.size - offset if length is None else length
        if offset < 0 or length < 0 or offset + length > self.size:
            raise IndexError("read outside buffer")
        return ctypes.string_at(self.addr + offset, length)

    def write(self, offset: int, data: bytes) -> None:
        """Copy ``data`` into the buffer at ``offset`` (IndexError outside it)."""
        if offset < 0 or offset + len(data) > self.size:
            raise IndexError("write outside buffer")
        ctypes.memmove(self.addr + offset, bytes(data), len(data))

    def view(self) -> memoryview:
        """A writable memoryview of the buffer's bytes."""
        return memoryview((ctypes.c_char * self.size).from_address(self.addr)).cast("B")


# ---------------------------------------------------------------------------------------
# Runtime-owned memory (native/guard.h): a user pointer may not name it.

_guard_lock = threading.Lock()
_guard_so = None


def _guard_lib():
    global _guard_so
    with _guard_lock:
        if _guard_so is None:
            so = native.load("maps")
            for name in ("ubpf_guard_add", "ubpf_guard_remove", "ubpf_guard_check"):
                getattr(so, name).argtypes = [ctypes.c_uint64, ctypes.c_uint64]
                getattr(so, name).restype = ctypes.c_int
            so.ubpf_guard_check_sqe.argtypes = [ctypes.c_void_p]
            so.ubpf_guard_check_sqe.restype = ctypes.c_int
            so.ubpf_guard_count.argtypes = []
            so.ubpf_guard_count.restype = ctypes.c_uint64
            _guard_so = so
        return _guard_so


def guard_add(addr: int, size: int) -> None:
    """Register ``[addr, addr+size)`` as runtime-owned: user-pointer helpers fail on it with
    -EFAULT, SQEs a program submits that name it complete with -EFAULT (issue #13 item 5)."""
    err = _guard_lib().ubpf_guard_add(addr, size)
    if err:
        raise OSError(-err, f"cannot register runtime memory {addr:#x}+{size}")


def guard_remove(addr: int, size: int) -> None:
    """Forget one :func:`guard_add` of exactly this range."""
    _guard_lib().ubpf_guard_remove(addr, size)


def guard_check(addr: int, size: int) -> bool:
    """True when ``[addr, addr+size)`` overlaps runtime-owned memory."""
    return bool(_guard_lib().ubpf_guard_check(addr & (2**64 - 1), size & (2**64 - 1)))


def guard_check_sqe(sqe_addr: int) -> int:
    """0, or -EFAULT when the SQE at ``sqe_addr`` names runtime-owned memory."""
    return int(_guard_lib().ubpf_guard_check_sqe(sqe_addr))


def guard_object(owner: object, addr: int, size: int) -> weakref.finalize:
    """Register ``[addr, addr+size)`` while ``owner`` lives (returns the finalizer)."""
    guard_add(addr, size)
    return weakref.finalize(owner, guard_remove, addr, size)


_LOADERS = {1: ctypes.c_uint8, 2: ctypes.c_uint16, 4: ctypes.c_uint32, 8: ctypes.c_uint64}


def raw_load(addr: int, size: int) -> int:
    """Unchecked little-endian unsigned load (callers have checked the range)."""
    return _LOADERS[size].from_address(addr).value


def raw_store(addr: int, size: int, value: int) -> None:
    """Unchecked little-endian store of ``size`` bytes (callers have checked the range)."""
    _LOADERS[size].from_address(addr).value = value & ((1 << (size * 8)) - 1)


class AddressSpace:
    """The set of regions one program run may touch.

    Regions never overlap; lookups are a bisect over region bases.
    """

    def __init__(self) -> None:
        self._bases: list[int] = []
        self._regions: list[Region] = []

    def add(self, base: int, size: int, writable: bool, name: str) -> Region:
        """Add a region (ValueError when it overlaps one already there)."""
        if size <= 0:
            raise ValueError(f"region {name!r} has size {size}")
        region = Region(base, size, writable, name)
        i = bisect.bisect_right(self._bases, base)
        if i > 0 and self._regions[i - 1].end > base:
            raise ValueError(f"region {name!r} overlaps {self._regions[i - 1].name!r}")
        if i < len(self._regions) and self._regions[i].base < region.end:
            raise ValueError(f"region {name!r} overlaps {self._regions[i].name!r}")
        self._bases.insert(i, base)
        self._regions.insert(i, region)
        return region

    def add_buffer(self, buf: Buffer, writable: bool, name: str) -> Region:
        """Add a :class:`Buffer` as a region."""
        return self.add(buf.addr, buf.size, writable, name)

    def remove(self, region: Region) -> None:
        """Remove a region that :meth:`add` returned."""
        i = self._regions.index(region)
        del self._regions[i]
        del self._bases[i]

    def regions(self) -> list[Region]:
        """The regions, by base address."""
        return list(self._regions)

    def find(self, addr: int, size: int) -> Region | None:
        """The region holding all of ``[addr, addr + size)``, or None."""
        i = bisect.bisect_right(self._bases, addr) - 1
        if i >= 0:
            region = self._regions[i]
            if region.contains(addr, size):
                return region
        return None

    def check(self, addr: int, size: int, write: bool, pc: int | None = None) -> Region:
        """The region for an access, or raise :class:`BpfMemoryError` naming the instruction."""
        region = self.find(addr, size)
        if region is None:
            kind = "store" if write else "load"
            raise BpfMemoryError(f"out of bounds memory {kind} of {size} bytes at {addr:#x}", pc)
        if write and not region.writable:
            raise BpfMemoryError(f"store of {size} bytes to read-only {region.name} at {addr:#x}", pc)
        return region

    def load(self, addr: int, size: int, pc: int | None = None) -> int:
        """Checked little-endian load of ``size`` bytes."""
        self.check(addr, size, False, pc)
        return raw_load(addr, size)

    def store(self, addr: int, size: int, value: int, pc: int | None = None) -> None:
        """Checked little-endian store of ``size`` bytes."""
        self.check(addr, size, True, pc)
        raw_store(addr, size, value)

    def read(self, addr: int, length: int, pc: int | None = None) -> bytes:
        """Checked read of ``length`` bytes."""
        if length == 0:
            return b""
        self.check(addr, length, False, pc)
        return ctypes.string_at(addr, length)

    def write(self, addr: int, data: bytes, pc: int | None = None) -> None:
        """Checked write of ``data``."""
        if not data:
            return
        self.check(addr, len(data), True, pc)
        ctypes.memmove(addr, bytes(data), len(data))
