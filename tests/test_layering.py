"""The import structure of src/ (issue #12): layers, no cycles, cheap imports.

Parses every module of src/uringbpf with :mod:`ast` (nothing is imported to check it):

* lower layers never import higher ones: ``uring/`` and ``bpf/`` import nothing from
  ``designs/``, ``tools/``, ``demo``, ``lang/``, ``aio`` or the default platform
  (``uringbpf.platform``); ``designs/`` imports none of tools/demo/lang/aio/platform;
* no import cycle between modules (module-level imports; a package's ``__init__`` and the
  modules it re-exports count as one node only when the edge goes package -> child);
* ``import uringbpf`` and loading a socket filter import no design module and compile no C.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "uringbpf"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py") if "examples" not in p.parts}


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".")
    if not is_pkg:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _type_checking_only(node: ast.stmt) -> bool:
    """``if TYPE_CHECKING:`` blocks are never executed: not a run-time import."""
    return isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) \
        == "TYPE_CHECKING"


def _imports(module_level_only: bool) -> dict[str, set[str]]:
    """module -> the uringbpf modules it imports."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        nodes = tree.body if module_level_only else list(ast.walk(tree))
        if module_level_only:   # also imports under module-level if/try (not in functions)
            nodes = [n for top in tree.body if not isinstance(top, (ast.FunctionDef, ast.ClassDef,
                                                                       ast.AsyncFunctionDef))
                     and not _type_checking_only(top) for n in ast.walk(top)]
        out: set[str] = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(mod, path.name == "__init__.py", node)
                names = [f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target
                         for a in node.names]
            else:
                continue
            for name in names:
                while name and name not in mods:
                    name = name.rpartition(".")[0]
                if name.startswith("uringbpf") and name != mod:
                    out.add(name)
        graph[mod] = out
    return graph


HIGHER = ("uringbpf.designs", "uringbpf.tools", "uringbpf.demo", "uringbpf.lang",
          "uringbpf.aio", "uringbpf.platform")


def _is(mod: str, prefix: str) -> bool:
    return mod == prefix or mod.startswith(prefix + ".")


@pytest.mark.parametrize("lower,forbidden", [
    ("uringbpf.uring", HIGHER + ("uringbpf.bpf",)),
    ("uringbpf.bpf", HIGHER),
    ("uringbpf.native", HIGHER + ("uringbpf.bpf", "uringbpf.uring")),
    ("uringbpf.errors", ("uringbpf.",)),
    ("uringbpf.designs", ("uringbpf.tools", "uringbpf.demo", "uringbpf.lang", "uringbpf.aio",
                          "uringbpf.platform")),
])
def test_no_import_from_a_higher_layer(lower, forbidden):
    bad = sorted(f"{m} -> {t}" for m, targets in _imports(False).items() if _is(m, lower)
                 for t in targets if any(_is(t, f.rstrip(".")) or t.startswith(f) for f in forbidden)
                 and not _is(t, lower))
    assert bad == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    """Module-level imports form no cycle (the implicit "importing p.sub runs p/__init__"
    is not an edge; a written ``p.sub -> p`` import is)."""
    assert _cycles(_imports(True)) == []


def _run_isolated(code: str, tmp_path: Path) -> str:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=str(SRC))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_uringbpf_imports_no_design_and_compiles_nothing(tmp_path):
    out = _run_isolated("import sys, uringbpf\n"
                        "print(sorted(m for m in sys.modules if m.startswith('uringbpf.designs')))",
                        tmp_path)
    assert out.strip() == "[]"
    assert not list((tmp_path / "cache").rglob("*.so"))


def test_loading_a_socket_filter_imports_no_design_and_compiles_no_design_c(tmp_path):
    src = tmp_path / "filter.bpf.c"
    src.write_text('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
                   'SEC("socket") int f(struct __sk_buff *skb) { return 0; }\n'
                   'char LICENSE[] SEC("license") = "GPL";\n')
    obj = tmp_path / "filter.bpf.o"
    from uringbpf.bpf import cc
    cc.compile_c(src, obj)
    out = _run_isolated(
        "import sys\nfrom uringbpf import BpfObject\n"
        f"o = BpfObject.open({str(obj)!r}); o.load(engine='interp')\n"
        "print(o.programs['f'](0, 0))\n"
        "print(sorted(m for m in sys.modules if m.startswith('uringbpf.designs')))", tmp_path)
    assert out.split("\n")[:2] == ["0", "[]"]
    design_c = {p.stem for p in PKG.glob("designs/*/*.c")}
    built = {p.name.rsplit("-", 1)[0] for p in (tmp_path / "cache").rglob("*.so")}
    assert not built & design_c, built


