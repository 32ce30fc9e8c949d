"""uringbpf: programmable io_uring on any Linux, from Python.

The public entry points:

* :class:`Ring` -- the real kernel io_uring (or a thread-pool fallback where io_uring
  is missing), with liburing-named verbs;
* :class:`BpfObject` -- a libbpf-style loader for eBPF ELF objects (open, set globals,
  load = verify + JIT, attach);
* :class:`Buffer` -- page-aligned memory with a fixed address, for SQEs and programs.

The command-line tool is ``uringbpf`` (also ``python -m uringbpf``). What the library
decides on its own (compiler choice, fallbacks, emulated features) is reported on the
``uringbpf`` :mod:`logging` logger; importing compiles nothing.
"""

import logging as _logging

from . import platform as _platform
from .bpf import platform as _bpf_platform
from .bpf.object import BpfObject
from .uring.buffers import Buffer
from .uring.ring import Ring

__version__ = "0.1.0"

__all__ = ["Ring", "BpfObject", "Buffer", "__version__"]

# The composition root: BpfObject.load() without platform= uses uringbpf.platform's
# default platform (bpf/ cannot import it: it lies above bpf/). Imports no design.
_bpf_platform.set_default_platform(_platform.default_platform)

# A library logs, the application decides where records go (silent unless configured;
# the `uringbpf` command shows warnings, and more with -v).
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
