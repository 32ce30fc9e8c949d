"""NOPs with at most K in flight: loop_step under uringbpf vs C liburing vs Python on Ring.

    .venv/bin/python bench/loop_nops.py [--nops N] [--k 8 32] [--repeat 3]

Three implementations of the same loop (fill up to K SQEs, submit, reap every ready CQE
checking its token, wait only when nothing is ready):

* ``c-liburing``: C against the system liburing (compiled on the fly with cc -O2), a
  SINGLE_ISSUER | DEFER_TASKRUN ring;
* ``python-ring``: the same loop written in Python on :class:`uringbpf.Ring`;
* ``loop_step-jit`` / ``loop_step-interp``: the 7.1 loop_step program on the native
  driver (designs/loop.py), from examples/loop/nops.bpf.c when the loader can build it,
  else from the hand-written assembly version of the same program.

Prints ops/s and the ratios the JIT issue asks for (loop_step-jit / c-liburing >= 0.8,
loop_step-jit / python-ring >= 5).  The best of ``--repeat`` runs is kept for each.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "designs"))

TOKEN = 0xABBA1741

C_LOOP = r"""
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#define TOKEN 0xabba1741ULL

int main(int argc, char **argv)
{
	unsigned total = atoi(argv[1]), k = atoi(argv[2]);
	unsigned to_run = total, inflight = 0;
	struct io_uring ring;
	struct io_uring_params p = {0};
	struct timespec a, b;

	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = k;
	if (io_uring_queue_init_params(k, &ring, &p) < 0)
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &a);
	while (to_run || inflight) {
		unsigned n = k - inflight, head, seen = 0, i;
		struct io_uring_cqe *cqe;
		if (n > to_run - 0)
			n = to_run;
		for (i = 0; i < n; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			io_uring_prep_nop(sqe);
			sqe->user_data = TOKEN;
		}
		if (n) {
			if (io_uring_submit(&ring) != (int)n)
				return 3;
			inflight += n;
			to_run -= n;
		}
		io_uring_for_each_cqe(&ring, head, cqe) {
			if (cqe->user_data != TOKEN)
				return 4;
			seen++;
		}
		io_uring_cq_advance(&ring, seen);
		inflight -= seen;
		if (!seen && inflight && io_uring_wait_cqe_nr(&ring, &cqe, inflight) < 0)
			return 5;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
	io_uring_queue_exit(&ring);
	return 0;
}
"""


def build_c(tmp: Path) -> Path:
    src, exe = tmp / "nops_liburing.c", tmp / "nops_liburing"
    src.write_text(C_LOOP)
    subprocess.run(["cc", "-O2", "-o", str(exe), str(src), "-luring"], check=True)
    return exe


def run_c(exe: Path, total: int, k: int) -> float:
    out = subprocess.run([str(exe), str(total), str(k)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"C loop failed with {out.returncode}")
    return int(out.stdout) / 1e9


def run_python(total: int, k: int) -> float:
    from uringbpf import Ring
    from uringbpf.uring import uapi
    ring = Ring(k, cq_entries=k, flags=uapi.IORING_SETUP_SINGLE_ISSUER
                | uapi.IORING_SETUP_DEFER_TASKRUN)
    try:
        to_run, inflight = total, 0
        start = time.perf_counter()
        while to_run or inflight:
            n = min(k - inflight, to_run)
            for _ in range(n):
                ring.prep_nop(TOKEN)
            if n:
                if ring.submit() != n:
                    raise RuntimeError("short submit")
                inflight += n
                to_run -= n
            got = ring.reap()
            for c in got:
                if c.user_data != TOKEN:
                    raise RuntimeError("bad token")
            inflight -= len(got)
            if not got and inflight:
                ring.wait_cqe_nr(inflight)
        return time.perf_counter() - start
    finally:
        ring.close()


def _loop_ring(k: int):
    from loop_support import make_ring
    return make_ring(entries=k, cq_entries=k)


def run_loop_step(total: int, k: int, engine: str, source: str) -> float:
    """One io_uring_enter of a ring driven by the nops loop_step program."""
    from uringbpf.designs import loop
    from uringbpf.uring import uapi
    ring = _loop_ring(k)
    try:
        if source == "c":
            from uringbpf.designs.loop import nops_example
            obj, link = nops_example(ring, total, engine=engine, cap=k, verify=VERIFY[0])
            if link.engine != engine:
                raise RuntimeError(f"asked for {engine}, got {link.engine}")
            check = lambda: obj.bss.reqs_to_run  # noqa: E731
        else:
            from loop_support import nops_asm_program
            from uringbpf.bpf.helpers import Runtime
            region = loop.register_region(ring, 8)
            state = region.view().cast("I")
            state[0], state[1] = total, 0
            prog = nops_asm_program(ring, k)
            if engine == "jit":
                from uringbpf.bpf import jit
                step = jit.compile(prog, Runtime())
            else:
                from test_loop_asm import InterpStep
                step = InterpStep(prog)
            link = loop.attach_loop(ring, step)
            check = lambda: state[0]  # noqa: E731
        start = time.perf_counter()
        ret = ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS)
        elapsed = time.perf_counter() - start
        if ret != 0 or check() != 0:
            raise RuntimeError(f"loop_step run failed: ret={ret} left={check()}")
        link.destroy()
        return elapsed
    finally:
        ring.close()


VERIFY = [True]


def _check_verifier() -> None:
    """Load once with the verifier; if it refuses the program, say so and run unverified."""
    from uringbpf.designs.loop import nops_example
    ring = _loop_ring(8)
    try:
        obj, link = nops_example(ring, 1, engine="interp", verify=True)
        link.destroy()
        obj.close()
    except Exception as exc:  # noqa: BLE001 - reported, then measured without it
        first = str(exc).splitlines()[0]
        print(f"note: the verifier refuses nops.bpf.c ({first}); measuring it unverified")
        VERIFY[0] = False
    finally:
        ring.close()


def best(fn, repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nops", type=int, default=1_000_000)
    ap.add_argument("--python-nops", type=int, default=100_000)
    ap.add_argument("--interp-nops", type=int, default=20_000)
    ap.add_argument("--k", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    source = "asm"
    try:
        from uringbpf.designs.loop import nops_example  # noqa: F401
        import uringbpf.bpf.object  # noqa: F401
        source = "c"
    except ImportError:
        pass
    print(f"loop_step program from: {'examples/loop/nops.bpf.c' if source == 'c' else 'assembly'}")
    if source == "c":
        _check_verifier()
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_c(Path(tmp))
        for k in args.k:
            rates = {
                "c-liburing": args.nops / best(lambda: run_c(exe, args.nops, k), args.repeat),
                "python-ring": args.python_nops / best(lambda: run_python(args.python_nops, k),
                                                       args.repeat),
                "loop_step-jit": args.nops / best(
                    lambda: run_loop_step(args.nops, k, "jit", source), args.repeat),
                "loop_step-interp": args.interp_nops / best(
                    lambda: run_loop_step(args.interp_nops, k, "interp", source), 1),
            }
            print(f"K={k}")
            for name, rate in rates.items():
                print(f"  {name:18s} {rate / 1e6:8.3f} M NOPs/s")
            print(f"  ratio loop_step-jit / c-liburing  = "
                  f"{rates['loop_step-jit'] / rates['c-liburing']:.2f}  (target >= 0.8)")
            print(f"  ratio loop_step-jit / python-ring = "
                  f"{rates['loop_step-jit'] / rates['python-ring']:.1f}  (target >= 5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
