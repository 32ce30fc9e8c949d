"""The application side: pointers over real memory behave like the compiled accesses."""

from __future__ import annotations

import ctypes

import pytest

from uringbpf.lang import LangMemoryError, Module, ptr, s32, u8, u16, u32, u64
from uringbpf.lang.appmode import buffer_ptr


class Clashy(ctypes.Structure):
    """Field names that are also names a pointer object could use for itself."""

    _fields_ = [("off", ctypes.c_uint32), ("addr", ctypes.c_uint64), ("buf", ctypes.c_uint16),
                ("elem", ctypes.c_int32), ("obj", ctypes.c_uint8), ("zero", ctypes.c_uint8)]


def test_struct_fields_named_like_pointer_internals():
    # regression: `sqe.addr` once returned the pointer's own address in the application
    mem = bytearray(ctypes.sizeof(Clashy))
    p = buffer_ptr(mem, Clashy)
    p.off, p.addr, p.buf, p.elem, p.obj, p.zero = 7, 1 << 40, 65535, -3, 9, 1
    c = Clashy.from_buffer(mem)
    assert (c.off, c.addr, c.buf, c.elem, c.obj, c.zero) == (7, 1 << 40, 65535, -3, 9, 1)
    assert (p.off, p.addr, p.buf, p.elem, p.obj, p.zero) == (7, 1 << 40, 65535, -3, 9, 1)
    assert type(p.elem) is s32 and type(p.addr) is u64


def test_same_fields_compiled_and_in_app():
    bpf = Module("clashy")

    @bpf.socket_filter
    def prog(data, n) -> u64:
        if n < 24:
            return 0
        c = ptr[Clashy](data)
        c.off = c.off + 1
        c.elem = -c.elem
        return c.addr + u64(c.buf)

    raw = Clashy(5, 1000, 7, 11, 0, 0)
    data = bytes(raw)
    assert prog.run_in_app(data) == prog.run(data) == prog.run(data, "interp") == 1007
    out_app = Clashy.from_buffer_copy(prog.last_data)
    prog.run_in_app(data)
    out = Clashy.from_buffer_copy(prog.last_data)
    assert (out.off, out.elem) == (6, -11) == (out_app.off, out_app.elem)


def test_access_outside_the_memory_raises():
    p = buffer_ptr(bytearray(8), u32)
    assert p[1] == 0
    with pytest.raises(LangMemoryError):
        p[2]
    with pytest.raises(LangMemoryError):
        (p + 3)[0] = 1
    with pytest.raises(LangMemoryError):
        ptr[u8](0)[0]


def test_writes_wrap_to_the_field_width():
    mem = bytearray(4)
    p = buffer_ptr(mem, u16)
    p[0] = -1
    p[1] = 0x12345
    assert bytes(mem) == b"\xff\xff\x45\x23"
