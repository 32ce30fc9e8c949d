"""Memory regions whose lifetime follows the Python objects that view them.

Why: SQE/CQE views are ctypes objects over ring memory. If the ring unmapped its memory
on ``close()`` while a user still held such a view, touching the view would segfault the
interpreter. A :class:`Region` is a ctypes byte array over a mapping that unmaps itself
only when the last view is gone: views are made with ``from_buffer`` (which keeps the
region object alive) and the region's ``__del__`` calls ``munmap``. A closed kernel ring
therefore keeps its (unused) pages while stale views exist, and never crashes.
"""

from __future__ import annotations

import ctypes

from . import syscalls

_types: dict[int, type] = {}


def _region_type(size: int) -> type:
    cls = _types.get(size)
    if cls is None:
        def _del(self) -> None:
            unmap = self.__dict__.get("_unmap")
            if unmap is not None:
                self.__dict__["_unmap"] = None
                unmap()

        cls = type(f"Region{size}", (ctypes.c_char * size,), {"__del__": _del})
        _types[size] = cls
    return cls


def wrap(addr: int, size: int, owned: bool) -> ctypes.Array:
    """A byte array over ``[addr, addr+size)``; ``owned`` means munmap it when unreferenced."""
    region = _region_type(size).from_address(addr)
    region.__dict__["_unmap"] = (lambda a=addr, s=size: syscalls.munmap(a, s)) if owned else None
    region.__dict__["addr"] = addr
    return region


def anonymous(size: int) -> ctypes.Array:
    """Fresh private zeroed memory (page granular), freed when unreferenced."""
    return wrap(syscalls.mmap_anon(size), size, owned=True)


def u32_view(region: ctypes.Array) -> memoryview:
    """A ``memoryview`` of 32-bit unsigned words over a region (fast index reads/writes)."""
    return memoryview(region).cast("B").cast("I")
