"""Completion-driven NOP loop: each CQE triggers one new SQE, at 1, 8 and 32 in flight.

Compares (a) C liburing (compiled on the fly with ``cc ... -luring`` when the compiler
and liburing headers exist) with (b) uringbpf's ``Ring`` driven from Python one CQE at a
time, (c) ``Ring.fast()``'s batch verbs (``reap`` into a reusable array, ``prep_nops`` on
the reaped array: compiled code, a few Python calls per batch), (d) the PyPI ``liburing``
binding (Cython; the ``bench`` extra) when it is installed, all on the kernel backend,
plus (e) the thread-pool backend for reference. Prints ops/s and the
ratio C / Python. This is the baseline the BPF designs (a program reacting to each CQE
without returning to Python) must beat. Usage: ``python bench/nop_loop.py [ops]``.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from uringbpf.compare.nop import nop_loop, nop_loop_fast  # noqa: E402
from uringbpf.uring import Ring  # noqa: E402

try:
    import liburing as pypi_liburing  # the PyPI binding: an optional column, not a dependency
except ImportError:
    pypi_liburing = None

INFLIGHT = (1, 8, 32)

C_SOURCE = r"""
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned inflight = atoi(argv[1]);
	unsigned long total = strtoul(argv[2], NULL, 10), done = 0, issued = 0;
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	unsigned head, n, i;
	double t0;

	if (io_uring_queue_init(64, &ring, 0) < 0)
		return 1;
	t0 = now();
	for (i = 0; i < inflight; i++, issued++)
		io_uring_prep_nop(io_uring_get_sqe(&ring));
	while (done < total) {
		if (io_uring_submit_and_wait(&ring, 1) < 0)
			return 2;
		n = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			n++;
			if (issued < total) {
				io_uring_sqe_set_data64(io_uring_get_sqe(&ring), cqe->user_data);
				issued++;
			}
		}
		io_uring_cq_advance(&ring, n);
		done += n;
	}
	printf("%f\n", total / (now() - t0));
	io_uring_queue_exit(&ring);
	return 0;
}
"""


def build_c() -> str | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not Path("/usr/include/liburing.h").exists():
        return None
    out = Path(tempfile.gettempdir()) / f"uringbpf-nop-loop-{os.getuid()}"
    src = out.with_suffix(".c")
    src.write_text(C_SOURCE)
    proc = subprocess.run([cc, "-O2", "-o", str(out), str(src), "-luring"], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        print(f"(C version not built: {proc.stderr.strip()[:200]})")
        return None
    return str(out)


def run_c(binary: str, inflight: int, total: int) -> float:
    out = subprocess.run([binary, str(inflight), str(total)], capture_output=True, text=True,
                         check=True).stdout
    return float(out)


def _checked(done: int, bad: int, total: int, what: str) -> None:
    if bad or done != total:
        raise SystemExit(f"{what}: bad CQE results ({bad:#x}), {done}/{total} completions")


def run_py(inflight: int, total: int, backend: str = "kernel") -> float:
    """compare.nop's driver loop, one CQE at a time, on a Ring of ``backend``."""
    with Ring(64, backend=backend) as ring:
        t0 = time.perf_counter()
        done, results = nop_loop(ring, inflight, total)
        rate = total / (time.perf_counter() - t0)
    _checked(done, results, total, f"Ring ({backend})")
    return rate


def run_fast(inflight: int, total: int) -> float:
    """The same loop on Ring.fast(): one reap (submit + wait + copy every ready CQE) and
    one prep_nops (re-arm from the reaped user_data slice) per batch."""
    with Ring(64, backend="kernel") as ring, ring.fast() as fp:
        t0 = time.perf_counter()
        done, bad = nop_loop_fast(fp, inflight, total, check=False)
        rate = total / (time.perf_counter() - t0)
    _checked(done, bad, total, "Ring.fast")
    return rate


def run_binding(inflight: int, total: int) -> float:
    """The same loop on the PyPI liburing binding (liburing's own calls, one per step)."""
    L = pypi_liburing
    ring, cqe = L.io_uring(), L.io_uring_cqe()
    L.io_uring_queue_init(64, ring, 0)
    try:
        get_sqe, prep_nop, set_data = L.io_uring_get_sqe, L.io_uring_prep_nop, L.io_uring_sqe_set_data64
        submit_and_wait, peek, seen = L.io_uring_submit_and_wait, L.io_uring_peek_cqe, L.io_uring_cqe_seen
        t0 = time.perf_counter()
        issued = done = 0
        for i in range(inflight):
            sqe = get_sqe(ring)
            prep_nop(sqe)
            set_data(sqe, i)
            issued += 1
        while done < total:
            submit_and_wait(ring, 1)
            while peek(ring, cqe) == 0:
                ud = cqe.user_data
                seen(ring, cqe)
                done += 1
                if issued < total:
                    sqe = get_sqe(ring)
                    prep_nop(sqe)
                    set_data(sqe, ud)
                    issued += 1
        return total / (time.perf_counter() - t0)
    finally:
        L.io_uring_queue_exit(ring)


def main() -> int:
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print("usage: python bench/nop_loop.py [TOTAL_NOPS]   (default 200000)")
        return 0
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(f"NOP loop, {total} ops; {platform.machine()}, Linux {platform.release()}, "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    binary = build_c()
    print(f"{'inflight':>8} {'C liburing':>12} {'Ring':>10} {'Ring.fast':>10} "
          f"{'PyPI liburing':>14} {'fast/PyPI':>9} {'C/Ring':>7} {'threads':>9}")
    nan = float("nan")
    for inflight in INFLIGHT:
        # interleaved rounds, median of 3: the machine is shared, neighbours come and go
        rounds: dict[str, list[float]] = {"c": [], "py": [], "fast": [], "pypi": []}
        for _ in range(3):
            rounds["c"].append(run_c(binary, inflight, total) if binary else nan)
            rounds["py"].append(run_py(inflight, total))
            rounds["fast"].append(run_fast(inflight, total))
            rounds["pypi"].append(run_binding(inflight, total) if pypi_liburing else nan)
        c, py, fast, pypi = (sorted(v)[1] for v in rounds.values())
        th = run_py(inflight, max(total // 20, 1000), "threads")
        print(f"{inflight:>8} {c:>12,.0f} {py:>10,.0f} {fast:>10,.0f} {pypi:>14,.0f} "
              f"{fast / pypi:>9.2f} {c / py:>7.1f} {th:>9,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
