"""`Ring.fast()`: batch verbs in compiled code for Python loops that must keep up.

:class:`~uringbpf.uring.ring.Ring` does what liburing does with ``memoryview`` words:
portable, but a completion-driven loop pays ~10 Python-level operations per CQE. The
batch verbs here are one CPython extension (``fastpath.c``, METH_FASTCALL, built on
first use by :mod:`uringbpf.native` with Python's include directory, loaded with
importlib's ``ExtensionFileLoader``: no setuptools, no ctypes per call) and work on
*batches*::

    uds = array("Q", bytes(8 * 64))          # reusable output arrays, no per-CQE objects
    with ring.fast() as fp:
        fp.prep_nops(array("Q", range(8)))   # prep on a slice/array of user_data
        n = fp.reap(uds, None, None, 1)      # submit + wait for 1 + copy every ready CQE
        fp.prep_nops(memoryview(uds)[:n])    # re-arm from the reaped slice

Verbs: ``prep_nop(ud, flags=0)``, ``prep_nops(uds, flags=0)``, ``prep_rw(opcode, fd,
addr, len, offset, ud, flags=0)`` (raw addresses: the caller keeps memory alive),
``submit()``, ``submit_and_wait(n)``, ``reap(uds, results=None, flags=None, wait_nr=0)``
(arrays ``'Q'``/``'i'``/``'I'``, any writable buffer of that item size),
``for_each_cqe(fn)`` (``fn(user_data, res, flags)`` per CQE), ``cq_ready()``,
``sq_space_left()``; attribute ``enters`` counts the io_uring_enter calls it made.

Contract: while a fast path is open it owns the SQ tail (and a registered ring fd, from
the task's table, released by ``close()``/the ``with`` exit or when the Ring closes); the Ring's own ``prep_*`` must
not be mixed in (leaving the ``with`` block hands the tail back to the Ring). Only plain
kernel rings qualify (no enter hook, SQE filter or SQ_REWIND, not the threads backend):
those need the Ring's Python enter path, so :func:`fast_path` raises ``ValueError``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sysconfig
import threading
from pathlib import Path
from typing import Any

from .. import native
from ..errors import SubmissionQueueFull

SOURCE = Path(__file__).resolve().with_name("fastpath.c")
_lock = threading.Lock()
_module: Any = None


def extension() -> Any:
    """The ``_fastpath`` extension module (compiled and cached on first use)."""
    global _module
    with _lock:
        if _module is None:
            flags = ["-I", sysconfig.get_paths()["include"]]
            path = native.build(SOURCE, flags)
            loader = importlib.machinery.ExtensionFileLoader("uringbpf.uring._fastpath",
                                                             str(path))
            spec = importlib.util.spec_from_file_location("uringbpf.uring._fastpath", str(path),
                                                          loader=loader)
            mod = importlib.util.module_from_spec(spec)
            loader.exec_module(mod)
            _module = mod
        return _module


class FastPath:
    """Context manager around the extension's ``Fast`` object for one ring (see module doc).

    The verbs are the ``Fast`` object's own bound methods, copied onto this instance, so a
    call costs one vectorcall (no Python wrapper in between)."""

    def __init__(self, ring: Any):
        if ring.closed:
            raise ValueError("ring is closed")
        if getattr(ring, "_direct_fd", -1) < 0:
            raise ValueError("Ring.fast() needs a plain kernel ring (no enter hook, SQE "
                             "filter, SQ_REWIND or threads backend)")
        ring.flush_sq()      # SQEs prepared through the Ring are published first
        fast = extension().Fast(
            ring, SubmissionQueueFull, ring.fd, ring.sq_head_addr, ring.sq_tail_addr,
            ring.sq_array_addr, ring.sq_mask, ring.sq_entries, ring.sqes_addr, ring.sqe_size,
            ring.cq_head_addr, ring.cq_tail_addr, ring.cq_mask, ring.cqes_addr, ring.cqe_size)
        self.ring = ring
        self.native = fast
        # closing the ring first (unmapping its memory) must turn the verbs into errors
        ring.add_close_hook(self._ring_closing)
        for name in ("prep_nop", "prep_nops", "prep_rw", "submit", "submit_and_wait", "reap",
                     "for_each_cqe", "cq_ready", "sq_space_left"):
            setattr(self, name, getattr(fast, name))

    @property
    def enters(self) -> int:
        """io_uring_enter calls made through this fast path."""
        return self.native.enters

    def _ring_closing(self, ring: Any) -> None:
        self.native.close()

    def close(self) -> None:
        """Hand the SQ tail back to the Ring (its next ``get_sqe`` follows our SQEs) and
        release the registered ring fd; the verbs raise ``ValueError`` afterwards."""
        if not self.ring.closed:
            self.ring.remove_close_hook(self._ring_closing)
            self.ring.sync_sq_tail()
        self.native.close()

    def __enter__(self) -> "FastPath":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def fast_path(ring: Any) -> FastPath:
    """A :class:`FastPath` over ``ring`` (what :meth:`Ring.fast` returns)."""
    return FastPath(ring)
