"""Which engine runs a BPF program: the one place that decides.

Two engines run verified programs: the reference interpreter (:mod:`uringbpf.bpf.interp`,
always there) and the JIT (:mod:`uringbpf.bpf.jit`, LLVM through llvmlite). llvmlite is
~170 MB installed (all of LLVM's targets in one shared library), so it is the optional
extra ``uringbpf[jit]``; ``make test`` and CI install it, ``make demo`` does not.

* ``engine=None`` or ``"auto"``: the JIT when llvmlite is installed, else the interpreter.
* ``engine="jit"`` without llvmlite: :class:`JitUnavailableError`, which says what to install.
* ``engine="interp"``: the interpreter.

Both engines give the same results (tests/bpf/jit compares them); the JIT is faster.
The JIT has two code generators (``jit_tier``; docs/jit.md): its own direct translation to
x86-64 (the default for every program it translates, LLVM for the rest: ``auto``), and LLVM
alone (``llvm``); ``tiered`` runs the direct code at once and switches to LLVM's, compiled in
a background thread.
"""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType

from ..errors import JitTierError, JitUnavailableError

__all__ = ["ENGINES", "JIT_EXTRA", "JIT_TIERS", "JitUnavailableError", "jit_available",
           "default_engine", "resolve", "jit_module", "require_llvmlite", "describe", "jit_tier"]

#: the engine names ``resolve`` accepts (besides ``None``)
ENGINES = ("auto", "jit", "interp")
#: the JIT's tiers ``jit_tier`` accepts: ``direct`` translates BPF to x86-64 itself
#: (:mod:`uringbpf.bpf.jit_x86`, ~10x faster to compile than LLVM, code as fast), ``llvm``
#: through LLVM, ``auto`` the direct tier for every program it translates and LLVM for the
#: rest, ``tiered`` the direct code at once and LLVM's from a background compile on
JIT_TIERS = ("auto", "direct", "llvm", "tiered")
#: what to install for the JIT (and for BPF programs written in Python)
JIT_EXTRA = "pip install 'uringbpf[jit]'"




def jit_available() -> bool:
    """True when llvmlite can be imported (the JIT and uringbpf.lang work)."""
    return importlib.util.find_spec("llvmlite") is not None


def default_engine() -> str:
    """``"jit"`` when llvmlite is installed, else ``"interp"``."""
    return "jit" if jit_available() else "interp"


def resolve(engine: str | None) -> str:
    """The engine that runs a program asked to run on ``engine`` (see the module doc)."""
    if engine is None or engine == "auto":
        return default_engine()
    if engine not in ENGINES:
        raise ValueError(f"engine must be 'jit', 'interp' or 'auto', not {engine!r}")
    if engine == "jit" and not jit_available():
        raise JitUnavailableError("engine='jit'", "or run on engine='interp'")
    return engine


def jit_module() -> ModuleType:
    """:mod:`uringbpf.bpf.jit`, imported on first use; :class:`JitUnavailableError`
    without llvmlite."""
    resolve("jit")
    from . import jit  # why: the one lazy import of the JIT: LLVM loads at the first JIT compile, not at `import uringbpf`, and not at all without the [jit] extra
    return jit


def jit_tier(tier: str | None = None) -> str:
    """The JIT tier to use: ``tier``, else the ``URINGBPF_JIT_TIER`` environment variable,
    else ``"auto"``. Which code a program then gets is decided by ``jit.tier_for``
    (``auto``: the direct tier unless it does not translate the program, then LLVM).

    Why ``auto`` and not ``tiered`` by default: the direct tier's code runs within a few
    per cent of LLVM's (docs/benchmarks.md), so a background LLVM compile would spend CPU
    for nothing, and no thread is started behind the user's back."""
    if tier is None:
        tier = os.environ.get("URINGBPF_JIT_TIER", "auto") or "auto"
    if tier not in JIT_TIERS:
        raise JitTierError(f"JIT tier must be one of {', '.join(JIT_TIERS)}, not {tier!r} "
                           "(--jit-tier, tier= or URINGBPF_JIT_TIER)")
    return tier


def require_llvmlite(what: str) -> None:
    """Raise :class:`JitUnavailableError` naming ``what`` when llvmlite is missing."""
    if not jit_available():
        raise JitUnavailableError(what)


def describe(engine: str | None = None) -> str:
    """One line for users: which engine runs programs and why."""
    name = resolve(engine)
    if name == "jit":
        import importlib.metadata  # why: 20-50 ms (email, zipfile...) that every `import uringbpf.bpf.object` paid for this one line
        return (f"jit (tier {jit_tier()}: direct x86-64 code, LLVM through llvmlite "
                f"{importlib.metadata.version('llvmlite')} where it is asked for or needed)")
    if jit_available():
        return "interp (the reference interpreter, as asked)"
    return f"interp (the reference interpreter: llvmlite is not installed; {JIT_EXTRA} adds the JIT)"
