"""Every public exception of uringbpf, in one place.

All derive from :class:`UringBpfError`, so ``except uringbpf.errors.UringBpfError`` catches
anything the library raises on purpose. Where callers expect a standard exception the
stdlib base is kept as a second base: errno failures are :class:`OSError` (with ``.errno``),
bad input is :class:`ValueError`, failures while running are :class:`RuntimeError`.

The modules that raise them re-export them under their old names (``uringbpf.bpf.elf.
BpfLoadError`` is this ``BpfLoadError``), so both import paths name one class.
"""

from __future__ import annotations

import errno as _errno
import os as _os

__all__ = [
    "AsmError", "BpfLoadError", "JitUnavailableError", "KernelLoadError", "LangError",
    "LangCompileError", "LangRuntimeError", "LangVerifierError", "BpfMemoryError", "BpfRuntimeError", "BpfVerifierError",
    "CbpfError", "CompileError", "CoreError", "DecodeError", "JitError", "LoopError", "MapError",
    "NativeBuildError", "PluginError", "ProgTypeError", "RingClosedError",
    "SubmissionQueueFull", "JitTierError", "UncacheableError", "UringBpfError",
]


class UringBpfError(Exception):
    """Base class of every exception uringbpf raises on purpose."""


# --- loading -----------------------------------------------------------------------------

class BpfLoadError(UringBpfError):
    """An object cannot be opened, loaded or attached.

    Raised by :class:`~uringbpf.bpf.object.BpfObject` (``open``, ``load``,
    ``attach_struct_ops``) and the ELF/BTF parsers; the message names the file, section,
    symbol or instruction.
    """


class ProgTypeError(BpfLoadError, ValueError):
    """No program type is known for a program: no design of the platform describes its
    section or struct_ops member (raised by ``Platform.prog_type_for``)."""


class BpfVerifierError(UringBpfError):
    """The verifier refused a program. ``log`` is the kernel-style verifier log.

    Raised by :func:`uringbpf.bpf.verifier.verify` and by ``BpfObject.load()``; from
    ``load()`` it also names the object (``object_path``) and the program (``program``),
    as libbpf's ``prog 'NAME': BPF program load failed`` does, in the message and as
    attributes.
    """

    def __init__(self, message: str, log: str = "", pc: int | None = None):
        super().__init__(message, log)
        self.message = message
        self.log = log
        self.pc = pc
        self.object_path: str | None = None
        self.program: str | None = None

    def __str__(self) -> str:
        head = self.message
        if self.program is not None:
            where = f"{self.object_path}: " if self.object_path else ""
            head = f"{where}prog '{self.program}': BPF program load failed: {self.message}"
        if not self.log:
            return head
        lines = self.log.rstrip("\n").split("\n")
        return head + "\n" + "\n".join(lines[-25:])

    def with_context(self, object_path: str | None, program: str) -> "BpfVerifierError":
        """This error, naming the object and program it came from (returns ``self``)."""
        self.object_path = None if object_path is None else str(object_path)
        self.program = program
        return self


class MapError(UringBpfError, OSError):
    """A map operation failed with the kernel's errno (``.errno``): raised by
    :class:`~uringbpf.bpf.maps.Map` creation, lookup, update, delete and close."""


# --- building and compiling ----------------------------------------------------------------

class NativeBuildError(UringBpfError, RuntimeError):
    """A native C module could not be compiled (the compiler's output is in the message).
    Raised by :mod:`uringbpf.native` the first time a design or helper needs its C."""


class CompileError(UringBpfError, RuntimeError):
    """The BPF C compiler rejected a program, or no BPF-capable compiler exists
    (raised by :mod:`uringbpf.bpf.cc`)."""


class AsmError(UringBpfError, ValueError):
    """A line that does not assemble (:mod:`uringbpf.bpf.asm`); carries the 1-based line number."""

    def __init__(self, message: str, lineno: int | None = None, line: str | None = None):
        self.lineno = lineno
        self.line = line
        where = f"line {lineno}: " if lineno is not None else ""
        super().__init__(f"{where}{message}" + (f" ({line.strip()!r})" if line else ""))


class DecodeError(UringBpfError, ValueError):
    """Bytes that are not a whole number of well-formed instruction slots (:mod:`uringbpf.bpf.isa`)."""


class CbpfError(UringBpfError, ValueError):
    """A classic BPF filter the kernel would refuse (7.0 filter design); ``errno`` is what
    the kernel would return, ``pc`` the instruction."""

    def __init__(self, message: str, err: int = _errno.EINVAL, pc: int | None = None):
        self.errno = err
        self.pc = pc
        super().__init__(message if pc is None else f"insn {pc}: {message}")


# --- running -------------------------------------------------------------------------------

