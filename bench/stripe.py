"""Striped block target: copy mode vs zero copy (REGISTER chain) vs auto zero copy.

Drives the stripe target (examples/kbuf/stripe, 4 backing files, 64 KiB chunks) with
requests straight from its RequestSource (the "block layer" side, ``qd`` in flight), for
4 KiB random and 128 KiB sequential reads and writes, and reports IOPS, MiB/s and process
CPU time per I/O (all threads: the Python driver, the server loop and the source). Then
128 KiB sequential over NBD on 127.0.0.1 (our client) for copy vs zero copy, and the cost
of the copy itself (native ``kbuf_copy``) per I/O size.

Backing files live in a temporary directory on disk and are pre-written, so reads hit the
page cache and writes dirty it: what is measured is the request path, not the device.
Usage: ``python bench/stripe.py [--quick] [--only 64K] [--repeat N] [--breakdown KIB]``.
Prints ratios; no thresholds.
"""

from __future__ import annotations

import ctypes
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "examples" / "kbuf"))

from stripe import nbd  # noqa: E402
from stripe.server import StripeNbd  # noqa: E402
from stripe.target import StripeTarget, start, stop  # noqa: E402
from uringbpf.designs import kbuf as K  # noqa: E402

#: (label, target mode, how request pages are pinned in the kernel table)
MODES = (("copy", "copy", "region"), ("zc", "zc", "region"), ("zc/req", "zc", "request"),
         ("auto", "auto_zc", "region"), ("auto/req", "auto_zc", "request"))
FILE_SIZE = 32 << 20
QD = 16
REPEAT = 3


def make_files(directory: str, n: int = 4) -> list[str]:
    paths = []
    block = os.urandom(1 << 20)
    for i in range(n):
        p = os.path.join(directory, f"disk{i}")
        with open(p, "wb") as f:
            for _ in range(FILE_SIZE >> 20):
                f.write(block)
        paths.append(p)
    return paths


def drive(source: K.RequestSource, op: int, offsets: list[int], length: int) -> tuple[float, float, int]:
    """Run every request with QD in flight; returns (wall s, cpu s, failures)."""
    sem = threading.Semaphore(QD)
    failures = [0]

    def done(req: K.BlockRequest) -> None:
        if req.result != req.length:
            failures[0] += 1
        req.free()
        sem.release()

    t0, c0 = time.perf_counter(), time.process_time()
    for off in offsets:
        sem.acquire()
        req = source.alloc_request(op, off, length)
        source.queue_rq(req, done)
    for _ in range(QD):
        sem.acquire()
    return time.perf_counter() - t0, time.process_time() - c0, failures[0]


