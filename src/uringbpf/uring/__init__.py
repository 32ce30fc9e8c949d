"""The io_uring layer: UAPI, the kernel ring over syscalls+mmap, and the thread-pool fallback.

Every UAPI constant is re-exported here under its kernel name and its short name
(``IORING_SETUP_SQ_REWIND`` and ``SETUP_SQ_REWIND``; see :mod:`.uapi` for the rule), so
``from uringbpf.uring import Ring, SETUP_DEFER_TASKRUN, OP_NOP`` works.
"""

from .uapi import *  # noqa: F401,F403
from .uapi import __all__ as _uapi_all
from .buffers import Buffer
from .ring import Completion, Ring, RingClosedError, SubmissionQueueFull

__all__ = list(_uapi_all) + ["Ring", "Completion", "RingClosedError", "SubmissionQueueFull",
                             "Buffer"]
