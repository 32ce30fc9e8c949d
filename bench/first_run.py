"""First run (#19): `python bench/first_run.py [--runs N] [--jit-tier T] [--only NAME]`.

How long a developer waits before a program first runs, whole processes timed from
outside (start-up, imports, parsing, verification, JIT, the run, the output):

* ``uringbpf run`` of the issue's histogram program (a socket filter over 64 KiB), with
  an empty verdict cache (*cold*: the program is verified, as after every edit) and with
  the verdict stored by an earlier run (*warm*: ``bpf/verify_cache.py``, an unchanged
  program), alternating with the kernel's ``bpftool prog load`` of the same object
  (verify + JIT, when run as root with bpffs mounted) so the ratios come from one run;
* ``BpfObject.load()`` of every example under examples/, each in a fresh process (the
  time of ``load()`` itself, measured inside that process, so first-use costs such as
  importing a design or initialising LLVM count), cold and warm; the cold CPU is also
  split into the verifier's own and the rest (parsing, kfunc resolution and the design
  imports it causes, the verdict cache's bookkeeping, the JIT).

The JIT's own code cache (``$XDG_CACHE_HOME/uringbpf/jit``) is left as it is: warm after
the first run.  The measured processes write and read their bytecode (``.pyc``) under a
private ``PYTHONPYCACHEPREFIX``, written by the first, uncounted run: an installed
uringbpf has up-to-date bytecode, while a shell with ``PYTHONDONTWRITEBYTECODE=1`` and
a source tree edited since its ``__pycache__`` was written would make every process
compile the edited modules again (45-60 ms each), which is not a cost of loading.
Figures are medians over ``--runs`` runs on a shared machine; compare the ratios within
one run.  Not a test (docs/benchmarks.md records the numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
HISTOGRAM = ROOT / "bench" / "progs" / "histogram_64k.bpf.c"


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _timed(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall, CPU, stdout) of one whole process."""
    t, c = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t, _children_cpu() - c
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}\n{proc.stderr}")
    return wall, cpu, proc.stdout


#: where the measured processes keep their bytecode (set by main: one per bench run)
PYCACHE: pathlib.Path | None = None


def _env(cache: pathlib.Path, tier: str | None) -> dict:
    env = dict(os.environ, URINGBPF_VERIFY_CACHE=str(cache))
    if PYCACHE is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    if tier:
        env["URINGBPF_JIT_TIER"] = tier
    return env


def _bpftool_cmd(obj: pathlib.Path) -> tuple[list[str], pathlib.Path] | None:
    if shutil.which("bpftool") is None or os.geteuid() != 0 or not os.path.isdir("/sys/fs/bpf"):
        return None
    pin = pathlib.Path("/sys/fs/bpf") / f"uringbpf_first_run_{os.getpid()}"
    return ["bpftool", "prog", "load", str(obj), str(pin)], pin


def _median(rows: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)


def bench_run(obj: pathlib.Path, tmp: pathlib.Path, runs: int, tier: str | None) -> None:
    """``uringbpf run`` cold and warm, alternating with ``bpftool prog load``."""
    cmd = [sys.executable, "-m", "uringbpf", "run", str(obj), "--data-size", "65536"]
    warm = tmp / "warm"
    _timed(cmd, _env(warm, tier))                   # stores the verdict (and the JIT code)
    kernel = _bpftool_cmd(obj)
    rows: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": [], "kernel": []}
    for i in range(runs):
        cold = tmp / f"cold{i}"                    # empty: the program is verified
        order = ("cold", "warm", "kernel") if i % 2 == 0 else ("kernel", "warm", "cold")
        for what in order:
            if what == "kernel":
                if kernel is not None:
                    wall, cpu, _ = _timed(kernel[0])
                    kernel[1].unlink()
                    rows["kernel"].append((wall, cpu))
                continue
            wall, cpu, out = _timed(cmd, _env(cold if what == "cold" else warm, tier))
            assert out.startswith("Return value: 65536 "), out
            rows[what].append((wall, cpu))
    print(f"uringbpf run {obj.name} (tier {tier or 'default'}), median of {runs}:")
    k = _median(rows["kernel"]) if rows["kernel"] else None
    for what in ("cold", "warm"):
        wall, cpu = _median(rows[what])
        line = f"  {what:<5} verdict cache: {wall:6.3f} s wall {cpu:6.3f} s CPU"
        if k:
            line += f"   vs bpftool prog load: {wall / k[0]:5.2f}x wall {cpu / k[1]:5.2f}x CPU"
        print(line, flush=True)
    if k:
        print(f"  kernel: bpftool prog load {k[0]:6.3f} s wall {k[1]:6.3f} s CPU")
    else:
        print("  (no kernel column: needs bpftool, root and /sys/fs/bpf)")


