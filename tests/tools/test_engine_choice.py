"""The engine decision (uringbpf.bpf.engines) with and without llvmlite, the [jit] extra.

"Without llvmlite" runs in a child process where ``sys.modules["llvmlite"] = None``: the
import system then reports the package as absent (``find_spec`` returns None, ``import``
raises ModuleNotFoundError), as in a venv that never installed the extra.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from uringbpf.bpf import engines

# a child Python where llvmlite is not importable, running `code`
_NO_LLVMLITE = "import sys; sys.modules['llvmlite'] = None\n"


def _without_llvmlite(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _NO_LLVMLITE + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout)


def test_resolve_with_llvmlite_installed(monkeypatch):
    monkeypatch.delenv("URINGBPF_JIT_TIER", raising=False)
    assert engines.jit_available()
    assert engines.resolve(None) == engines.resolve("auto") == engines.default_engine() == "jit"
    assert engines.resolve("interp") == "interp" and engines.resolve("jit") == "jit"
    assert engines.describe().startswith("jit (tier auto: direct x86-64 code, LLVM through "
                                         "llvmlite ")
    assert engines.describe("interp").startswith("interp")
    for bad in ("JIT", "native", "", "kernel"):
        with pytest.raises(ValueError):
            engines.resolve(bad)


def test_without_llvmlite_auto_is_the_interpreter_and_jit_is_a_clear_error(socket_obj):
    proc = _without_llvmlite(f"""
        from uringbpf import BpfObject
        from uringbpf.bpf import engines
        assert not engines.jit_available()
        assert engines.resolve(None) == engines.resolve("auto") == "interp"
        assert "llvmlite is not installed" in engines.describe()
        try:
            engines.resolve("jit")
        except engines.JitUnavailableError as exc:
            assert "pip install 'uringbpf[jit]'" in str(exc), exc
            assert isinstance(exc, ImportError) and exc.name == "llvmlite"
        else:
            raise AssertionError("engine='jit' without llvmlite did not raise")
        # load() without engine= runs on the interpreter; engine="jit" refuses before work
        obj = BpfObject.open({str(socket_obj)!r})
        for prog in obj.programs.values():
            prog.autoload = prog.name == "sum8"
        obj.load()
        assert obj.programs["sum8"].engine == "interp"
        obj.close()
        obj = BpfObject.open({str(socket_obj)!r})
        try:
            obj.load(engine="jit")
        except engines.JitUnavailableError:
            pass
        else:
            raise AssertionError("load(engine='jit') without llvmlite did not raise")
        # the JIT module is never imported
        assert "uringbpf.bpf.jit" not in sys.modules
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_without_llvmlite_python_programs_say_what_to_install():
    proc = _without_llvmlite("import uringbpf.lang")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("uringbpf.errors.JitUnavailableError: uringbpf.lang"), last
    assert "pip install 'uringbpf[jit]'" in last and "No module named" not in proc.stderr


def test_without_llvmlite_the_cli_reports_jit_in_one_line(socket_obj):
    run = ["run", str(socket_obj), "--prog", "sum8"]
    for args, status in ((run + ["--jit"], 1), (run, 0),
                         (["demo", "--engine", "jit", "--only", "copy"], 1)):
        proc = _without_llvmlite(f"""
            from uringbpf.tools import main
            sys.exit(main({args!r}))
        """)
        assert proc.returncode == status, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr
        if status:
            assert proc.stderr.strip().endswith("pip install 'uringbpf[jit]' (or run on "
                                                "engine='interp')"), proc.stderr
        else:
            assert "engine: interp" in proc.stdout, proc.stdout     # uringbpf run's summary


def test_demo_says_which_engine_runs_the_programs():
    """The loop section (BPF programs) on the interpreter when llvmlite is missing."""
    proc = _without_llvmlite("""
        from uringbpf.tools import main
        sys.exit(main(["demo", "--only", "loop"]))
    """, timeout=280)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("engine: interp (") and "uringbpf[jit]" in first, first
    assert "engine=interp" in proc.stdout and "engine=jit" not in proc.stdout
    assert "identical: yes" in proc.stdout and "matches Python: yes" in proc.stdout


def test_without_llvmlite_every_command_is_one_line_or_works(tmp_path):
    """Commands that reach the JIT indirectly: the conformance plugin runs on the
    interpreter (its default) and reports --jit in its protocol's one line; bench, which
    times the JIT, says what to install."""
    prog = "b7 00 00 00 2a 00 00 00 95 00 00 00 00 00 00 00"     # r0 = 42; exit
    for args, status, out_want in ((["conformance-plugin", "--program", prog], 0, "2a"),
                                   (["conformance-plugin", "--jit", "--program", prog], 1,
                                    "uringbpf[jit]"),
                                   (["bench", "compute"], 1, "")):
        proc = _without_llvmlite(f"""
            from uringbpf.tools import main
            sys.exit(main({args!r}))
        """)
        assert proc.returncode == status, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and "No module named" not in proc.stderr
        assert out_want in proc.stdout
        if args[0] == "bench":
            assert proc.stderr.strip().startswith("uringbpf bench: ") and \
                "pip install 'uringbpf[jit]'" in proc.stderr, proc.stderr
