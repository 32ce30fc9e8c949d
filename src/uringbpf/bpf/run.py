"""``uringbpf run OBJ --prog NAME``: run one program on a data buffer, like ``bpftool prog run``.

The program gets the buffer socket-filter style (r1 = pointer, r2 = length, see
``progtypes`` "buffer" context), runs ``--repeat`` times on the same buffer, and the
command prints its return value and the average duration of one run in nanoseconds.

Runs are timed from native code (``jitrt_repeat`` in ``native/jitrt.c`` calls the entry
address in a loop), so the figure is the engine's cost, comparable with the kernel's
``BPF_PROG_TEST_RUN`` duration, and not the cost of a ctypes call from Python. The loop
runs in chunks of about 0.1 s so Ctrl-C is honoured between chunks.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["main_run", "time_native", "RunResult", "run_program"]

_CHUNK_SECONDS = 0.1


def _set_repeat_prototype(lib: ctypes.CDLL) -> None:
    fn = lib.jitrt_repeat
    fn.restype = ctypes.c_uint64
    fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64), ctypes.c_uint64,
                   ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64),
                   ctypes.POINTER(ctypes.c_uint64)]


def _jitrt():
    from .. import native

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
    retval: int
    runs: int
    total_ns: int
    engine: str
    data_out: bytes

    @property
    def avg_ns(self) -> float:
        return self.total_ns / self.runs if self.runs else 0.0


def run_program(obj_path: str | Path, prog_name: str | None, data: bytes, repeat: int = 1,
                engine: str = "jit", strict_engine: bool = False, verify: bool = True,
                checked: bool = False) -> RunResult:
    """Open ``obj_path``, load only ``prog_name`` with ``engine`` and run it on ``data``."""
    from .memory import Buffer
    from .object import BpfObject

    if repeat < 1:
        raise ValueError("--repeat must be at least 1")
    obj = BpfObject.open(obj_path)
    try:
        names = list(obj.programs)
        if prog_name is None:
            if len(names) != 1:
                raise ValueError(f"{obj_path} has {len(names)} programs ({', '.join(names)}): "
                                 "choose one with --prog")
            prog_name = names[0]
        if prog_name not in obj.programs:
            raise ValueError(f"{obj_path} has no program {prog_name!r} "
                             f"(programs: {', '.join(names) or 'none'})")
        for name, p in obj.programs.items():
            p.autoload = name == prog_name
        obj.load(engine=engine, verify=verify, strict_engine=strict_engine, checked=checked)
        prog = obj.programs[prog_name]
        buf = Buffer(max(len(data), 1), data)
        prog.runtime.mem.add(buf.addr, max(len(data), 1), True, "data")
        args = (buf.addr, len(data))
        if prog.engine == "jit":
            fn = prog.jit
            fn.reset()
            if fn.checked:
                fn.refresh_regions()
            retval, runs, total = time_native(fn.address, args, repeat, fn.error_address)
            fn.raise_error()        # the exception names the failing instruction
        else:
            def check() -> None:
                err = prog.take_error()
                if err is not None:
                    raise err

            retval, runs, total = time_native(prog.entry_address, args, repeat,
                                              between_chunks=check)
            check()
        return RunResult(retval, runs, total, prog.engine, buf.read(0, len(data)))
    finally:
        obj.close()


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="uringbpf run",
        description="Run one program of an object on a data buffer (r1 = data, r2 = length) "
                    "and print its return value and the average duration of a run.")
    ap.add_argument("obj", help="eBPF ELF object (from `uringbpf cc`, clang or zig cc)")
    ap.add_argument("--prog", help="program (function) name; optional if the object has one")
    ap.add_argument("--data-in", type=Path, help="file whose bytes are the data buffer")
    ap.add_argument("--data-size", type=int, default=64,
                    help="size of a zero-filled buffer when --data-in is not given (64)")
    ap.add_argument("--data-out", type=Path, help="write the buffer after the runs here")
    ap.add_argument("--repeat", type=int, default=1, help="number of runs (1)")
    eng = ap.add_mutually_exclusive_group()
    eng.add_argument("--jit", dest="engine", action="store_const", const="jit",
                     help="JIT-compile the program (default; an error if it cannot)")
    eng.add_argument("--interp", dest="engine", action="store_const", const="interp",
                     help="use the reference interpreter")
    ap.add_argument("--no-verify", action="store_true",
                    help="skip the verifier (implies --checked for the JIT)")
    ap.add_argument("--checked", action="store_true",
                    help="JIT with a bounds check on every memory access")
    return ap


def main_run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.data_in is not None:
        try:
            data = args.data_in.read_bytes()
        except OSError as exc:
            print(f"uringbpf run: {exc}", file=sys.stderr)
            return 1
    else:
        if args.data_size < 0:
            print("uringbpf run: --data-size must be >= 0", file=sys.stderr)
            return 2
        data = bytes(args.data_size)
    engine = args.engine or "jit"
    checked = args.checked or args.no_verify
    try:
        result = run_program(args.obj, args.prog, data, args.repeat, engine=engine,
                             strict_engine=True, verify=not args.no_verify, checked=checked)
    except KeyboardInterrupt:
        print("uringbpf run: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the command reports any failure in one line
        print(f"uringbpf run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.data_out is not None:
        args.data_out.write_bytes(result.data_out)
    r = result.retval
    print(f"Return value: {r} ({r:#x}), duration (average): {result.avg_ns:.0f} ns, "
          f"runs: {result.runs}, engine: {result.engine}"
          f"{' (checked)' if checked and result.engine == 'jit' else ''}")
    return 0


main = main_run
