"""A ring's memory region (``IORING_REGISTER_MEM_REGION``, Linux 6.13+): a ring concern.

The kernel registers the region itself; this module remembers, per :class:`~.ring.Ring`,
what was registered (the descriptor read back after the syscall), because a design may
hand the same memory to programs: Linux 7.1's ``bpf_io_uring_get_region(ctx,
IOU_REGION_MEM, size)`` returns ``ctx->param_region``, which is this region.

Registrations made through :func:`register_region` and raw ones made with
``ring.register(IORING_REGISTER_MEM_REGION, ...)`` are both seen, once :func:`watch` (called
by :func:`register_region` and by any design that needs the region) installed the ring's
register hook.  A design that must follow later registrations adds a listener with
:func:`add_listener`; this layer knows no design.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import weakref
from ctypes import Structure, c_uint32, c_uint64
from dataclasses import dataclass
from typing import Any, Callable

from . import syscalls, uapi

IORING_REGISTER_MEM_REGION = uapi.IORING_REGISTER_MEM_REGION
IORING_MEM_REGION_TYPE_USER = 1
IORING_MEM_REGION_REG_WAIT_ARG = 1
IORING_MAP_OFF_PARAM_REGION = 0x20000000


class IoUringRegionDesc(Structure):
    """``struct io_uring_region_desc``."""

    _fields_ = [("user_addr", c_uint64), ("size", c_uint64), ("flags", c_uint32),
                ("id", c_uint32), ("mmap_offset", c_uint64), ("resv", c_uint64 * 4)]


class IoUringMemRegionReg(Structure):
    """``struct io_uring_mem_region_reg``: the IORING_REGISTER_MEM_REGION argument."""

    _fields_ = [("region_uptr", c_uint64), ("flags", c_uint64), ("resv", c_uint64 * 2)]


@dataclass
class MemRegion:
    """A ring's registered memory region: its address and size in this process."""

    addr: int
    size: int
    keepalive: Any = None

    def view(self) -> memoryview:
        """A writable memoryview of the region's bytes."""
        return memoryview((ctypes.c_char * self.size).from_address(self.addr)).cast("B")


_regions: "weakref.WeakKeyDictionary[Any, MemRegion]" = weakref.WeakKeyDictionary()
_listeners: "weakref.WeakKeyDictionary[Any, list[Callable[[MemRegion], None]]]" = \
    weakref.WeakKeyDictionary()
_watched: "weakref.WeakSet[Any]" = weakref.WeakSet()


class _Unmapper:
    """Keeps a kernel-allocated region mapped while its :class:`MemRegion` lives."""

    def __init__(self, addr: int, size: int):
        self.addr, self.size = addr, size

    def __del__(self):
        syscalls.munmap(self.addr, self.size)


def mem_region_of(ring) -> MemRegion | None:
    """The region registered on ``ring`` (None before any registration was seen)."""
    return _regions.get(ring)


def add_listener(ring, fn: Callable[[MemRegion], None]) -> None:
    """Call ``fn(region)`` when a region is registered on ``ring`` from now on."""
    _listeners.setdefault(ring, []).append(fn)


def remove_listener(ring, fn: Callable[[MemRegion], None]) -> None:
    """Undo :func:`add_listener` (no error if ``fn`` is not listening)."""
    fns = _listeners.get(ring)
    if fns is not None and fn in fns:
        fns.remove(fn)


def _note(ring, region: MemRegion) -> None:
    _regions[ring] = region
    for fn in list(_listeners.get(ring, ())):
        fn(region)


def register_region_raw(ring, arg: int, nr_args: int) -> int:
    """``io_uring_register(fd, IORING_REGISTER_MEM_REGION, arg, nr_args)``, remembered.

    The kernel (6.13+) registers the region; the descriptor is read back so the region can
    be found later with :func:`mem_region_of`.  Returns the syscall's result (``-errno``).
    """
    ret = syscalls.io_uring_register(ring.fd, IORING_REGISTER_MEM_REGION, arg, nr_args)
    if ret < 0:
        return ret
    reg = IoUringMemRegionReg.from_address(arg)
    desc = IoUringRegionDesc.from_address(reg.region_uptr)
    if desc.flags & IORING_MEM_REGION_TYPE_USER:
        _note(ring, MemRegion(desc.user_addr, desc.size))
    else:
        addr = syscalls.mmap_ring(ring.fd, desc.size, desc.mmap_offset)
        _note(ring, MemRegion(addr, desc.size, _Unmapper(addr, desc.size)))
    return ret


def _register_hook(ring, opcode: int, arg: int, nr_args: int) -> int | None:
    if opcode == IORING_REGISTER_MEM_REGION:
        return register_region_raw(ring, arg, nr_args)
    return None


def watch(ring) -> None:
    """See raw ``ring.register(IORING_REGISTER_MEM_REGION, ...)`` calls (idempotent)."""
    if ring in _watched:
        return
    ring.add_register_hook(_register_hook)
    _watched.add(ring)


def register_region(ring, size: int) -> MemRegion:
    """Register a ``size``-byte memory region (liburing ``io_uring_register_region``).

    The memory is page-aligned user memory (IORING_MEM_REGION_TYPE_USER) that this
    process reads and writes through :meth:`MemRegion.view`.  Raises ValueError for
    ``size <= 0`` and OSError with the kernel's errno (EBUSY for a second region).
    """
    if size <= 0:
        raise ValueError("region size must be > 0")
    watch(ring)
    page = mmap.PAGESIZE
    size = (size + page - 1) // page * page
    area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(area))
    desc = IoUringRegionDesc(user_addr=addr, size=size, flags=IORING_MEM_REGION_TYPE_USER)
    reg = IoUringMemRegionReg(region_uptr=ctypes.addressof(desc))
    ret = register_region_raw(ring, ctypes.addressof(reg), 1)
    if ret < 0:
        area.close()
        raise OSError(-ret, f"IORING_REGISTER_MEM_REGION: {os.strerror(-ret)}")
    region = _regions[ring]
    region.keepalive = area
    return region