def test_loading_a_loop_program_imports_the_loop_design_on_demand(tmp_path):
    """The other half: the default platform finds a design's kfunc without the user
    importing the design (behaviour unchanged for users)."""
    out = _run_isolated(
        "import sys\nfrom uringbpf.bpf.platform import default_platform\n"
        "p = default_platform()\n"
        "print(p.get_kfunc('bpf_io_uring_submit_sqes').name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('uringbpf.designs.')))", tmp_path)
    lines = out.split("\n")
    assert lines[0] == "bpf_io_uring_submit_sqes"
    assert "uringbpf.designs.loop" in lines[1] and "uringbpf.designs.ops" not in lines[1]


# --- tolerance code (issue #12): counted on 6142d5a with this same parser -----------------
#: ImportError handlers, imports inside functions, broad excepts under src/ on 6142d5a
BASELINE = {"import_error": 16, "in_function_import": 82, "broad_except": 39}


def _tolerance_sites() -> tuple[dict[str, int], list[tuple[str, Path, int]], list[str]]:
    """(counts, sites, own_import_fallbacks). ``counts`` is counted as on 6142d5a (an import
    in a nested function counts for each enclosing function); ``sites`` lists each
    occurrence once: (kind, file, line of the import or of the ``except``)."""
    counts = {"import_error": 0, "in_function_import": 0, "broad_except": 0}
    sites: set[tuple[str, Path, int]] = set()
    own_import_fallbacks = []
    for path in _modules().values():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Try):
                for h in node.handlers:
                    names = _handler_names(h)
                    if names & {"ImportError", "ModuleNotFoundError"}:
                        counts["import_error"] += 1
                        sites.add(("import_error", path, h.lineno))
                        for sub in node.body:
                            for imp in ast.walk(sub):
                                if isinstance(imp, ast.ImportFrom) and (imp.level or (imp.module or "").startswith("uringbpf")):
                                    own_import_fallbacks.append(f"{path.name}:{h.lineno}")
                    if names & {"Exception", "BaseException", "<bare>"}:
                        counts["broad_except"] += 1
                        sites.add(("broad_except", path, h.lineno))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(node):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        counts["in_function_import"] += 1
                        sites.add(("in_function_import", path, sub.lineno))
    return counts, sorted(sites), own_import_fallbacks


def _tolerance_counts() -> tuple[dict[str, int], list[str]]:
    counts, _, own = _tolerance_sites()
    return counts, own


def _handler_names(h: ast.ExceptHandler) -> set[str]:
    if h.type is None:
        return {"<bare>"}
    elts = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
    return {getattr(e, "id", getattr(e, "attr", "")) for e in elts}


def test_no_import_fallback_wraps_our_own_modules():
    counts, own = _tolerance_counts()
    assert own == []
    assert counts["import_error"] <= BASELINE["import_error"] // 5    # cut by >= 80 %


def test_no_silent_broad_except_pass():
    """``except Exception: pass`` (or BaseException, or bare) hides failures: none left."""
    silent = []
    for path in _modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler) and \
                    _handler_names(node) & {"Exception", "BaseException", "<bare>"} and \
                    all(isinstance(s, ast.Pass) for s in node.body):
                silent.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert silent == []


#: Ceilings: each kind cut by at least 80 % against BASELINE (issue #12, "Done when").
CEILING = {kind: BASELINE[kind] // 5 for kind in BASELINE}

def test_tolerance_code_is_cut_by_80_percent():
    """ImportError handlers, in-function imports and broad excepts under src/: at most a
    fifth of 6142d5a's count each. Laziness has one mechanism per place (the JIT module in
    BpfObject.load, lang's per-design parts, the tools' heavy commands); C callbacks share
    one barrier (uringbpf.callbacks)."""
    counts, _, _ = _tolerance_sites()
    assert {k: v for k, v in counts.items() if v > CEILING[k]} == {}, (counts, CEILING)


def test_each_remaining_one_says_why_it_must_stay():
    """Every remaining in-function import, ImportError handler and broad except carries
    ``# why:`` on its line: what would break without it (a C frame it must not unwind,
    an import it must not pay for), so none quietly wraps our own code."""
    _, sites, _ = _tolerance_sites()
    silent = []
    for kind, path, line in sites:
        text = path.read_text().splitlines()[line - 1]
        if "# why:" not in text:
            silent.append(f"{kind} {path.relative_to(SRC)}:{line}: {text.strip()}")
    assert silent == []