def workloads(size: int, quick: bool):
    rnd = random.Random(1)
    n4k = 3000 if quick else 20000
    n128 = 400 if quick else 3000
    n64 = 600 if quick else 4000
    seq64 = [(i * 65536) % size for i in range(n64)]
    n1m = 60 if quick else 500
    rand4k = [rnd.randrange(size // 4096) * 4096 for _ in range(n4k)]
    seq128 = [(i * 131072) % size for i in range(n128)]
    seq1m = [(i << 20) % size for i in range(n1m)]
    return [("4K randread", K.UBLK_IO_OP_READ, rand4k, 4096),
            ("4K randwrite", K.UBLK_IO_OP_WRITE, rand4k, 4096),
            ("64K seqread", K.UBLK_IO_OP_READ, seq64, 65536),
            ("64K seqwrite", K.UBLK_IO_OP_WRITE, seq64, 65536),
            ("128K seqread", K.UBLK_IO_OP_READ, seq128, 131072),
            ("128K seqwrite", K.UBLK_IO_OP_WRITE, seq128, 131072),
            ("1M seqread", K.UBLK_IO_OP_READ, seq1m, 1 << 20),
            ("1M seqwrite", K.UBLK_IO_OP_WRITE, seq1m, 1 << 20)]


def bench_target(paths: list[str], quick: bool, only: str | None = None,
                 repeat: int = REPEAT) -> dict:
    """All modes run side by side (one target each, all started first) and the repeats go
    round-robin over the modes, so a burst of load from elsewhere hits every mode alike;
    each row is the median of ``repeat`` runs, plus the lowest CPU per I/O of the runs
    (load from elsewhere only adds CPU time: on a busy machine the minimum is the steadier
    estimate of what a mode costs)."""
    running = []
    for label, mode, pin in MODES:
        target = StripeTarget(paths, 65536, mode, queue_depth=QD, pin=pin)
        running.append((label, target, *start(target)))
    results = {}
    try:
        size = running[0][1].size
        for name, op, offsets, length in workloads(size, quick):
            if only and not name.startswith(only):
                continue
            samples: dict[str, list] = {label: [] for label, *_ in running}
            for label, target, source, ring, thread in running:
                drive(source, op, offsets[: len(offsets) // 10], length)      # warm up
            for _ in range(repeat):
                for label, target, source, ring, thread in running:
                    samples[label].append(drive(source, op, offsets, length))
            n = len(offsets)
            for label, runs in samples.items():
                wall, cpu, fails = sorted(runs)[len(runs) // 2]
                fails = max(r[2] for r in runs)
                results[(name, label)] = (n / wall, n * length / wall / 2**20, cpu / n * 1e6,
                                          fails, min(r[1] for r in runs) / n * 1e6)
    finally:
        for label, target, source, ring, thread in running:
            stop(source, ring, thread, target)
    return results


def bench_nbd(paths: list[str], quick: bool) -> dict:
    results = {}
    n = 300 if quick else 2000
    for mode in ("copy", "zc"):
        with StripeNbd(paths, 65536, mode, queue_depth=QD, engine="native") as srv:
            c = nbd.NbdClient("127.0.0.1", srv.port)
            data = os.urandom(131072)
            for name, ctype in (("128K seqwrite", nbd.CMD_WRITE), ("128K seqread", nbd.CMD_READ)):
                t0, c0 = time.perf_counter(), time.process_time()
                inflight = 0
                for i in range(n):
                    off = (i * 131072) % c.size
                    if ctype == nbd.CMD_WRITE:
                        c.send(ctype, off, data=data)
                    else:
                        c.send(ctype, off, 131072)
                    inflight += 1
                    if inflight == QD:
                        assert c.recv()[1] == 0
                        inflight -= 1
                while inflight:
                    assert c.recv()[1] == 0
                    inflight -= 1
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                results[(name, mode)] = (n / wall, n * 131072 / wall / 2**20, cpu / n * 1e6, 0)
            c.disconnect()
    return results


def copy_cost() -> list[tuple[int, float, float]]:
    """(size, us per copy cache-hot, us per copy over 64 MiB of distinct buffers)."""
    lib = K.native_lib()
    out = []
    span = 64 << 20
    src, dst = ctypes.create_string_buffer(span), ctypes.create_string_buffer(span)
    ctypes.memset(src, 1, span)
    ctypes.memset(dst, 2, span)
    s0, d0 = ctypes.addressof(src), ctypes.addressof(dst)
    for size in (4096, 65536, 131072, 1 << 20):
        reps = max(200, (256 << 20) // size)
        t0 = time.perf_counter()
        for _ in range(reps):
            lib.kbuf_copy(d0, s0, size)
        hot = (time.perf_counter() - t0) / reps * 1e6
        n = span // size
        t0 = time.perf_counter()
        for i in range(reps):
            off = (i % n) * size
            lib.kbuf_copy(d0 + off, s0 + off, size)
        cold = (time.perf_counter() - t0) / reps * 1e6
        out.append((size, hot, cold))
    return out


def crc_cost() -> list[tuple[str, int, float]]:
    """Integrity crc32c per write: native C vs the BPF program on the JIT."""
    from stripe.integrity import IntegrityLog
    logs = [("native", IntegrityLog(None, engine="native"))]
    try:
        logs.append(("bpf-jit", IntegrityLog(None, engine="bpf", bpf_engine="jit")))
    except Exception as exc:
        print(f"  (BPF crc32c unavailable: {exc})")
    out = []
    for size in (4096, 131072):
        buf = ctypes.create_string_buffer(os.urandom(size), size)
        for name, log in logs:
            reps = 2000 if size == 4096 else 200
            t0 = time.perf_counter()
            for _ in range(reps):
                log.crc(ctypes.addressof(buf), size)
            out.append((name, size, (time.perf_counter() - t0) / reps * 1e6))
    return out


def table(title: str, results: dict, modes) -> None:
    print(f"\n{title}")
    print(f"{'workload':<15}{'mode':<10}{'IOPS':>10}{'MiB/s':>9}{'CPU us/IO':>11}{'vs copy':>9}"
          f"{'best CPU':>10}")
    order = {"4K": 0, "64K": 1, "128K": 2, "1M": 3}
    names = sorted({k[0] for k in results}, key=lambda s: (order[s.split()[0]], s))
    for name in names:
        base = results[(name, "copy")]
        for mode in modes:
            if (name, mode) not in results:
                continue
            iops, mibs, cpu, fails, *best = results[(name, mode)]
            flag = f"  FAILED {fails}" if fails else ""
            print(f"{name:<15}{mode:<10}{iops:>10.0f}{mibs:>9.1f}{cpu:>11.1f}"
                  f"{iops / base[0]:>8.2f}x" + (f"{best[0]:>10.1f}" if best else "") + flag)


def breakdown(paths: list[str], length: int, n: int) -> dict:
    """CPU per I/O by layer, for copy / zc / auto at one size (sequential reads, then
    writes): each thread's CPU time (time.thread_time) under cProfile, by source file (tottime, which
    includes the C each Python function calls through ctypes), plus the kernel and C time
    that is no Python function's (process CPU minus the profiled total)."""
    import cProfile
    import pstats
    layers = {"bench/stripe.py": "block layer (bench driver)", "kbuf/source.py": "source (ublk)",
              "kbuf/ring.py": "KbufRing submit/CQ", "kbuf/table.py": "kbuf table",
              "stripe/target.py": "server loop (target)", "threading.py": "threading"}
    out = {}
    for op, opname in ((K.UBLK_IO_OP_READ, "read"), (K.UBLK_IO_OP_WRITE, "write")):
        for label, mode, pin in (("copy", "copy", "region"), ("zc", "zc", "region"),
                                 ("auto", "auto_zc", "region")):
            target = StripeTarget(paths, 65536, mode, queue_depth=QD, pin=pin)
            profs: list = []
            orig_serve = target.serve

            def serve(*a, _orig=orig_serve, **kw):
                prof = cProfile.Profile(time.thread_time)
                profs.append(prof)
                prof.enable()
                try:
                    return _orig(*a, **kw)
                finally:
                    prof.disable()
            target.serve = serve
            source, ring, thread = start(target)
            offsets = [(i * length) % target.size for i in range(n)]
            drive(source, op, offsets[: n // 10], length)
            main_prof = cProfile.Profile(time.thread_time)
            main_prof.enable()
            wall, cpu, fails = drive(source, op, offsets, length)
            main_prof.disable()
            stop(source, ring, thread, target)
            per = dict.fromkeys(layers.values(), 0.0)
            other = 0.0
            for prof in [main_prof, *profs]:
                for (path, _line, _fn), row in pstats.Stats(prof).stats.items():
                    key = next((v for k, v in layers.items() if path.endswith(k)), None)
                    if key is None:
                        other += row[2]
                    else:
                        per[key] += row[2]
            total = sum(per.values()) + other
            per["other Python / builtins"] = other
            per["CPU not in Python functions (kernel, C)"] = max(0.0, cpu - total)
            out[(opname, label)] = ({k: v / n * 1e6 for k, v in per.items()}, cpu / n * 1e6,
                                    fails)
    return out


def main() -> int:
    quick = "--quick" in sys.argv
    if "--breakdown" in sys.argv:
        kib = int(sys.argv[sys.argv.index("--breakdown") + 1])
        with tempfile.TemporaryDirectory(prefix="uringbpf-stripe-bench-", dir="/var/tmp") as d:
            paths = make_files(d)
            res = breakdown(paths, kib << 10, 300 if quick else 2000)
        print(f"CPU us per {kib} KiB I/O by layer (cProfile on; profiling inflates Python time)")
        for (opname, label), (per, cpu, fails) in res.items():
            print(f"{opname:5s} {label:5s} total {cpu:7.1f}" + (f" FAILED {fails}" if fails else ""))
            for k, v in per.items():
                print(f"      {k:42s} {v:7.1f}")
        return 0
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else REPEAT
    print(f"stripe target: 4 files x {FILE_SIZE >> 20} MiB, chunk 64 KiB, qd {QD}, "
          f"{os.cpu_count()} CPUs, kernel {os.uname().release}")
    with tempfile.TemporaryDirectory(prefix="uringbpf-stripe-bench-", dir="/var/tmp") as d:
        paths = make_files(d)
        table("request source -> target (no network)", bench_target(paths, quick, only, repeat),
              [m[0] for m in MODES])
        if only is None:
            table("NBD on 127.0.0.1 (our client, same process; native crc32c)",
                  bench_nbd(paths, quick),
                  ("copy", "zc"))
    if only is None:
        print("\nintegrity crc32c per write")
        for name, size, us in crc_cost():
            print(f"  {name:<8} {size >> 10:>4} KiB: {us:8.1f} us")
    print("\nnative copy (kbuf_copy) per I/O: cache-hot / over 64 MiB of buffers")
    for size, hot, cold in copy_cost():
        print(f"  {size >> 10:>5} KiB: {hot:7.2f} us ({size / hot / 1e3:5.1f} GB/s) / "
              f"{cold:7.2f} us ({size / cold / 1e3:5.1f} GB/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
