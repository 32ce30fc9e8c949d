"""The kernel backend: a real io_uring instance set up with io_uring_setup(2) and mmap.

A backend owns the three memory regions (SQ ring, CQ ring, SQE array) and the two
verbs that cross into "the kernel": ``enter`` and ``register``. The :class:`~.ring.Ring`
frontend does everything else by reading and writing that memory, so the thread-pool
backend (threads.py) only has to provide the same regions and verbs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

from . import region as rg
from . import syscalls
from .uapi import (IORING_ENTER_EXT_ARG, IORING_FEAT_SINGLE_MMAP, IORING_OFF_CQ_RING,
                   IORING_OFF_SQ_RING, IORING_OFF_SQES, IORING_REGISTER_PROBE,
                   IORING_SETUP_CQE32, IORING_SETUP_NO_SQARRAY, IORING_SETUP_SQE128,
                   IO_URING_OP_SUPPORTED, IoUringGeteventsArg, IoUringParams, IoUringProbe,
                   KernelTimespec)


class KernelBackend:
    """One kernel ring. Raises OSError(errno) if io_uring_setup or mmap fails."""

    name = "kernel"

    def __init__(self, entries: int, params: IoUringParams):
        fd = syscalls.io_uring_setup(entries, ctypes.addressof(params))
        if fd < 0:
            raise OSError(-fd, f"io_uring_setup({entries}, flags={params.flags:#x}): "
                               f"{os.strerror(-fd)}")
        self.fd = fd
        self.params = params
        self.sq_region = self.cq_region = self.sqe_region = None
        with contextlib.ExitStack() as undo:    # a failed mmap closes the ring fd
            undo.callback(self.close)
            self._map(params)
            undo.pop_all()

    def _map(self, p: IoUringParams) -> None:
        sqe_size = 128 if p.flags & IORING_SETUP_SQE128 else 64
        cqe_size = 32 if p.flags & IORING_SETUP_CQE32 else 16
        if p.flags & IORING_SETUP_NO_SQARRAY:
            sq_size = max(p.sq_off.head, p.sq_off.tail, p.sq_off.flags, p.sq_off.dropped,
                          p.sq_off.ring_mask, p.sq_off.ring_entries) + 4
        else:
            sq_size = p.sq_off.array + p.sq_entries * 4
        cq_size = p.cq_off.cqes + p.cq_entries * cqe_size
        # Each mapping is wrapped in a Region that munmaps itself when its last view dies
        # (see region.py): closing the ring never leaves a view over unmapped memory.
        if p.features & IORING_FEAT_SINGLE_MMAP:
            sq_size = cq_size = max(sq_size, cq_size)
            self.sq_region = rg.wrap(syscalls.mmap_ring(self.fd, sq_size, IORING_OFF_SQ_RING),
                                     sq_size, owned=True)
            self.cq_region = self.sq_region
        else:
            self.sq_region = rg.wrap(syscalls.mmap_ring(self.fd, sq_size, IORING_OFF_SQ_RING),
                                     sq_size, owned=True)
            self.cq_region = rg.wrap(syscalls.mmap_ring(self.fd, cq_size, IORING_OFF_CQ_RING),
                                     cq_size, owned=True)
        self.sq_ring_addr = self.sq_region.addr
        self.cq_ring_addr = self.cq_region.addr
        self.sq_ring_size, self.cq_ring_size = sq_size, cq_size
        self.sqes_size = p.sq_entries * sqe_size
        self.sqe_region = rg.wrap(syscalls.mmap_ring(self.fd, self.sqes_size, IORING_OFF_SQES),
                                  self.sqes_size, owned=True)
        self.sqes_addr = self.sqe_region.addr

    def enter(self, to_submit: int, min_complete: int, flags: int,
              sig: int | None = None, timeout: float | None = None) -> int:
        """io_uring_enter(2); ``timeout`` (seconds) uses IORING_ENTER_EXT_ARG."""
        if timeout is None:
            return syscalls.io_uring_enter(self.fd, to_submit, min_complete, flags,
                                     sig or 0, 8 if sig else 0)
        ts = KernelTimespec.from_seconds(timeout)
        arg = IoUringGeteventsArg(sigmask=sig or 0, sigmask_sz=8 if sig else 0,
                                  ts=ctypes.addressof(ts))
        return syscalls.io_uring_enter(self.fd, to_submit, min_complete, flags | IORING_ENTER_EXT_ARG,
                                 ctypes.addressof(arg), ctypes.sizeof(arg))

    def register(self, opcode: int, arg: int, nr_args: int) -> int:
        """``io_uring_register`` on this ring: ``>= 0`` or ``-errno``."""
        return syscalls.io_uring_register(self.fd, opcode, arg, nr_args)

    def probe(self) -> set[int]:
        """The opcodes the kernel supports (IORING_REGISTER_PROBE)."""
        pr = IoUringProbe()
        ret = self.register(IORING_REGISTER_PROBE, ctypes.addressof(pr), 256)
        if ret < 0:
            raise OSError(-ret, "IORING_REGISTER_PROBE failed")
        return {pr.ops[i].op for i in range(pr.ops_len) if pr.ops[i].flags & IO_URING_OP_SUPPORTED}

    def close(self) -> None:
        """Close the ring fd and drop our references to the mappings.

        The regions unmap themselves once no SQE/CQE view refers to them any more; the
        kernel frees the ring when both the fd and the last mapping are gone.
        """
        self.sq_region = self.cq_region = self.sqe_region = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
