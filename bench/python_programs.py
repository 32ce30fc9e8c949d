"""Python-written ring programs (uringbpf.lang) against the C-compiled ones of the same design.

    .venv/bin/python bench/python_programs.py [--nops 200000] [--rounds 5] [--cp-mib 32]

* nops: examples/python/nops.py vs designs/loop/examples/nops.bpf.c, both JIT-compiled
  and attached to a fresh 8-entry loop ring, one io_uring_enter each; alternating C and
  Python runs, best of ``--rounds`` for each; ratio = Python throughput / C throughput.
* cp: examples/python/cp.py vs cp.bpf.c (through loop.copy_fd), same file, chunk 64 KiB,
  depth 4, alternating; ratio as above.
* compile: AST -> LLVM IR -> BPF object -> opened, verified and JIT-compiled, for the
  nops module, after LLVM is initialised (best of ``--rounds``), split into its stages;
  CPU time of the (single) thread doing it, plus the total by the wall clock.
* in-app: the nops step run as Python in the application vs compiled in the ring
  (``--app-nops`` NOPs each): how much slower the application run is.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
# "compile" times verification: not a verdict from the verdict cache (bpf/verify_cache.py),
# which every round after the first would otherwise take
os.environ.setdefault("URINGBPF_VERIFY_CACHE", "0")

from uringbpf import BpfObject  # noqa: E402
from uringbpf.designs import loop  # noqa: E402
from uringbpf.uring import ENTER_GETEVENTS  # noqa: E402


def _example(name: str):
    """examples/python/NAME.py, under its own module name (the C examples' drivers are
    also called nops and cp)."""
    import importlib.util
    modname = f"uringbpf_python_example_{name}"
    spec = importlib.util.spec_from_file_location(modname, ROOT / "examples" / "python" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    return mod


py_cp = _example("cp")
py_nops = _example("nops")


def c_nops(n: int, k: int = 8) -> float:
    ring = loop.make_ring(k)
    try:
        obj, link = loop.nops_example(ring, n, engine="jit", cap=k)
        try:
            start = time.perf_counter()
            ret = ring.enter(0, 0, ENTER_GETEVENTS)
            secs = time.perf_counter() - start
            assert ret == 0 and obj.bss.reqs_to_run == 0, (ret, obj.bss.reqs_to_run)
        finally:
            link.destroy()
            obj.close()
        return secs
    finally:
        ring.close()


def py_nops_run(n: int, k: int = 8, app: bool = False) -> float:
    left, secs = py_nops.run(n, k, app=app)
    assert left == 0
    return secs


def c_cp(src: str, dst: str, chunk: int, depth: int) -> float:
    in_fd = os.open(src, os.O_RDONLY)
    out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        r = loop.copy_fd(in_fd, out_fd, chunk=chunk, depth=depth)
        assert r.error == 0 and r.done
        return r.seconds
    finally:
        os.close(in_fd)
        os.close(out_fd)


def py_cp_run(src: str, dst: str, chunk: int, depth: int) -> float:
    r = py_cp.copy(src, dst, chunk=chunk, depth=depth)
    assert r["error"] == 0 and r["done"] == 1
    return r["seconds"]


def compile_times(rounds: int) -> dict[str, float]:
    """Best of ``rounds`` for each stage, in CPU seconds of this thread (the whole path runs
    in it: parsing, LLVM, verifier, JIT; no helper threads), so other processes on a shared
    machine do not inflate it; ``total_wall`` is the same path by the wall clock."""
    py_nops.bpf.compile()          # LLVM initialised, modules imported
    clock = time.thread_time
    best: dict[str, float] = {}

    def keep(key: str, v: float) -> None:
        best[key] = min(best.get(key, 1e9), v)

    for _ in range(rounds):
        # the C-compiled object's open + verify + JIT, for scale (alternating with ours)
        t0 = clock()
        obj = BpfObject.open(loop.example_object("nops"))
        obj.load("jit")
        obj.close()
        keep("c_object_open_verify_jit", clock() - t0)
        py_nops.bpf._compiled = None
        w0, t0 = time.perf_counter(), clock()
        c = py_nops.bpf.compile()
        t1 = clock()
        loaded = py_nops.bpf.load("jit")
        t2, w2 = clock(), time.perf_counter()
        loaded.close()
        for key, v in (("ast_to_ir_wall", c.ir_seconds), ("llvm_to_object_wall", c.llvm_seconds),
                       ("compile", t1 - t0), ("open_verify_jit", t2 - t1), ("total", t2 - t0),
                       ("total_wall", w2 - w0)):
            keep(key, v)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nops", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cp-mib", type=int, default=32)
    ap.add_argument("--app-nops", type=int, default=2000)
    args = ap.parse_args()

    c_nops(1000)
    py_nops_run(1000)
    c_best = py_best = 1e9
    for _ in range(args.rounds):
        c_best = min(c_best, c_nops(args.nops))
        py_best = min(py_best, py_nops_run(args.nops))
    print(f"nops x{args.nops}: C {args.nops / c_best / 1e6:.2f} M/s, Python {args.nops / py_best / 1e6:.2f} M/s, "
          f"ratio Python/C {c_best / py_best:.2f}")

    with tempfile.TemporaryDirectory(prefix="uringbpf-bench-") as tmp:
        src = os.path.join(tmp, "src.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(args.cp_mib << 20))
        dst = os.path.join(tmp, "dst.bin")
        c_best = py_best = 1e9
        for _ in range(args.rounds):
            c_best = min(c_best, c_cp(src, dst, 64 * 1024, 4))
            py_best = min(py_best, py_cp_run(src, dst, 64 * 1024, 4))
        mib = args.cp_mib
        print(f"cp {mib} MiB (chunk 64 KiB, depth 4): C {mib / c_best:.0f} MiB/s, Python "
              f"{mib / py_best:.0f} MiB/s, ratio Python/C {c_best / py_best:.2f}")

    t = compile_times(args.rounds)
    print("compile nops (best, ms; CPU time unless _wall): "
          + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in t.items()))

    ring_s = min(py_nops_run(args.app_nops) for _ in range(3))
    app_s = min(py_nops_run(args.app_nops, app=True) for _ in range(2))
    print(f"in-app nops x{args.app_nops}: ring {ring_s * 1e3:.1f} ms, application {app_s * 1e3:.1f} ms, "
          f"application/ring {app_s / ring_s:.0f}x slower")


if __name__ == "__main__":
    main()
