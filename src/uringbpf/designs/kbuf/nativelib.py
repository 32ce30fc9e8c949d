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


_kb = None


def kb_lib() -> ctypes.PyDLL:
    """The batch entry points of ``kbuf.c`` (buffer table, fixed-SQE import, CQ reap).

    Loaded as a :class:`ctypes.PyDLL`, so a call keeps the GIL: each call is atomic with
    respect to the other Python threads that touch the table (the block-layer thread
    registers buffers while the server thread submits), and costs no GIL hand-over.
    """
    global _kb
    if _kb is None:
        lib = ctypes.PyDLL(str(native.build(NATIVE_SOURCE)))
        vp, i32, u32, i64 = ctypes.c_void_p, ctypes.c_int32, c_uint32, ctypes.c_int64
        for name, res, args in (
                ("kb_ctx_new", vp, [u32]), ("kb_ctx_free", None, [vp]),
                ("kb_node_new", i64, [vp, c_uint64, c_uint64, u32]),
                ("kb_node_refs", i64, [vp, i64]), ("kb_node_get", i64, [vp, i64]),
                ("kb_node_put", i64, [vp, i64]), ("kb_slot_set", ctypes.c_int, [vp, u32, i64, u32]),
                ("kb_ring_attach", ctypes.c_int, [vp, c_uint64, c_uint64, u32, c_uint64, c_uint64,
                                                  u32, c_uint64]),
                ("kb_divert_add", ctypes.c_int, [vp, i32]), ("kb_divert_clear", None, [vp]),
                ("kb_pend_new", c_uint64, [vp, c_uint64, i64, u32, u32]),
                ("kb_inflight", u32, [vp]), ("kb_scan", u32, [vp, u32, u32]),
                ("kb_stat", c_uint64, [vp, u32]),
                ("kb_reap", i32, [vp, ctypes.c_void_p, i32]),
                ("kb_pend_drain", i32, [vp, ctypes.c_void_p, i32]),
                ("kb_nop", None, [vp, u32, i32, u32, c_uint64]),
                ("kb_slot_install", i64, [vp, u32, c_uint64, c_uint64, u32]),
                ("kb_slot_drop", i64, [vp, u32, u32, i64])):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        _kb = lib
    return _kb
