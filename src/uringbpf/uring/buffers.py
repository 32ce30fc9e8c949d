"""Memory for SQEs: the :class:`Buffer` type, and Python objects to (address, length).

:class:`Buffer` is the memory to hand the kernel and BPF programs: page-aligned, with a
fixed address (``.addr``) for SQE fields and BPF maps/globals, a writable ``.view``, and
accepted wherever the ring takes a buffer (``prep_read``, ``register_buffers``...).

The rest of the module turns Python objects into (address, length, keep-alive) for SQE
fields.

The kernel reads and writes these addresses after the prep call has returned, so the
ring must hold a reference to whatever owns the memory until the CQE is reaped. For a
writable buffer we take a ctypes view with ``from_buffer``: that also *pins* a
bytearray (it cannot be resized while the request is in flight). A read-only object
(``bytes``) is accepted for writes only; reading into one raises TypeError here, before
the kernel could scribble over an immutable object.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import socket
from typing import Any

from .uapi import Iovec

__all__ = ["Buffer", "PAGE_SIZE", "buffer_address", "iovec_array", "path_bytes", "sockaddr"]

Keep = Any

#: The page size; every :class:`Buffer` starts on a page boundary.
PAGE_SIZE = mmap.PAGESIZE


class Buffer:
    """``size`` bytes of zero-filled, page-aligned memory with a fixed address.

    The memory is an anonymous private mapping, so it starts on a page boundary (what
    O_DIRECT reads, registered buffers and kernel-buffer tables want) and never moves:

    * ``addr`` -- its address, for SQE fields, BPF globals (``obj.bss.buf = b.addr``) and
      anything else that takes a user pointer;
    * ``view`` -- a writable ``memoryview`` of all ``size`` bytes (``b.view[:5] = b"hello"``);
    * ``size`` / ``len(b)`` -- its length (a whole number of pages is mapped; ``size``
      bytes are usable).

    Pass it wherever the ring takes a buffer: ``ring.prep_read(fd, b, 0, nbytes=4096)``,
    ``ring.prep_write(...)``, ``ring.register_buffers([b])``. While a request or a
    registration uses it, the ring holds an export of the memory, so :meth:`close`
    raises ``BufferError`` instead of unmapping memory the kernel may still write.
    ``close()`` (or ``with Buffer(n) as b:``) unmaps it; otherwise the mapping lives as
    long as the object.
    """

    __slots__ = ("_map", "_view", "_carr", "addr", "size", "__weakref__")

    def __init__(self, size: int):
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"size must be an int, not {type(size).__name__}")
        if size <= 0:
            raise ValueError(f"size must be > 0, not {size}")
        self.size = size
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._carr = (ctypes.c_char * size).from_buffer(self._map)
        self.addr: int = ctypes.addressof(self._carr)
        self._view: memoryview | None = memoryview(self._map)

    @property
    def view(self) -> memoryview:
        """A writable memoryview of the ``size`` bytes (raises ValueError once closed)."""
        if self._view is None:
            raise ValueError("Buffer is closed")
        return self._view

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has unmapped the memory."""
        return self._view is None

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return bytes(self.view)

    def export(self) -> memoryview:
        """A new memoryview that pins the mapping (``close`` raises while it is alive).

        The ring takes one for every request and registration using the buffer.
        """
        if self._view is None:
            raise ValueError("Buffer is closed")
        return memoryview(self._map)

    def close(self) -> None:
        """Unmap the memory. Raises BufferError while a request, a registration or a
        memoryview taken from the buffer still uses it; closing twice is allowed."""
        if self._view is None:
            return
        self._view.release()
        self._view = None
        self._carr = None       # its own export of the mapping (ctypes from_buffer)
        try:
            self._map.close()
        except BufferError:
            # Still exported: stay open, at the same address, exactly as before the call.
            self._carr = (ctypes.c_char * self.size).from_buffer(self._map)
            self._view = memoryview(self._map)
            raise BufferError("Buffer is still in use (a request in flight, a registered "
                              "buffer table, or a memoryview of it)") from None
        self.addr = 0

    def __enter__(self) -> "Buffer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._view is None else f"addr={self.addr:#x}"
        return f"<Buffer size={self.size} {state}>"


def buffer_address(obj: Any, writable: bool, what: str = "buffer") -> tuple[int, int, Keep]:
    """Address, byte length and a keep-alive for ``obj``.

    ``writable`` means the kernel will write into it (read/recv); then read-only objects
    raise TypeError. Plain ints are refused: raw addresses go through ``addr=`` arguments of
    the SQE itself, where the caller visibly takes responsibility.
    """
    if isinstance(obj, (int, str)) or obj is None:
        raise TypeError(f"{what} must be a bytes-like object, not {type(obj).__name__}")
    if isinstance(obj, Buffer):
        # The export pins the mapping while the kernel may use it (Buffer.close raises).
        return obj.addr, obj.size, obj.export()
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
