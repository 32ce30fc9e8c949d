"""uringbpf: programmable io_uring on any Linux, from Python.

The public entry points are :class:`Ring` (the real kernel io_uring, or a thread-pool
fallback) and :class:`BpfObject` (a libbpf-style loader for eBPF ELF objects).
"""

__version__ = "0.1.0"

__all__ = ["Ring", "BpfObject", "__version__"]


def __getattr__(name: str):
    # Imported lazily so `import uringbpf` stays cheap and the halves can be used alone.
    if name == "Ring":
        from .uring.ring import Ring
        return Ring
    if name == "BpfObject":
        from .bpf.object import BpfObject
        return BpfObject
    raise AttributeError(name)
