"""The compiled verifier core (verifier/core.py, setup.py): chosen only when fresh, and
giving exactly the pure-Python verifier's verdicts, messages, logs and processed counts.

The equivalence test runs this file as a script twice, with ``URINGBPF_VERIFIER=pure`` and
``=compiled``, over the verifier corpus (log level 2: every message and state line, for the cases within
the default budget) and 210 seeded fuzz programs (random, grown to 20k instructions,
pruning-heavy, raw), and compares the dumps.  It fails, naming the state, when the compiled core is missing or stale: ``make
core`` (``make test`` does it) builds it.
"""

from __future__ import annotations

import ast
import importlib.machinery
import json
import os
import pathlib
import random
import re
import shutil
import subprocess
import sys

import pytest

from uringbpf.bpf import isa, verifier
from uringbpf.bpf.verifier import core

HERE = pathlib.Path(__file__).resolve().parent
SRC = pathlib.Path(core.__file__).resolve().parent


def _fake_tree(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the compiled modules' sources (and .pxd files), no build."""
    for path in core.source_files(SRC):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def _fake_build(src: pathlib.Path, suffix: str) -> None:
    """What setup.py leaves: one file per module (contents irrelevant to the check) and
    the recorded hash."""
    out = src / core.COMPILED_DIR
    out.mkdir()
    for name in core.COMPILED_MODULES:
        (out / f"{name}{suffix}").write_bytes(b"")
    (out / core.HASH_FILE).write_text(core.source_hash(src) + "\n")


def test_build_states(tmp_path):
    src = _fake_tree(tmp_path)
    assert core.build_state(src) == core.NOT_BUILT
    _fake_build(src, importlib.machinery.EXTENSION_SUFFIXES[0])
    assert core.build_state(src) == core.COMPILED
    # a one-byte edit of any compiled module's source makes the build stale
    first = src / f"{core.COMPILED_MODULES[0]}.py"
    first.write_text(first.read_text() + "\n")
    assert core.build_state(src) == core.STALE


def test_pxd_edit_makes_the_build_stale(tmp_path):
    src = _fake_tree(tmp_path)
    pxds = sorted(src.glob("*.pxd"))
    assert pxds, "the compiled core's type declarations are part of its sources"
    _fake_build(src, importlib.machinery.EXTENSION_SUFFIXES[0])
    pxds[0].write_text(pxds[0].read_text() + "# edited\n")
    assert core.build_state(src) == core.STALE


def test_build_for_another_python_is_not_used(tmp_path):
    src = _fake_tree(tmp_path)
    _fake_build(src, ".cpython-39-x86_64-linux-gnu.so")
    assert core.build_state(src) == core.OTHER_PYTHON


def _select_in_subprocess(mode: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, URINGBPF_VERIFIER=mode)
    code = ("from uringbpf.bpf import verifier; from uringbpf.bpf.verifier import explore;"
            "print(verifier.CORE); print(explore.__file__)")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_pure_request_runs_the_source_modules():
    out = _select_in_subprocess("pure")
    assert out.returncode == 0, out.stderr
    state, explore_file = out.stdout.split("\n")[:2]
    assert state == core.PURE_REQUESTED
    assert explore_file == str(SRC / "explore.py")


def test_bad_mode_is_an_error():
    out = _select_in_subprocess("fast")
    assert out.returncode != 0 and "CoreError" in out.stderr and "'fast'" in out.stderr


def test_compiled_request_runs_the_compiled_modules_or_fails():
    out = _select_in_subprocess("compiled")
    if core.build_state(SRC) == core.COMPILED:
        assert out.returncode == 0, out.stderr
        state, explore_file = out.stdout.split("\n")[:2]
        assert state == core.COMPILED
        assert pathlib.Path(explore_file).parent == SRC / core.COMPILED_DIR
    else:   # never a silent fallback when the compiled core was asked for
        assert out.returncode != 0 and "CoreError" in out.stderr


def test_session_core_is_the_selected_one():
    assert verifier.CORE == core.STATE
    compiled = pathlib.Path(verifier.explore.__file__).parent == SRC / core.COMPILED_DIR
    assert compiled == (verifier.CORE == core.COMPILED)


def _pxd_classes(pxd: pathlib.Path) -> dict[str, set[str]]:
    """``cdef class`` name -> the attribute names its ``cdef public`` lines declare."""
    classes: dict[str, set[str]] = {}
    current = None
    for line in pxd.read_text().splitlines():
        m = re.match(r"cdef class (\w+)", line)
        if m:
            current = classes.setdefault(m.group(1), set())
        elif current is not None and (m := re.match(r"\s+cdef public \w+ (.*)", line)):
            current.update(name.strip() for name in m.group(1).split(","))
        elif line and not line[0].isspace():
            current = None
    return classes


def _py_slots(py: pathlib.Path) -> dict[str, set[str]]:
    """class name -> its ``__slots__`` names, read from the source."""
    slots = {}
    for node in ast.parse(py.read_text()).body:
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                        and getattr(stmt.targets[0], "id", "") == "__slots__"):
                    slots[node.name] = set(ast.literal_eval(stmt.value))
    return slots


@pytest.mark.parametrize("module", [m for m in core.COMPILED_MODULES
                                    if (SRC / f"{m}.pxd").exists()])
def test_pxd_classes_declare_the_slots(module):
    """An extension type has no attribute its .pxd does not declare: a slot added to a
    class in the .py must be declared in the .pxd too, or the compiled core breaks."""
    declared = _pxd_classes(SRC / f"{module}.pxd")
    slots = _py_slots(SRC / f"{module}.py")
    for name, attrs in declared.items():
        if name in _VERIFIER_CHAIN:
            continue    # no __slots__: test_verifier_chain_declares_its_attributes
        assert attrs == slots.get(name), f"{module}.pxd: cdef class {name} vs {module}.py __slots__"


