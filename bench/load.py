"""Load time against the kernel (#19): `python bench/load.py [--only NAME] [--no-examples]`.

For the two socket filters of the issue (crc32c over 4 KiB, bitwise; a byte histogram
over 64 KiB), four more processing >= 100k instructions (:data:`MORE_PROGRAMS`) and every
example object, prints

* ours: verification time, wall and CPU (``verifier.verify_object`` after
  ``obj.prepare()``: ``.rodata`` frozen, every program verified; the loader's relocation
  and kfunc resolution are not in it; the verifier's caches shared across verifications
  emptied first, so every figure is a first verification's), processed instructions, and the whole
  ``BpfObject.load()`` (verify + JIT compile, the verdict cache off unless
  ``URINGBPF_VERIFY_CACHE`` is set) time, and the JIT's CPU share of it (its
  compile phases; marked ``d`` when code came from the on-disk cache:
  ``URINGBPF_JIT_CACHE=0`` measures cold compiles);
* the kernel's: ``bpftool prog load`` wall and CPU time (verify + JIT, libbpf; the CPU
  is bpftool's user + system time, the verifier running in its bpf() call) and its
  ``verified_insns`` (``bpftool prog show``; n/a when this bpftool does not report it),
  when this kernel can load the object
  (socket filters; the io_uring designs' program types need a kernel that has them:
  the column says why it is empty).

A program both sides refuse (the issue's crc32c hits the kernel's jump-sequence limit)
compares the time to refuse.  Times are seconds on a shared machine: compare the ratio
within one run, not across runs; the CPU columns (and the CPU ratio, ours over the
kernel's) are steadier than wall time when the machine is busy.  The first line names the
verifier core that ran (``verifier.CORE``: compiled, or why the pure-Python one);
``--both-cores`` instead times verification with each core (``URINGBPF_VERIFIER=pure`` and
``=compiled``, a process each) against the kernel.  Not a test (docs/benchmarks.md records
the numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# load+JIT times a first load: from the second --repeat on, the verdict cache
# (bpf/verify_cache.py) would answer load() without verifying, and the ratio would compare
# a cache read with the kernel's verification
os.environ.setdefault("URINGBPF_VERIFY_CACHE", "0")

import uringbpf  # noqa: E402,F401  (installs the default platform)
from uringbpf.bpf import cc, verifier  # noqa: E402
from uringbpf.bpf.verifier import transfer  # noqa: E402
from uringbpf.bpf.object import BpfObject  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: the issue's two socket filters (bench/compute.py times the same objects' run time)
ISSUE_PROGRAMS = ("crc32c_4k", "histogram_64k")
#: more socket filters processing >= 100k instructions, each another shape: a branch in
#: every iteration, nested loops, a helper call with a NULL check per iteration, spills
#: and fills per iteration (the goal is for every such program, not the two named)
MORE_PROGRAMS = ("branchy_mix_6k", "nested_256x64", "lookup_loop_4k", "stack_acc_8k")


def _processed(verdict) -> int:
    if verdict.ok:
        return verdict.result.processed_insns
    m = re.search(r"^processed (\d+) insns", verdict.error.log, re.M)
    return int(m.group(1)) if m else 0


def _ours(obj_path: pathlib.Path) -> dict:
    obj = BpfObject.open(str(obj_path))
    # the loader's part first (relocations, kfuncs resolved against the platform, which
    # imports that design's modules once per process): load_s below counts it, the
    # verification columns time the verifier alone
    obj.prepare()
    # (the verifier caches ALU and compare results across verifications: each timed part
    # starts from empty caches, as the first verification in a process does)
    transfer.clear_memos()
    t, c = time.perf_counter(), time.process_time()
    verdicts = verifier.verify_object(obj)
    t_verify, c_verify = time.perf_counter() - t, time.process_time() - c
    obj.close()
    row = {"verify_s": t_verify, "verify_cpu": c_verify, "ok": all(v.ok for v in verdicts),
           "processed": sum(_processed(v) for v in verdicts), "programs": len(verdicts)}
    if not row["ok"]:
        row["error"] = next(v.error.message for v in verdicts if not v.ok)
        return row
    obj = BpfObject.open(str(obj_path))
    transfer.clear_memos()
    t, c = time.perf_counter(), time.process_time()
    obj.load(engine="jit")
    row["load_s"], row["load_cpu"] = time.perf_counter() - t, time.process_time() - c
    # The JIT's share of that CPU (its compile phases: jit.JitFunction.timings); "d" when
    # some code came from the on-disk cache (URINGBPF_JIT_CACHE=0 for cold compiles).
    fns = [p.jit for p in obj.programs.values() if p.jit is not None]
    row["jit_cpu"] = sum(sum(fn.timings.values()) for fn in fns if not fn.cached)
    row["jit_mark"] = "d" if any("disk" in fn.timings for fn in fns) else " "
    obj.close()
    return row


def _median_row(rows: list[dict]) -> dict:
    """The first row with each timing (a ``*_s`` / ``*_cpu`` float) replaced by its
    median over ``rows`` (the counts and verdicts are the same in every run)."""
    out = dict(rows[0])
    for key, value in rows[0].items():
        if isinstance(value, float) and (key.endswith("_s") or key.endswith("_cpu")):
            out[key] = statistics.median(r[key] for r in rows)
    return out


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _kernel(obj_path: pathlib.Path, only_socket: bool) -> dict:
    if shutil.which("bpftool") is None:
        return {"why": "bpftool not installed (apt-get install bpftool)"}
    if os.geteuid() != 0 or not os.path.isdir("/sys/fs/bpf"):
        return {"why": "needs root and bpffs"}
    if not only_socket:
        return {"why": "program type not loadable by this kernel"}
    pin = pathlib.Path("/sys/fs/bpf") / f"uringbpf_load_{os.getpid()}_{obj_path.stem}"
    t, c = time.perf_counter(), _children_cpu()
    proc = subprocess.run(["bpftool", "prog", "load", str(obj_path), str(pin)],
                          capture_output=True, text=True)
    # the verifier and JIT run inside bpftool's bpf() call: its system time
    dt, dc = time.perf_counter() - t, _children_cpu() - c
    if proc.returncode != 0:
        # refused too (e.g. the jump-sequence limit): its time to refuse still compares
        return {"load_s": dt, "load_cpu": dc, "verified_insns": "refused"}
    try:
        info = json.loads(subprocess.run(["bpftool", "-j", "prog", "show", "pinned", str(pin)],
                                         capture_output=True, text=True, check=True).stdout)
    finally:
        pin.unlink()
    return {"load_s": dt, "load_cpu": dc, "verified_insns": info.get("verified_insns")}


def _kernel_for(obj_path: pathlib.Path) -> dict:
    """:func:`_kernel` for the object: the kernel loads only socket filters here."""
    obj = BpfObject.open(str(obj_path))
    socket_only = all(p.section.startswith("socket") for p in obj.prepare())
    obj.close()
    return _kernel(obj_path, socket_only)


def _targets(only: str | None, examples: bool) -> list[tuple[str, pathlib.Path]]:
    out = []
    for name in ISSUE_PROGRAMS + MORE_PROGRAMS:
        out.append((name, ROOT / "bench" / "progs" / f"{name}.bpf.c"))
    if examples:
        for src in sorted((ROOT / "examples").glob("*/**/*.bpf.c")):
            out.append((str(src.relative_to(ROOT)), src))
    return [(n, s) for n, s in out if only is None or only in n]


def _ours_with_core(obj_path: pathlib.Path, core: str) -> dict:
    """:func:`_ours` in a fresh interpreter running the verifier core ``core`` (``pure`` or
    ``compiled``: ``URINGBPF_VERIFIER``; the core is chosen once per process)."""
    env = dict(os.environ, URINGBPF_VERIFIER=core)
    proc = subprocess.run([sys.executable, __file__, "--ours-json", str(obj_path)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def _both_cores(targets, tmp: pathlib.Path) -> None:
    """Verification CPU of the pure-Python and the compiled verifier core, alternating per
    target (the pure one first for half of them), against the kernel's load CPU."""
    print(f"{'program':<44} {'processed':>10} {'pure CPU':>9} {'compiled':>9} {'speedup':>8}"
          f"   {'kernel CPU':>10} {'ratio pure':>10} {'compiled':>9}")
    for i, (name, src) in enumerate(targets):
        obj_path = cc.compile_c(src, tmp / (pathlib.Path(name).name + ".o"))
        order = ("pure", "compiled") if i % 2 == 0 else ("compiled", "pure")
        rows = {core: _ours_with_core(obj_path, core) for core in order}
        pure, comp = rows["pure"], rows["compiled"]
        assert pure["processed"] == comp["processed"], (name, pure, comp)
        kern = _kernel_for(obj_path)
        line = (f"{name:<44} {pure['processed']:>10} {pure['verify_cpu']:>8.3f}s "
                f"{comp['verify_cpu']:>8.3f}s {pure['verify_cpu'] / comp['verify_cpu']:>7.2f}x   ")
        if "load_s" in kern and kern["load_cpu"]:
            line += (f"{kern['load_cpu']:>9.3f}s {pure['verify_cpu'] / kern['load_cpu']:>9.1f}x "
                     f"{comp['verify_cpu'] / kern['load_cpu']:>8.1f}x")
        else:
            line += f"  ({kern.get('why', 'no kernel CPU time')})"
        print(line, flush=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench/load.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="only targets whose name contains this")
    ap.add_argument("--no-examples", action="store_true", help="only the socket filters of bench/progs (no examples)")
    ap.add_argument("--both-cores", action="store_true",
                    help="verification CPU of the pure-Python and the compiled verifier core "
                         "side by side (one process per core and target)")
    ap.add_argument("--repeat", type=int, default=3, metavar="N",
                    help="time ours and the kernel's load N times each, alternating, and print "
                         "the medians (default 3: this machine's two cores are shared)")
    ap.add_argument("--ours-json", metavar="OBJ", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.ours_json:          # the worker of --both-cores
        print(json.dumps(_ours(pathlib.Path(args.ours_json))))
        return 0
    print(f"verifier core: {verifier.CORE}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        if args.both_cores:
            _both_cores(_targets(args.only, not args.no_examples), tmp)
            return 0
        print(f"{'program':<44} {'ours: verify':>12} {'(CPU)':>7} {'processed':>10} "
              f"{'load+JIT':>9} {'(CPU)':>7} {'JIT CPU':>8}   {'kernel: load':>12} {'(CPU)':>7} {'verified':>9} "
              f"{'ratio':>6} {'CPU':>6}")
        for name, src in _targets(args.only, not args.no_examples):
            obj_path = cc.compile_c(src, tmp / (pathlib.Path(name).name + ".o"))
            # ours and the kernel's in turn, each timing the median of --repeat runs: on a
            # shared machine one run of either can be twice its usual time
            ours_runs, kern_runs = [], []
            for _ in range(max(1, args.repeat)):
                ours_runs.append(_ours(obj_path))
                kern_runs.append(_kernel_for(obj_path))
            ours = _median_row(ours_runs)
            kern = _median_row(kern_runs)
            line = (f"{name:<44} {ours['verify_s']:>11.3f}s {ours['verify_cpu']:>6.3f}s "
                    f"{ours['processed']:>10} ")
            if ours["ok"]:
                line += (f"{ours['load_s']:>8.3f}s {ours['load_cpu']:>6.3f}s "
                         f"{ours['jit_cpu']:>6.3f}s{ours['jit_mark']}   ")
                ours_total, ours_cpu = ours["load_s"], ours["load_cpu"]
            else:
                # refused: the kernel's time to refuse is the comparison
                line += f"{'refused':>9} {'':>7} {'':>8}   "
                ours_total, ours_cpu = ours["verify_s"], ours["verify_cpu"]
            if "load_s" in kern:
                ratio = ours_total / kern["load_s"] if kern["load_s"] else float("nan")
                cpu_ratio = ours_cpu / kern["load_cpu"] if kern["load_cpu"] else float("nan")
                line += (f"{kern['load_s']:>11.3f}s {kern['load_cpu']:>6.3f}s "
                         f"{kern['verified_insns'] or 'n/a':>9} {ratio:>5.1f}x {cpu_ratio:>5.1f}x")
            else:
                line += f"  ({kern['why']})"
            if not ours["ok"]:
                line += f"  [ours: {ours['error']}]"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
