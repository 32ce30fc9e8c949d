"""Emulated IORING_SETUP_SQ_REWIND, from Python: the C of ``native/sqrewind.h``.

One implementation of the emulation's memory steps (stage slots 0..n-1 at the kernel SQ
tail, publish, take back what the kernel did not consume) serves the ring
(:meth:`uringbpf.uring.ring.Ring.raw_enter`) and the loop design's C, which includes the
header.  The shared object is built on the first emulated submit, never at import.
"""

from __future__ import annotations

import ctypes
from ctypes import c_uint32, c_uint64, c_void_p

from .. import native


class KernelSq(ctypes.Structure):
    """``struct uringbpf_ksq``: the kernel SQ as mapped in this process."""

    _fields_ = [("head", c_void_p), ("tail", c_void_p), ("array", c_void_p),
                ("sqes", c_void_p), ("mask", c_uint32), ("entries", c_uint32),
                ("sqe_size", c_uint32), ("pad", c_uint32)]


def _set_prototypes(lib: ctypes.CDLL) -> None:
    lib.uringbpf_sqrewind_stage.restype = c_uint64
    lib.uringbpf_sqrewind_stage.argtypes = [c_void_p, c_void_p, c_uint32]
    lib.uringbpf_sqrewind_publish.restype = None
    lib.uringbpf_sqrewind_publish.argtypes = [c_void_p, c_uint32]


def lib() -> ctypes.CDLL:
    """native/sqrewind.c, built on first use."""
    return native.load("sqrewind", configure=_set_prototypes)


class Rewinder:
    """The emulation for one ring: ``stage`` copies, ``publish`` moves the kernel tail.

    Addresses are passed as plain ints (no ``byref`` per call): a submit of one SQE costs
    about what the Python copy it replaced did.
    """

    def __init__(self, head: int, tail: int, array: int, sqes: int, entries: int,
                 sqe_size: int, src: int):
        self.ksq = KernelSq(head, tail, array or None, sqes, entries - 1, entries, sqe_size)
        self._ksq_addr = ctypes.addressof(self.ksq)
        self._src = src
        self._stage = lib().uringbpf_sqrewind_stage
        self._publish = lib().uringbpf_sqrewind_publish

    def stage(self, nr: int) -> tuple[int, int]:
        """Copy slots ``0..nr-1`` to the kernel SQ at its tail (not published):
        ``(n, tail)``, n as many as there was room for; copy i is in slot (tail+i) & mask."""
        v = self._stage(self._ksq_addr, self._src, nr)
        return v & 0xFFFFFFFF, v >> 32

    def publish(self, tail: int) -> None:
        """Store the kernel SQ tail (release): ``tail + n`` to submit, ``tail + consumed``
        after the enter to drop what the kernel did not take."""
        self._publish(self._ksq_addr, tail & 0xFFFFFFFF)
