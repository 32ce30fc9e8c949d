"""Run one program on a data buffer, like ``bpftool prog run`` (``uringbpf run``).

Only programs whose context is a data buffer can run this way (socket filters,
``syscall`` programs, raw bytecode); like ``bpftool prog run`` on a type without a test
run, other types (struct_ops members, io_uring programs...) are refused, because their
context holds pointers that a data buffer would let the caller forge.

The program gets the buffer socket-filter style (r1 = pointer, r2 = length, see
``progtypes`` "buffer" context), runs ``--repeat`` times on the same buffer, and the
command prints its return value and the average duration of one run in nanoseconds.

Runs are timed from native code (``jitrt_repeat`` in ``native/jitrt.c`` calls the entry
address in a loop), so the figure is the engine's cost, comparable with the kernel's
``BPF_PROG_TEST_RUN`` duration, and not the cost of a ctypes call from Python. The loop
runs in chunks of about 0.1 s so Ctrl-C is honoured between chunks.

JIT tiers (docs/jit.md "Two tiers"): with the ``auto`` tier a load runs the direct x86-64
code at once and switches to LLVM's code when a background thread has compiled it, maybe
in the middle of the timed runs. :class:`RunResult` says which code ran (``code``), and
``wait_llvm=True`` waits for the switch before the first run, so that every timed run is
LLVM's code.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import native
from . import engines, progtypes
from .memory import Buffer
from .object import BpfObject

__all__ = ["time_native", "RunResult", "run_program", "MAX_DATA_SIZE", "MAX_REPEAT"]

_CHUNK_SECONDS = 0.1

#: Largest data buffer :func:`run_program` accepts (1 GiB; the kernel's test run caps far lower).
MAX_DATA_SIZE = 1 << 30
#: Largest run count, the kernel's: ``BPF_PROG_TEST_RUN``'s ``repeat`` is a u32.
MAX_REPEAT = (1 << 32) - 1


def _set_repeat_prototype(lib: ctypes.CDLL) -> None:
    fn = lib.jitrt_repeat
    fn.restype = ctypes.c_uint64
    fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64), ctypes.c_uint64,
                   ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64),
                   ctypes.POINTER(ctypes.c_uint64)]


def _jitrt():
    return native.load("jitrt", configure=_set_repeat_prototype).jitrt_repeat


def time_native(entry_address: int, args: tuple[int, ...], repeat: int,
                error_address: int = 0,
                between_chunks: Callable[[], None] | None = None) -> tuple[int, int, int]:
    """Call ``entry_address(args)`` ``repeat`` times from C; return (r0, runs, total ns).

    Stops early when the u64 at ``error_address`` (a JIT context's error word) becomes
    non-zero. Runs in chunks so a KeyboardInterrupt is seen within ~0.1 s;
    ``between_chunks`` may raise to stop (the interpreter's parked exception).
    """
    repeat_fn = _jitrt()
    argv = (ctypes.c_uint64 * 5)(*[(a & ((1 << 64) - 1)) for a in (tuple(args) + (0,) * 5)[:5]])
    r0 = ctypes.c_uint64()
    ns = ctypes.c_uint64()
    total_ns = 0
    runs = 0
    chunk = 1
    last = 0
    while runs < repeat:
        n = min(chunk, repeat - runs)
        done = repeat_fn(entry_address, argv, n, error_address or None, ctypes.byref(r0),
                         ctypes.byref(ns))
        runs += done
        total_ns += ns.value
        last = r0.value
        if done < n:
            break
        if between_chunks is not None:
            between_chunks()
        # Grow the chunk towards ~_CHUNK_SECONDS of work.
        per_run = max(ns.value / max(done, 1), 1.0)
        chunk = max(1, min(chunk * 8, int(_CHUNK_SECONDS * 1e9 / per_run)))
    return last, runs, total_ns


@dataclass
class RunResult:
    """What :func:`run_program` measured: r0 of the last run, runs done, their total
    duration in ns, the engine used ("jit" or "interp"), the buffer after the runs and
    which JIT code ran."""

    retval: int
    runs: int
    total_ns: int
    engine: str
    data_out: bytes
    #: the JIT code that ran: "direct", "llvm", or "direct+llvm" when the background switch
    #: to LLVM's code came during the runs (the duration then mixes both); "" for interp
    code: str = ""

    @property
    def avg_ns(self) -> float:
        """Average duration of one run in ns (0 when nothing ran)."""
        return self.total_ns / self.runs if self.runs else 0.0


def run_program(obj_path: str | Path, prog_name: str | None, data: bytes, repeat: int = 1,
                engine: str = "jit", strict_engine: bool = False, verify: bool = True,
                checked: bool = False, jit_tier: str | None = None,
                wait_llvm: bool = False, opened: BpfObject | None = None) -> RunResult:
    """Open ``obj_path``, load only ``prog_name`` with ``engine`` and run it on ``data``.

    ``prog_name`` may be None when the object has one program. Raises ValueError for a
    bad ``repeat``/``data`` size or an unknown program, :class:`ProgTypeError` when the
    program's context is not a data buffer, and the loader's, verifier's and engines'
    errors as they come. ``jit_tier`` ("auto", "direct", "llvm", "tiered";
    default ``URINGBPF_JIT_TIER`` or "auto") chooses the JIT code; ``wait_llvm`` waits for
    the ``tiered`` tier's background LLVM compile before the runs (ValueError with another
    engine or tier, which never switch).  ``opened`` is ``obj_path`` already opened by the
    caller (``uringbpf run`` opens it to check the program name first), so it is not
    parsed twice; this call closes it in any case.
    """
    obj = opened
    try:
        _check_run_args(data, repeat, engine, jit_tier, wait_llvm)
        if obj is None:
            obj = BpfObject.open(obj_path)
        return _load_and_run(obj, obj_path, prog_name, data, repeat, engine, strict_engine,
                             verify, checked, jit_tier, wait_llvm)
    finally:
        if obj is not None:
            obj.close()


def _check_run_args(data: bytes, repeat: int, engine: str, jit_tier: str | None,
                    wait_llvm: bool) -> None:
    if not 1 <= repeat <= MAX_REPEAT:
        raise ValueError(f"repeat must be between 1 and {MAX_REPEAT}")
    if len(data) > MAX_DATA_SIZE:
        raise ValueError(f"data is {len(data)} bytes; at most {MAX_DATA_SIZE} are supported")
    if jit_tier is not None:
        engines.jit_tier(jit_tier)          # JitTierError (a ValueError) before loading
    if wait_llvm and (engine == "interp" or engines.jit_tier(jit_tier) != "tiered"):
        raise ValueError("waiting for LLVM's code only applies to the JIT's tiered tier")


def _load_and_run(obj: BpfObject, obj_path: str | Path, prog_name: str | None, data: bytes,
                  repeat: int, engine: str, strict_engine: bool, verify: bool, checked: bool,
                  jit_tier: str | None, wait_llvm: bool) -> RunResult:
    names = list(obj.programs)
    if prog_name is None:
        if len(names) != 1:
            raise ValueError(f"{obj_path} has {len(names)} programs ({', '.join(names)}): "
                             "choose one with --prog")
        prog_name = names[0]
    if prog_name not in obj.programs:
        raise ValueError(f"{obj_path} has no program {prog_name!r} "
                         f"(programs: {', '.join(names) or 'none'})")
    ptype = progtypes.prog_type_for(obj.programs[prog_name].program)
    if ptype.ctx != "buffer":
        raise progtypes.ProgTypeError(
            f"program {prog_name!r} is a {ptype.name} program: its context is not a "
            "data buffer, so it cannot be run on one (only socket and syscall programs "
            "can, as with bpftool prog run)")
    for name, p in obj.programs.items():
        p.autoload = name == prog_name
    obj.load(engine=engine, verify=verify, strict_engine=strict_engine, checked=checked,
             jit_tier=jit_tier)
    prog = obj.programs[prog_name]
    buf = Buffer(max(len(data), 1), data)
    prog.runtime.mem.add(buf.addr, max(len(data), 1), True, "data")
    args = (buf.addr, len(data))
    code = ""
    if prog.engine == "jit":
        fn = prog.jit
        if wait_llvm:
            engines.jit_module().tiering_wait()
        fn.reset()
        if fn.checked:
            fn.refresh_regions()
        before = fn.tier
        retval, runs, total = time_native(fn.address, args, repeat, fn.error_address)
        after = fn.tier
        code = before if before == after else f"{before}+{after}"
        fn.raise_error()        # the exception names the failing instruction
    else:
        def check() -> None:
            err = prog.take_error()
            if err is not None:
                raise err

        retval, runs, total = time_native(prog.entry_address, args, repeat,
                                          between_chunks=check)
        check()
    return RunResult(retval, runs, total, prog.engine, buf.read(0, len(data)), code)
