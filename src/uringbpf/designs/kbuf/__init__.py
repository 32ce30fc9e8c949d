"""Registered kernel buffers (Linux 6.15 ublk zero copy) and a ublk-like request source.

The kernel design (io_uring/rsrc.c, drivers/block/ublk_drv.c; facts in
docs/designs/kbuf.md): a *request source* (the ublk driver) owns block requests whose pages
the server never maps. The server fetches requests with ``IORING_OP_URING_CMD``
(``UBLK_U_IO_FETCH_REQ`` / ``UBLK_U_IO_COMMIT_AND_FETCH_REQ``), registers a request's pages
under an index of its ring's *sparse* buffer table (``UBLK_U_IO_REGISTER_IO_BUF`` or
automatically with ``UBLK_F_AUTO_BUF_REG``) and then moves data with READ_FIXED/WRITE_FIXED
(and the vectored forms) whose ``sqe->addr`` is an *offset* into the request, never an
address.

This kernel (6.18) has the buffer table but no ublk device we can drive from a test, so:

* :class:`RequestSource` plays the driver. Its pages are ordinary anonymous ``mmap`` memory,
  so a registration is a real ``IORING_REGISTER_BUFFERS_UPDATE`` into the ring's sparse
  table and the **real kernel** performs the READ_FIXED/WRITE_FIXED on the request's pages:
  true zero copy.
* :class:`KbufRing` is the server's ring: the kernel ring plus the two things the kernel
  would do for a kernel buffer and cannot do here because it sees a user buffer. On the
  submit path it (1) diverts URING_CMD SQEs addressed to a source's character-device fd to
  the source and (2) rewrites fixed-buffer SQEs that name a kernel-buffer slot: direction
  check (-EFAULT), range check (-EFAULT), ``offset -> address`` translation (also of every
  ``iov_base`` of the vectored forms), and a node reference held until the CQE (so an
  unregister while the op is in flight does not release the request). A refused SQE becomes a
  ``NOP`` with ``IORING_NOP_INJECT_RESULT`` carrying the errno, so the kernel still completes
  it in SQ order with its own ``user_data`` and link semantics.
* A fetched request reaches the server as a **real CQE in the real CQ**: the source owns a
  small private ring and posts ``IORING_OP_MSG_RING`` (``IORING_MSG_DATA``: ``res`` = 0 or
  ``-ENODEV``, ``user_data`` = the FETCH SQE's ``user_data``) to the server ring.

Everything runs on the real kernel io_uring; nothing here is a simulator.
"""

from __future__ import annotations

from ...bpf.platform import Design, Platform
from . import kfuncs as _kfuncs
from .nativelib import crc32c, crc32c_bytes, native_lib
from .ring import KbufCompletion, KbufRing
from .source import BlockRequest, RequestSource
from .table import (KbufNode, KbufTable, attach_table, import_vec, kbuf_table, table_by_fd)
from .uapi import *  # noqa: F401,F403  (the ublk UAPI names and SQE helpers)
from .uapi import __all__ as _uapi_all



class KbufDesign(Design):
    """Registered kernel buffers: the ``bpf_kbuf_read`` / ``bpf_kbuf_write`` kfuncs."""

    name = "kbuf"

    def contribute(self, platform: Platform) -> None:
        """Register the kbuf kfuncs (bpf_kbuf_read/bpf_kbuf_write) on ``platform``."""
        _kfuncs.add_kfuncs(platform)


DESIGN = KbufDesign()

__all__ = ["BlockRequest", "KbufCompletion", "KbufNode", "KbufRing", "KbufTable", "RequestSource",
           "attach_table", "crc32c", "crc32c_bytes", "import_vec", "kbuf_table",
           "native_lib", "table_by_fd", *_uapi_all]
