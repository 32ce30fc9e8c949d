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

import importlib as _importlib
import logging as _logging
from typing import TYPE_CHECKING as _TYPE_CHECKING

from . import platform as _platform
from .bpf import platform as _bpf_platform

if _TYPE_CHECKING:
    from .bpf.object import BpfObject
    from .uring.buffers import Buffer
    from .uring.ring import Ring

__version__ = "0.1.0"

__all__ = ["Ring", "BpfObject", "Buffer", "__version__"]

#: the public classes, imported on first use (PEP 562): a command or program that only
#: loads BPF objects (``uringbpf run``, ``verify``) does not import the ring's dozen
#: modules, nor one that only drives rings the loader (#19, start-up time)
_LAZY = {"BpfObject": ".bpf.object", "Buffer": ".uring.buffers", "Ring": ".uring.ring"}


def __getattr__(name: str):
    """``uringbpf.Ring`` / ``Buffer`` / ``BpfObject``: their module is imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value             # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    """The module's names, the lazily imported classes included."""
    return sorted(set(globals()) | set(_LAZY))

# The composition root: BpfObject.load() without platform= uses uringbpf.platform's
# default platform (bpf/ cannot import it: it lies above bpf/). Imports no design.
_bpf_platform.set_default_platform(_platform.default_platform)

# A library logs, the application decides where records go (silent unless configured;
# the `uringbpf` command shows warnings, and more with -v).
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