def _load_worker(path: str) -> None:
    """Time ``BpfObject.open(path).load()`` in this fresh process (prints JSON)."""
    import uringbpf  # noqa: F401  (installs the default platform)
    from uringbpf.bpf import verifier, verify_cache
    from uringbpf.bpf.object import BpfObject

    # the verifier's own CPU, to tell verification from the rest of load(): load() looks
    # the function up in uringbpf.bpf.verifier at each call, and the cache takes this
    # wrapper for the real verifier (it is the module's attribute), so it stores as usual
    real, verifying = verifier.verify, [0.0]

    def timed_verify(*args, **kwargs):
        start = time.process_time()
        try:
            return real(*args, **kwargs)
        finally:
            verifying[0] += time.process_time() - start
    verifier.verify = timed_verify

    t, c = time.perf_counter(), time.process_time()
    obj = BpfObject.open(path)
    obj.load()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    obj.close()
    print(json.dumps({"wall": wall, "cpu": cpu, "verify_cpu": verifying[0],
                      **verify_cache.stats()}))


def bench_examples(tmp: pathlib.Path, runs: int, tier: str | None, only: str | None) -> None:
    from uringbpf.bpf import cc

    print(f"BpfObject.open().load() of each example in a fresh process (tier "
          f"{tier or 'default'}), median of {runs}:")
    print(f"  {'example':<40} {'cold wall':>9} {'CPU':>7} {'(verify':>7} {'rest)':>6} "
          f"{'warm wall':>10} {'CPU':>7}")
    worst = {"cold": 0.0, "warm": 0.0}
    for src in sorted(ROOT.glob("examples/*/**/*.bpf.c")):     # the 10 example objects
        name = str(src.relative_to(ROOT))
        if only and only not in name:
            continue
        obj = cc.compile_c(src, tmp / (name.replace("/", "_") + ".o"))
        warm = tmp / f"warm-{obj.stem}"
        cmd = [sys.executable, __file__, "--load-worker", str(obj)]
        _timed(cmd, _env(warm, tier))
        rows: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
        verifying = []
        for i in range(runs):
            for what in (("cold", "warm") if i % 2 == 0 else ("warm", "cold")):
                cache = tmp / f"cold-{obj.stem}-{i}" if what == "cold" else warm
                out = json.loads(_timed(cmd, _env(cache, tier))[2])
                assert out["hits"] > 0 if what == "warm" else out["hits"] == 0, (name, out)
                rows[what].append((out["wall"], out["cpu"]))
                if what == "cold":
                    verifying.append(out["verify_cpu"])
        cw, cc_ = _median(rows["cold"])
        ww, wc = _median(rows["warm"])
        v = statistics.median(verifying)
        rest = statistics.median(cpu - ver for (_, cpu), ver in zip(rows["cold"], verifying))
        worst = {"cold": max(worst["cold"], cw), "warm": max(worst["warm"], ww)}
        print(f"  {name:<40} {cw:8.3f}s {cc_:6.3f}s {v:6.3f}s {rest:5.3f}s {ww:9.3f}s "
              f"{wc:6.3f}s", flush=True)
    print(f"  slowest load(): {worst['cold']:.3f} s wall after an edit (cold), "
          f"{worst['warm']:.3f} s unchanged (warm); (verify rest): the cold CPU of the "
          "verifier and of everything else")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench/first_run.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    ap.add_argument("--jit-tier", choices=("auto", "direct", "llvm"),
                    help="URINGBPF_JIT_TIER for the measured processes (default: theirs)")
    ap.add_argument("--only", help="only examples whose path contains this ('none': none)")
    ap.add_argument("--no-run", action="store_true", help="skip the uringbpf run figures")
    ap.add_argument("--load-worker", metavar="OBJ", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.load_worker:
        _load_worker(args.load_worker)
        return 0
    from uringbpf.bpf import cc

    global PYCACHE
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        PYCACHE = tmp / "pycache"
        if not args.no_run:
            hist = cc.compile_c(HISTOGRAM, tmp / "histogram_64k.o")
            bench_run(hist, tmp, args.runs, args.jit_tier)
        if args.only != "none":
            bench_examples(tmp, args.runs, args.jit_tier, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
