"""Every public name under src/ has a docstring (issue #16: help() must explain the API).

Public means: a module whose path has no ``_private`` part, a module-level function or
class whose name does not start with ``_`` (and is in ``__all__`` when the module defines
one), and the public methods of such classes (property setters/deleters and
``typing.overload`` stubs share the docstring of what they belong to). Found by parsing
the sources, so example scripts are checked without running them.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "uringbpf"


def _shares_docstring(fn: ast.AST) -> bool:
    for d in getattr(fn, "decorator_list", []):
        if isinstance(d, ast.Attribute) and d.attr in ("setter", "deleter"):
            return True
        if isinstance(d, ast.Name) and d.id == "overload":
            return True
    return False


def _module_all(tree: ast.Module) -> set[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            try:
                return set(ast.literal_eval(node.value))
            except ValueError:      # built dynamically: every public name counts
                return None
    return None


def public_callables(root: Path = SRC) -> list[tuple[str, bool]]:
    """``(where, has_docstring)`` for every public function, class and method under ``root``."""
    out = []
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        if any(p.startswith("_") and p not in ("__init__.py", "__main__.py") for p in rel.parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exported = _module_all(tree)
        for node in tree.body:
            if not isinstance(node, defs) or node.name.startswith("_"):
                continue
            if (exported is not None and node.name not in exported) or _shares_docstring(node):
                continue
            out.append((f"{rel}:{node.lineno} {node.name}", ast.get_docstring(node) is not None))
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if (isinstance(sub, defs[:2]) and not sub.name.startswith("_")
                            and not _shares_docstring(sub)):
                        out.append((f"{rel}:{sub.lineno} {node.name}.{sub.name}",
                                    ast.get_docstring(sub) is not None))
    return out


def test_every_public_callable_has_a_docstring():
    found = public_callables()
    assert len(found) > 500                      # the walk really saw the package
    missing = [where for where, documented in found if not documented]
    assert not missing, f"{len(missing)} public names without a docstring:\n" + "\n".join(missing)


def test_the_counter_sees_a_missing_docstring(tmp_path):
    pkg = tmp_path / "uringbpf"
    pkg.mkdir()
    (pkg / "mod.py").write_text('def documented():\n    """Yes."""\n\n\ndef bare():\n    pass\n\n\n'
                                'class K:\n    """K."""\n\n    def m(self):\n        return 1\n\n'
                                '    @property\n    def p(self):\n        """P."""\n\n'
                                '    @p.setter\n    def p(self, v):\n        pass\n')
    (pkg / "_private.py").write_text("def hidden():\n    pass\n")
    found = dict(public_callables(pkg))
    assert [w for w, ok in found.items() if not ok] == ["uringbpf/mod.py:5 bare",
                                                       "uringbpf/mod.py:12 K.m"]
