"""One exceptions module: every exception class uringbpf raises to its callers is defined in
uringbpf.errors, once (a second class of the same name elsewhere is not caught by an
``except`` that names the first — the JIT's own JitError slipped past BpfObject.load's
fallback that way)."""

from __future__ import annotations

import ast
import pathlib

import uringbpf.errors as errors

SRC = pathlib.Path(errors.__file__).resolve().parent

# Exceptions that never leave their module (caught where they are raised) or belong to a
# tool/example, not to the library's API.
INTERNAL = {
    ("bpf/verifier/cfg.py", "CfgError"),            # caught by explore.Verifier
    ("tools/common.py", "CommandError"),            # the CLI's exit-code plumbing
    ("tools/common.py", "UsageError"),
    ("designs/kbuf/examples/stripe/nbd.py", "NbdError"),   # an example program's own
    ("lang/appmode.py", "LangMemoryError"),          # IndexError of the application run
    ("demo.py", "DemoCheckFailed"),                  # the demo's exit status 1
    ("compare/common.py", "CannotExpress"),          # a cell of the compare table
    ("compare/common.py", "WrongOutput"),
}


def _exception_classes():
    for path in SRC.rglob("*.py"):
        rel = str(path.relative_to(SRC))
        if rel == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and (
                    node.name.endswith(("Error", "Exception", "Full"))
                    or any(getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Exception"))
                           for b in node.bases)):
                yield rel, node.name


def test_exception_classes_live_in_errors():
    outside = {c for c in _exception_classes() if c not in INTERNAL}
    assert outside == set(), "define these in uringbpf/errors.py and re-export them"


def test_no_two_exception_classes_share_a_name():
    names = [name for _, name in _exception_classes()]
    clash = {n for n in names if n in errors.__all__ or names.count(n) > 1}
    assert clash == set()


def test_jit_raises_the_errors_module_class():
    from uringbpf.bpf import jit_codegen
    assert jit_codegen.JitError is errors.JitError


def test_every_public_error_derives_from_the_base():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.UringBpfError), name
        assert cls.__doc__, name
