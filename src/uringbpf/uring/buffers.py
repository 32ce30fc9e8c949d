"""Turning Python objects into (address, length, keep-alive) for SQE fields.

The kernel reads and writes these addresses after the prep call has returned, so the
ring must hold a reference to whatever owns the memory until the CQE is reaped. For a
writable buffer we take a ctypes view with ``from_buffer``: that also *pins* a
bytearray (it cannot be resized while the request is in flight). A read-only object
(``bytes``) is accepted for writes only; reading into one raises TypeError here, before
the kernel could scribble over an immutable object.
"""

from __future__ import annotations

import ctypes
import os
import socket
from typing import Any

from .uapi import Iovec

Keep = Any


def buffer_address(obj: Any, writable: bool, what: str = "buffer") -> tuple[int, int, Keep]:
    """Address, byte length and a keep-alive for ``obj``.

    ``writable`` means the kernel will write into it (read/recv); then read-only objects
    raise TypeError. Plain ints are refused: raw addresses go through ``addr=`` arguments of
    the SQE itself, where the caller visibly takes responsibility.
    """
    if isinstance(obj, (int, str)) or obj is None:
        raise TypeError(f"{what} must be a bytes-like object, not {type(obj).__name__}")
    if isinstance(obj, ctypes._SimpleCData) or isinstance(obj, (ctypes.Array, ctypes.Structure,
                                                                  ctypes.Union)):
        return ctypes.addressof(obj), ctypes.sizeof(obj), obj
    try:
        mv = memoryview(obj)
    except TypeError:
        raise TypeError(f"{what} must support the buffer protocol, not {type(obj).__name__}") \
            from None
    if not mv.contiguous:
        raise ValueError(f"{what} must be contiguous")
    nbytes = mv.nbytes
    if mv.readonly:
        if writable:
            raise TypeError(f"{what} is read-only ({type(obj).__name__}); the kernel would write "
                            "into it: pass a bytearray, memoryview of one, mmap or ctypes buffer")
        if isinstance(obj, bytes):
            if nbytes == 0:
                return 0, 0, obj
            return ctypes.cast(ctypes.c_char_p(obj), ctypes.c_void_p).value, nbytes, obj
        data = bytes(mv)  # other read-only exporters: the kernel only reads, a copy is exact
        return buffer_address(data, False, what)
    if nbytes == 0:
        return 0, 0, obj
    view = (ctypes.c_char * nbytes).from_buffer(mv.cast("B"))
    return ctypes.addressof(view), nbytes, (obj, view)


def iovec_array(buffers: list[Any], writable: bool) -> tuple[int, int, Keep]:
    """Build a ``struct iovec[]`` for readv/writev; returns (address, count, keep-alive)."""
    if not isinstance(buffers, (list, tuple)) or not buffers:
        raise ValueError("iovecs must be a non-empty list of buffers")
    if len(buffers) > 1024:
        raise ValueError("at most IOV_MAX (1024) iovecs")
    arr = (Iovec * len(buffers))()
    keep = [arr]
    for i, b in enumerate(buffers):
        addr, n, k = buffer_address(b, writable, f"iovec[{i}]")
        arr[i].iov_base = addr or None
        arr[i].iov_len = n
        keep.append(k)
    return ctypes.addressof(arr), len(buffers), keep


def path_bytes(path: Any) -> tuple[int, Keep]:
    """A NUL-terminated path for openat and friends."""
    raw = os.fsencode(path)
    if b"\0" in raw:
        raise ValueError("path contains a NUL byte")
    buf = ctypes.create_string_buffer(raw)
    return ctypes.addressof(buf), buf


def sockaddr(addr: Any, family: int = socket.AF_INET) -> tuple[int, int, Keep]:
    """Encode ``(host, port)`` (IPv4/IPv6) or a path (AF_UNIX) into a native sockaddr."""
    if isinstance(addr, (bytes, bytearray)) and family != socket.AF_UNIX:
        raw = bytes(addr)
    elif family == socket.AF_INET:
        host, port = addr
        raw = (socket.AF_INET.to_bytes(2, "little") + int(port).to_bytes(2, "big")
               + socket.inet_pton(socket.AF_INET, host) + bytes(8))
    elif family == socket.AF_INET6:
        host, port = addr[0], addr[1]
        raw = (socket.AF_INET6.to_bytes(2, "little") + int(port).to_bytes(2, "big")
               + bytes(4) + socket.inet_pton(socket.AF_INET6, host) + bytes(4))
    elif family == socket.AF_UNIX:
        p = os.fsencode(addr)
        raw = socket.AF_UNIX.to_bytes(2, "little") + p + b"\0"
    else:
        raise ValueError(f"unsupported address family {family}")
    buf = ctypes.create_string_buffer(raw, len(raw))
    return ctypes.addressof(buf), len(raw), buf
