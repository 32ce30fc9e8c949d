"""Build of the verifier's compiled core (everything else is in pyproject.toml).

The hot verifier modules (``uringbpf.bpf.verifier.core.COMPILED_MODULES``) are compiled
by Cython from their own ``.py`` sources, with the type declarations of the ``.pxd`` file
next to each, into ``uringbpf/bpf/verifier/_compiled/`` (not next to the ``.py`` files:
a module there would always shadow its source).  The C code keeps the modules' real names
(``uringbpf.bpf.verifier.explore``...): ``verifier.core.select`` puts ``_compiled/`` first
on the package's ``__path__`` when the hash recorded there (``SOURCES.sha256``, written by
this build) matches the sources, so a stale build never runs.

``URINGBPF_BUILD_CORE=0`` skips the compiled core (the pure-Python verifier runs; the
package works the same, slower).
"""

from __future__ import annotations

import importlib.util
import sys
import os
import pathlib

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent
VERIFIER = ROOT / "src" / "uringbpf" / "bpf" / "verifier"
PACKAGE = "uringbpf.bpf.verifier"


def _core_module():
    """``uringbpf.bpf.verifier.core`` loaded by path: the module list and
    the source hash, shared with the run-time selection."""
    # core.py raises uringbpf.errors.CoreError: the source tree must be importable
    sys.path.insert(0, str(ROOT / "src"))
    spec = importlib.util.spec_from_file_location("_uringbpf_verifier_core", VERIFIER / "core.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CORE = _core_module()

#: Cython directives per module.  scalar.py's ``int`` annotations would make Cython check
#: (and its .pxd declare) exact ``int`` arguments; the domain takes Python ints untyped.
DIRECTIVES = {"scalar": {"annotation_typing": False}}
#: appended to Python's CFLAGS (-O3 -g): -O2 without debug info compiles in half the time
CFLAGS = os.environ.get("URINGBPF_CORE_CFLAGS", "-O2 -g0").split()


class BuildCore(build_ext):
    """build_ext that records the source hash next to the compiled modules."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:   # the modules compile independently: use every core
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        if not self.extensions:
            return super().run()
        out = pathlib.Path(self.get_ext_fullpath(self.extensions[0].name)).parent
        out.mkdir(parents=True, exist_ok=True)   # not a package: nothing else creates it
        super().run()
        (out / CORE.HASH_FILE).write_text(CORE.source_hash(VERIFIER) + "\n")

    def get_outputs(self) -> list[str]:
        outputs = super().get_outputs()
        if self.extensions:
            out = pathlib.Path(self.get_ext_fullpath(self.extensions[0].name)).parent
            outputs.append(str(out / CORE.HASH_FILE))
        return outputs


def _extensions() -> list[Extension]:
    if os.environ.get("URINGBPF_BUILD_CORE", "1") == "0":
        return []
    from Cython.Build import cythonize  # a build-time requirement (pyproject build-system)

    exts = []
    for name in CORE.COMPILED_MODULES:
        source = Extension(f"{PACKAGE}.{name}", [str((VERIFIER / f"{name}.py").relative_to(ROOT))],
                           extra_compile_args=CFLAGS)
        exts += cythonize([source], build_dir="build/cython", quiet=True, language_level=3,
                          include_path=[str(ROOT / "src")], compiler_directives=DIRECTIVES.get(name, {}))
    for ext in exts:   # same module name in the C code, built into _compiled/
        ext.name = f"{PACKAGE}.{CORE.COMPILED_DIR}.{ext.name.rsplit('.', 1)[1]}"
    return exts


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildCore})