#: the verifier's class chain (module, class): Verifier(TransferMixin(MemoryMixin(CallsMixin)))
_VERIFIER_CHAIN = {"Verifier": "explore", "TransferMixin": "transfer", "MemoryMixin": "memory",
                   "CallsMixin": "calls"}


def _self_assigned(py: pathlib.Path, cls: str) -> set[str]:
    """Attribute names ``self.X`` assigned (``=``, ``+=``, annotated) in class ``cls``."""
    names = set()
    for node in ast.parse(py.read_text()).body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for sub in ast.walk(node):
                targets = (sub.targets if isinstance(sub, ast.Assign) else
                           [sub.target] if isinstance(sub, (ast.AugAssign, ast.AnnAssign)) else [])
                for t in targets:
                    if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                            and t.value.id == "self"):
                        names.add(t.attr)
    return names


def test_verifier_chain_declares_its_attributes():
    """The verifier's classes are extension types without an instance ``__dict__`` in the
    compiled core: every attribute any of them assigns must be declared in calls.pxd (the
    chain's base), and the others declare none (one place to look)."""
    assigned = set()
    for cls, module in _VERIFIER_CHAIN.items():
        assigned |= _self_assigned(SRC / f"{module}.py", cls)
        if cls != "CallsMixin":
            assert not _pxd_classes(SRC / f"{module}.pxd").get(cls), f"{module}.pxd: {cls}"
    declared = _pxd_classes(SRC / "calls.pxd")["CallsMixin"]
    assert assigned and assigned <= declared, sorted(assigned - declared)


def test_pxd_declares_the_state_classes():
    assert set(_pxd_classes(SRC / "state.pxd")) >= {"Reg", "Frame", "State", "ObjSlot"}
    assert "_Checkpoint" in _pxd_classes(SRC / "common.pxd")



@pytest.mark.parametrize("module", [m for m in core.COMPILED_MODULES
                                    if (SRC / f"{m}.pxd").exists()])
def test_pxd_functions_are_defined(module):
    """A module-level ``cpdef`` in a .pxd names a function its .py defines: a function
    removed or renamed in the .py (scalar.py's domain changes often) must leave the .pxd
    too, or the compiled core does not build ("declared but not defined")."""
    tree = ast.parse((SRC / f"{module}.py").read_text())
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    declared = set()
    for line in (SRC / f"{module}.pxd").read_text().splitlines():
        m = re.match(r"cpdef (?:[\w\[\]]+ )?(\w+)\(", line)   # module level: no indent
        if m:
            declared.add(m.group(1))
    assert declared <= defined, sorted(declared - defined)


# ------------------------------------------------------------ equivalence


def _dump() -> list:
    """Verdict, message, processed count and log of every case (run as a script)."""
    sys.path.insert(0, str(HERE))
    import corpus_lib
    import fuzzgen

    corpus_lib.register_test_env()
    rows: list = [verifier.CORE]
    for case in corpus_lib.load_corpus():
        if case.name == "crc32c_bitwise_1024_bytes":   # crc32c_bitwise_8_bytes hits the same
            continue                                   # 1M limit: 3 s less per core
        # every state line of the small cases; verdict and closing lines of the big ones
        level = 2 if case.budget <= 50_000 else 0
        try:
            res = verifier.verify(case.program(), log_level=level, max_insns=case.budget)
            rows.append([case.name, "ok", res.stats_line(), res.log])
        except verifier.BpfVerifierError as exc:
            rows.append([case.name, exc.message, exc.log])
    rng = random.Random(19)
    makers = [fuzzgen.random_program, fuzzgen.pruning_program, fuzzgen.raw_program,
              fuzzgen.random_program, fuzzgen.pruning_program, fuzzgen.raw_program,
              fuzzgen.grown_program]       # grown programs are the slow ones: 1 in 7
    for i in range(210):
        insns = makers[i % len(makers)](rng)
        prog = isa.Program("fuzz", insns, section="socket",
                           maps=[fuzzgen.RunMap("fuzz", 2, 4, fuzzgen.VALUE_SIZE, 1)])
        try:
            res = verifier.verify(prog, log_level=1, max_insns=20_000)
            rows.append([i, "ok", res.stats_line(), res.log])
        except verifier.BpfVerifierError as exc:
            rows.append([i, exc.message, exc.log])
    return rows


def _run_dump(mode: str, out: pathlib.Path) -> list:
    env = dict(os.environ, URINGBPF_VERIFIER=mode)
    proc = subprocess.run([sys.executable, __file__, str(out)], env=env, cwd=HERE,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


# ~650 programs verified by two interpreters: ~15 s of CPU, but minutes of wall time on a
# 2-core machine loaded by other suites (the suite's 300 s default was hit at load 10)
@pytest.mark.timeout(900)
def test_compiled_core_matches_pure_python(tmp_path):
    state = core.build_state(SRC)
    if state != core.COMPILED:
        pytest.fail(f"the compiled verifier core is {state}")
    pure = _run_dump("pure", tmp_path / "pure.json")
    compiled = _run_dump("compiled", tmp_path / "compiled.json")
    assert pure[0] == core.PURE_REQUESTED and compiled[0] == core.COMPILED
    assert len(pure) == len(compiled) > 500
    assert sum(row[1] == "ok" for row in pure) > 100      # both verdicts well represented
    assert sum(row[1] != "ok" for row in pure) > 100
    for p, c in zip(pure[1:], compiled[1:]):
        assert p == c, p[0]


if __name__ == "__main__":
    pathlib.Path(sys.argv[1]).write_text(json.dumps(_dump()))
