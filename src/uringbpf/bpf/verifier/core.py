"""Which verifier core runs: the compiled twin of the hot modules, or the pure-Python ones.

``setup.py`` compiles the modules of :data:`COMPILED_MODULES` with Cython, from these very
``.py`` files (plus their augmenting ``.pxd`` type declarations), into the directory
``_compiled/`` next to them, and records there (:data:`HASH_FILE`) a hash of the sources
it compiled.  :func:`select` -- called once, by ``verifier/__init__.py``, before any
verifier module is imported -- puts that directory first on the package's ``__path__``
only when

* ``URINGBPF_VERIFIER`` is not ``pure``, and
* the recorded hash equals the hash of the sources on disk now, and
* every module was built for this interpreter (its extension suffix).

So an edit to a verifier ``.py`` file makes the build *stale* and the pure modules run
(never an old compiled module), until ``make core`` (or ``pip install -e .``) rebuilds it.
The compiled modules keep their names (``uringbpf.bpf.verifier.explore`` ...), classes and
messages: only the code executing them differs.  The outcome is a named state,
:data:`STATE` (``uringbpf.bpf.verifier.CORE``, printed by ``uringbpf verify -v``);
``URINGBPF_VERIFIER=compiled`` turns every state but ``compiled`` into an error (CI uses
it so a broken build cannot pass unnoticed as the pure core).

This module is never compiled and imports only the standard library and
:mod:`uringbpf.errors`: ``setup.py`` loads it by path (with ``src`` on ``sys.path``) to
compute the same hash.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import os
import pathlib

from uringbpf.errors import CoreError  # absolute: setup.py loads this file by path

#: the verifier modules compiled into ``_compiled/`` (the hot loop and everything it calls
#: per instruction; ``cfg``, ``api``, ``disasm`` run once per program and stay pure)
COMPILED_MODULES = ("scalar", "state", "common", "sanity", "transfer", "memory", "calls",
                    "explore")

#: the directory of the compiled twin, next to the sources
COMPILED_DIR = "_compiled"
#: the file in it recording the hash of the sources it was built from
HASH_FILE = "SOURCES.sha256"
#: the environment variable choosing the core: ``auto`` (default), ``pure``, ``compiled``
ENV = "URINGBPF_VERIFIER"

#: states :func:`select` can report
COMPILED = "compiled"
PURE_REQUESTED = "pure (URINGBPF_VERIFIER=pure)"
NOT_BUILT = "pure (no compiled core built: make core)"
STALE = "pure (compiled core is stale: sources changed since it was built; make core)"
OTHER_PYTHON = "pure (compiled core built for another Python: make core)"

#: the state chosen at import (set by :func:`select`)
STATE = NOT_BUILT


def source_files(src_dir: pathlib.Path) -> list[pathlib.Path]:
    """The files the compiled core is built from: each module's ``.py`` and, when it has
    one, its ``.pxd``, in a fixed order."""
    files = []
    for name in COMPILED_MODULES:
        files.append(src_dir / f"{name}.py")
        pxd = src_dir / f"{name}.pxd"
        if pxd.exists():
            files.append(pxd)
    return files


def source_hash(src_dir: pathlib.Path) -> str:
    """SHA-256 over the names and bytes of :func:`source_files` (what ``setup.py``
    records and :func:`select` compares)."""
    h = hashlib.sha256()
    for path in source_files(src_dir):
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def build_state(src_dir: pathlib.Path) -> str:
    """:data:`COMPILED`, :data:`NOT_BUILT`, :data:`STALE` or :data:`OTHER_PYTHON`: whether
    ``src_dir/_compiled`` holds a fresh build of ``src_dir``'s sources for this Python."""
    out = src_dir / COMPILED_DIR
    recorded = out / HASH_FILE
    if not recorded.exists():
        return NOT_BUILT
    if recorded.read_text().strip() != source_hash(src_dir):
        return STALE
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    if not all((out / f"{name}{suffix}").exists() for name in COMPILED_MODULES):
        return OTHER_PYTHON
    return COMPILED


def select(package_path: list[str]) -> str:
    """Choose the core for the verifier package whose ``__path__`` is ``package_path``:
    prepend the compiled directory when the build is fresh (and not refused by
    ``URINGBPF_VERIFIER``); return and record the state."""
    global STATE
    mode = os.environ.get(ENV, "auto")
    if mode not in ("auto", "pure", "compiled"):
        raise CoreError(f"{ENV}={mode!r}: expected auto, pure or compiled")
    src_dir = pathlib.Path(__file__).resolve().parent
    state = PURE_REQUESTED if mode == "pure" else build_state(src_dir)
    if mode == "compiled" and state != COMPILED:
        raise CoreError(f"{ENV}=compiled but the verifier core is {state}")
    if state == COMPILED:
        package_path.insert(0, str(src_dir / COMPILED_DIR))
    STATE = state
    return state
