"""Ring programs written in Python: one function that runs in the application or in the ring.

A restricted Python subset compiles (AST -> typed LLVM IR -> LLVM's BPF backend through
llvmlite; no C compiler) into a real ``.bpf.o`` with BTF, which our loader, verifier, JIT
and designs run like any clang-built object; the same function also runs as plain
Python against the same ring, with the same integer semantics.  See
docs/python-programs.md.
"""

from ..bpf import engines as _engines

# The compiler is LLVM's BPF backend through llvmlite (the uringbpf[jit] extra): without it,
# say what to install instead of "No module named 'llvmlite'" from deep inside module.py.
_engines.require_llvmlite("uringbpf.lang (BPF programs written in Python)")

from .appmode import LangMemoryError, Ptr, bpf_printk, bpf_range, copy, sizeof, stack, zero
from .errors import LangCompileError, LangError, LangRuntimeError, LangVerifierError
from .module import Kfunc, LangFunction, Loaded, Module, inline
from .types import FixedInt, arena_ptr, array, ptr, volatile, s8, s16, s32, s64, u8, u16, u32, u64

__all__ = [
    "Module", "inline", "volatile", "Kfunc", "LangFunction", "Loaded", "Ptr", "ptr", "arena_ptr", "array", "zero", "sizeof", "stack", "copy", "bpf_range", "bpf_printk",
    "FixedInt", "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64",
    "LangError", "LangCompileError", "LangVerifierError", "LangRuntimeError", "LangMemoryError",
]
