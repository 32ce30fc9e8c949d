"""``designs/kbuf/kbuf.c`` through ctypes: the copy of copy mode and crc32c, on raw addresses."""

from __future__ import annotations

import ctypes
from ctypes import c_uint32, c_uint64
from pathlib import Path

from ... import native

#: The C of the kbuf design (built by :func:`uringbpf.native.load` on first use).
NATIVE_SOURCE = Path(__file__).resolve().with_name("kbuf.c")


def _set_prototypes(lib: ctypes.CDLL) -> None:
    lib.kbuf_copy.restype = c_uint64
    lib.kbuf_copy.argtypes = [c_uint64, c_uint64, c_uint64]
    lib.kbuf_crc32c.restype = c_uint32
    lib.kbuf_crc32c.argtypes = [c_uint32, c_uint64, c_uint64]


def native_lib():
    """The compiled ``kbuf.c`` (copy and crc32c on raw addresses)."""
    return native.load(NATIVE_SOURCE, configure=_set_prototypes)


def crc32c(addr: int, length: int, crc: int = 0) -> int:
    """crc32c of ``length`` bytes at native address ``addr`` (continue from ``crc``)."""
    return native_lib().kbuf_crc32c(crc, addr, length)


def crc32c_bytes(data: bytes, crc: int = 0) -> int:
    """crc32c of a bytes object (continue from ``crc``), through the native code."""
    buf = ctypes.create_string_buffer(bytes(data), max(len(data), 1))
    return crc32c(ctypes.addressof(buf), len(data), crc)
