"""What every workload module of `uringbpf compare` shares: results, counters, the C build.

An implementation is a function ``impl(params, ctx) -> Measure``. It sets up (ring,
program load, JIT, files) *outside* the measured window, runs the workload inside
:meth:`Ctx.measure`, checks its own output and raises :class:`WrongOutput` when it is
wrong (the run is then reported as wrong, never timed), or :class:`CannotExpress` with
the reason when the design cannot express the workload (or no program for it exists).

Counters kept here (docs/compare.md):

* ``enters``: io_uring_enter calls. Python-side ones are counted by wrapping
  ``uringbpf.uring.syscalls.io_uring_enter`` during the run (every Ring/backend enter
  goes through it); ``Ring.fast()`` keeps its own count; the C program counts its
  submit/wait calls. Native design drivers that emulate an in-kernel loop make further
  enters of their own inside that one call: those are *not* counted (the kernel would
  not make them), and the table says so.
* ``pycalls``: Python-level calls (``call`` + ``c_call`` profile events, all threads)
  during the run, from a separate profiled run that is verified but not timed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..bpf import engines
from ..uring import syscalls

HERE = Path(__file__).resolve().parent


class CannotExpress(Exception):
    """The design cannot express this workload (or no program for it exists): the reason."""


class WrongOutput(Exception):
    """The implementation ran but its output is wrong (bytes, echo or checksum)."""


@dataclass
class Measure:
    """One run: ``ops`` operations (the workload defines what one is) and ``nbytes`` moved
    in ``secs`` wall time, ``cpu`` process CPU seconds (all threads), ``enters`` counted
    io_uring_enter calls; ``note`` is free text for the table (e.g. short reads seen)."""
    ops: int
    nbytes: int = 0
    secs: float = 0.0
    cpu: float = 0.0
    enters: int | None = None
    pycalls: int | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


class Ctx:
    """Per-run context: the work directory, quick flag, and the measuring window."""

    def __init__(self, workdir: Path, quick: bool, profile: bool):
        self.workdir = workdir
        self.quick = quick
        self.profile = profile
        self.enters = 0
        self.pycalls = 0
        self.secs = self.cpu = 0.0

    def measure(self) -> "_Window":
        """``with ctx.measure():`` wraps exactly the I/O loop of an implementation."""
        return _Window(self)


class _Window:
    def __init__(self, ctx: Ctx):
        self.ctx = ctx

    def __enter__(self) -> Ctx:
        ctx = self.ctx
        self._orig = syscalls.io_uring_enter

        def counting(*args: Any, **kw: Any) -> int:
            ctx.enters += 1
            return self._orig(*args, **kw)

        syscalls.io_uring_enter = counting
        if ctx.profile:
            counter = [0]

            def prof(frame: Any, event: str, arg: Any) -> None:
                if event == "call" or event == "c_call":
                    counter[0] += 1

            self._counter = counter
            threading.setprofile(prof)
            sys.setprofile(prof)
        self._t0, self._c0 = time.perf_counter(), time.process_time()
        return ctx

    def __exit__(self, *exc: Any) -> None:
        ctx = self.ctx
        ctx.secs += time.perf_counter() - self._t0
        ctx.cpu += time.process_time() - self._c0
        if ctx.profile:
            sys.setprofile(None)
            threading.setprofile(None)   # type: ignore[arg-type]
            ctx.pycalls += self._counter[0]
        syscalls.io_uring_enter = self._orig


_COUNTED: Any = object()


def finish(ctx: Ctx, ops: int, nbytes: int = 0, *, enters: Any = _COUNTED,
           note: str = "", **extra: Any) -> Measure:
    """The :class:`Measure` of a Python-driven run measured with ``ctx.measure()``
    (``enters``: the counted ones by default; a number; or None = not countable)."""
    if enters is _COUNTED:
        enters = ctx.enters
    return Measure(ops, nbytes, ctx.secs, ctx.cpu, enters,
                   ctx.pycalls if ctx.profile else None, note, extra)


# ---------------------------------------------------------------------- C programs
def have_liburing() -> str | None:
    """None when C liburing programs can be built, else why not."""
    if not (shutil.which("cc") or shutil.which("gcc")):
        return "no C compiler (cc)"
    if not Path("/usr/include/liburing.h").exists():
        return "liburing headers missing (apt-get install liburing-dev)"
    return None


_cbench_lock = threading.Lock()


def cbench() -> Path:
    """cbench.c compiled with ``cc -O2 -luring`` (cached by source hash)."""
    why = have_liburing()
    if why:
        raise CannotExpress(f"C liburing not available: {why}")
    src = HERE / "cbench.c"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "uringbpf"
    exe = base / f"cbench-{digest}"
    with _cbench_lock:
        if not exe.exists():
            base.mkdir(parents=True, exist_ok=True)
            cc = shutil.which("cc") or shutil.which("gcc")
            tmp = exe.with_suffix(f".tmp{os.getpid()}")
            proc = subprocess.run([cc, "-O2", "-Wall", "-o", str(tmp), str(src), "-luring"],
                                  capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"building cbench.c failed:\n{proc.stderr}")
            os.replace(tmp, exe)
    return exe


def run_c(args: list[str], *, stdin: Any = None) -> dict:
    """Run cbench with ``args``; its JSON line as a dict (a failure raises WrongOutput)."""
    proc = subprocess.run([str(cbench()), *args], stdin=stdin, capture_output=True, text=True)
    if proc.returncode:
        raise WrongOutput(f"cbench {' '.join(args)} exited {proc.returncode}: "
                          f"{proc.stderr.strip()[:200]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def c_measure(out: dict, **extra: Any) -> Measure:
    """A :class:`Measure` from cbench's JSON line (its own clocks and enter count)."""
    return Measure(out["ops"], out["bytes"], out["secs"], out["cpu"], out["enters"], 0,
                   extra.pop("note", ""), extra)


#: examples/python (the Python-authored programs, #18) as this package sees them: in a
#: source checkout ``python_examples`` is a symlink to the repository's examples/python;
#: a built wheel holds a copy (package data), so an installed ``uringbpf compare`` has them.
PYTHON_EXAMPLES = Path(__file__).resolve().parent / "python_examples"


def examples_python() -> Path:
    """The folder of the Python-authored example programs (examples/python)."""
    return PYTHON_EXAMPLES


def load_example(name: str) -> Any:
    """Import examples/python/<name>.py under its own module name (as bench/ does);
    :class:`~uringbpf.bpf.engines.JitUnavailableError` without llvmlite (they compile
    with uringbpf.lang)."""
    engines.require_llvmlite(f"examples/python/{name}.py (a program written in Python)")
    mod_name = f"uringbpf_example_py_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, examples_python() / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    spec.loader.exec_module(mod)
    return mod


Impl = Callable[[dict, Ctx], Measure]
