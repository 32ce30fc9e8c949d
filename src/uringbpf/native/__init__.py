"""Native pieces of uringbpf: small C files compiled on first use and loaded with ctypes.

Why C at all: the completion path of a ring driven by a program must not run Python per
CQE, and helpers/kfuncs must be callable from JIT code as plain native functions. Each C
file is built into its own shared object (so one module can be rebuilt or broken without
touching the others), cached by a hash of its source, of the headers in this folder and of
the headers next to the source, under ``$XDG_CACHE_HOME/uringbpf`` (or ``~/.cache/uringbpf``).

A C file is named by a *source*: a bare name (``"maps"``) is ``native/<name>.c`` (the
runtime's own C: maps, base helpers, JIT runtime); a :class:`~pathlib.Path` is any C file,
which is how a design builds the C kept in its own folder (``designs/loop/loop.c``). The
include path is the source's folder, then this folder (shared headers such as ``cbpf.h``).
``Helper.native`` holds ``(source, symbol)`` in the same form.

The compiler is the system ``cc`` when present, else the ``ziglang`` package's
``zig cc`` (a dependency of uringbpf, so a fresh machine can always build).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
CFLAGS = ["-O2", "-g", "-fPIC", "-shared", "-std=gnu11", "-Wall", "-Wno-unused-function",
          "-fno-strict-aliasing"]

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL] = {}
_configured: set[tuple[str, Callable[[ctypes.CDLL], None]]] = set()
_on_load: dict[str, list[Callable[[ctypes.CDLL], None]]] = {}


from ..errors import NativeBuildError  # noqa: E402,F401  (defined in uringbpf.errors)


def cache_dir() -> Path:
    """Where compiled native libraries and example objects are cached
    (``$XDG_CACHE_HOME/uringbpf``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "uringbpf"


def compiler() -> list[str]:
    """The C compiler command: $CC, system cc/gcc/clang, or ``python -m ziglang cc``."""
    if os.environ.get("CC"):
        return os.environ["CC"].split()
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return [path]
    if importlib.util.find_spec("ziglang") is None:
        raise NativeBuildError("no C compiler: install cc, or the 'ziglang' package")
    return [sys.executable, "-m", "ziglang", "cc"]


_resolved: dict[Path, Path] = {}


def source_path(source: str | Path) -> Path:
    """The C file a source names: ``native/<name>.c`` for a bare name, else the path itself."""
    if isinstance(source, Path):
        # resolved once: load() runs on every kfunc call made through Python (the
        # interpreter), and resolve() is a few lstat()s
        resolved = _resolved.get(source)
        if resolved is None:
            resolved = _resolved[source] = source.resolve()
        return resolved
    return HERE / f"{source}.c"


def _include_dirs(source: Path) -> list[Path]:
    return [source.parent] if source.parent == HERE else [source.parent, HERE]


def _digest(source: Path, extra: list[str]) -> str:
    h = hashlib.sha256()
    h.update(source.read_bytes())
    for folder in _include_dirs(source):
        for header in sorted(folder.glob("*.h")):
            h.update(header.name.encode())
            h.update(header.read_bytes())
    h.update(" ".join(CFLAGS + extra).encode())
    return h.hexdigest()[:16]


def build(name: str | Path, extra_flags: list[str] | None = None) -> Path:
    """Compile the C file ``name`` names (if not cached) and return the shared object's path."""
    extra = list(extra_flags or [])
    source = source_path(name)
    if not source.exists():
        raise NativeBuildError(f"no native module {name!r} ({source})")
    out_dir = cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{source.stem}-{_digest(source, extra)}.so"
    if target.exists():
        return target
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
    os.close(fd)
    includes = [arg for folder in _include_dirs(source) for arg in ("-I", str(folder))]
    cmd = compiler() + CFLAGS + extra + includes + ["-o", tmp, str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(tmp)
        raise NativeBuildError(f"compiling {source.name} failed:\n{' '.join(cmd)}\n"
                               f"{proc.stdout}{proc.stderr}")
    os.replace(tmp, target)  # atomic: concurrent builders never see a half-written file
    return target


def load(name: str | Path, extra_flags: list[str] | None = None,
         configure: Callable[[ctypes.CDLL], None] | None = None) -> ctypes.CDLL:
    """The loaded shared object of the C file ``name`` names (built on first use, then cached).

    ``configure(lib)`` (typically: set the ctypes prototypes a module uses) runs exactly
    once per (module, function), under the lock, before any caller gets the library: the
    Python modules that share one native module need no load-once state of their own.
    """
    key = str(source_path(name))
    with _lock:
        lib = _loaded.get(key)
        if lib is None:
            lib = ctypes.CDLL(str(build(name, extra_flags)), mode=ctypes.RTLD_GLOBAL)
            _loaded[key] = lib
        for fn in _on_load.get(key, []) + ([configure] if configure is not None else []):
            if (key, fn) not in _configured:
                fn(lib)
                _configured.add((key, fn))
        return lib


def add_configure(name: str | Path, configure: Callable[[ctypes.CDLL], None]) -> None:
    """Run ``configure(lib)`` once on the library ``name`` names before any caller gets it,
    however it is first loaded (also by :func:`symbol_address` from JIT code). A design uses
    this when its C must be set up (prototypes, Python callbacks) before C code runs."""
    key = str(source_path(name))
    with _lock:
        fns = _on_load.setdefault(key, [])
        if configure not in fns:
            fns.append(configure)
        lib = _loaded.get(key)
        if lib is not None and (key, configure) not in _configured:
            configure(lib)
            _configured.add((key, configure))


def set_register_prototypes(lib: ctypes.CDLL, symbols) -> None:
    """Declare ``symbols`` as helper-shaped C functions: ``uint64_t f(uint64_t r1..r5)``,
    the calling convention of every helper/kfunc twin (docs/internals.md)."""
    for symbol in symbols:
        fn = getattr(lib, symbol)
        fn.restype = ctypes.c_uint64
        fn.argtypes = [ctypes.c_uint64] * 5


def symbol_address(name: str | Path, symbol: str) -> int:
    """Address of ``symbol`` in the native module ``name`` names (for JIT code to call directly)."""
    lib = load(name)
    return ctypes.cast(getattr(lib, symbol), ctypes.c_void_p).value