class BpfRuntimeError(UringBpfError, RuntimeError):
    """A program did something at run time that the engine refuses (names the insn ``pc``).
    Raised by the interpreter, by checked JIT code and by helpers."""

    def __init__(self, message: str, pc: int | None = None):
        self.pc = pc
        super().__init__(message if pc is None else f"insn {pc}: {message}")


class BpfMemoryError(BpfRuntimeError):
    """A load or store outside every region the program may touch (interpreter, checked JIT)."""


class JitError(BpfRuntimeError, ValueError):
    """The JIT cannot compile the program (malformed instruction, bad jump), naming the insn.

    Messages are the interpreter's for the same faults, so both engines report alike.
    """


class LoopError(UringBpfError, RuntimeError):
    """A ``loop_step`` program failed inside the 7.1 loop (the engine's exception is the
    ``__cause__``); raised by ``Ring.enter`` / ``LoopAttachment.run``."""


class PluginError(UringBpfError, RuntimeError):
    """A program the bpf_conformance plugin refuses to load or run (the message is what it prints)."""


# --- the ring ------------------------------------------------------------------------------

class RingClosedError(UringBpfError, ValueError):
    """An operation on a ring after :meth:`~uringbpf.uring.ring.Ring.close` (like I/O on a
    closed file)."""


class SubmissionQueueFull(UringBpfError, RuntimeError):
    """``get_sqe`` found no free SQE: call ``submit()`` first.

    We raise rather than auto-submitting because submitting in the middle of a link chain
    would silently cut the chain in two (chains never cross a submit).
    """


class JitUnavailableError(UringBpfError, ImportError):
    """The JIT (or :mod:`uringbpf.lang`'s compiler) was asked for, but llvmlite -- the
    ``uringbpf[jit]`` extra -- is not installed (raised by :mod:`uringbpf.bpf.engines`)."""

    def __init__(self, what: str, alternative: str = ""):
        super().__init__(f"{what} needs llvmlite, which is not installed: "
                         f"pip install 'uringbpf[jit]'"
                         f"{f' ({alternative})' if alternative else ''}", name="llvmlite")


class KernelLoadError(BpfLoadError):
    """The running kernel refused a program or map handed to it by the kernel executor
    (``executor="kernel"``); ``errno`` is the kernel's, ``log`` its verifier log."""

    def __init__(self, what: str, err: int, log: str = ""):
        self.errno = err
        self.log = log
        tail = "\n".join(log.strip().splitlines()[-8:])
        super().__init__(f"{what}: {_os.strerror(err)} (errno {err})" + (f"\n{tail}" if tail else ""))


# --- programs written in Python (uringbpf.lang) ------------------------------------------

class LangError(UringBpfError):
    """Base of :mod:`uringbpf.lang`'s errors: each names the Python file and line of the
    program's source it is about."""

    def __init__(self, filename: str, line: int, message: str, detail: str = ""):
        self.filename = filename
        self.line = line
        self.message = message
        self.detail = detail
        super().__init__(f"{filename}:{line}: {message}")

    def __str__(self) -> str:
        head = f"{self.filename}:{self.line}: {self.message}"
        return head + ("\n" + self.detail if self.detail else "")


class LangCompileError(LangError):
    """The function uses something outside the Python subset, or its types do not fit."""


class LangVerifierError(LangError):
    """The verifier refused the compiled program; ``line`` is where the refused
    instruction came from, ``log`` the verifier log annotated with Python lines."""

    def __init__(self, filename: str, line: int, message: str, log: str = "",
                 pc: int | None = None):
        super().__init__(filename, line, message)
        self.log = log
        self.pc = pc


class LangRuntimeError(LangError):
    """The compiled program failed at run time (an engine refused an access...)."""

    def __init__(self, filename: str, line: int, message: str, pc: int | None = None):
        super().__init__(filename, line, message)
        self.pc = pc


class CoreError(UringBpfError, RuntimeError):
    """Raised when the verifier package is imported with ``URINGBPF_VERIFIER=compiled``
    and the compiled verifier core cannot run (not built, stale, built for another
    Python), or with a value other than auto, pure or compiled
    (``uringbpf.bpf.verifier.core.select``)."""


class UncacheableError(UringBpfError, ValueError):
    """Raised by :func:`uringbpf.bpf.verify_cache.key` when an input of a verdict cannot be
    written down exactly in the key (no ELF digest, no program type, a map or program field
    of a kind the key does not know); ``BpfObject.load()`` then verifies without the cache."""


class JitTierError(UringBpfError, ValueError):
    """Raised by :func:`uringbpf.bpf.engines.jit_tier` (so by ``jit.compile``, ``load()``
    and ``uringbpf run``) for a JIT tier name that is not one of ``engines.JIT_TIERS``,
    given as an argument or in ``URINGBPF_JIT_TIER``."""
