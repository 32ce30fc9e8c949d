"""Time the examples on each engine pair (Python or native engine x interpreter or JIT):
the pingpong bounce (24 program runs, ~45 CQEs moved between CQs) and nop_loop (NOPs kept
8 in flight by one BPF request), against the same NOP loop written in Python on the
plain Ring.  Prints costs and ratios; nothing here is asserted (the tests are in
tests/designs/requests/test_requests_examples.py).
Run: ``python examples/requests/bench_engines.py [rounds] [nops]`` (``--help`` for the
options).
"""

from __future__ import annotations

import argparse
import ctypes
import time

from common import build, setup
from pingpong import PingCtx

from uringbpf.uring import uapi as u
from uringbpf.uring.ring import Ring as PlainRing

QD = 8


def one_game(ring, obj) -> float:
    """One pingpong game; returns its duration in seconds."""
    arr = obj.maps["arr"]
    for i in (0, 1, 5, 6):
        arr.update(i, (0).to_bytes(8, "little"))
    ctxs = [PingCtx(0), PingCtx(1)]
    t0 = time.perf_counter()
    for c in ctxs:
        ring.prep_bpf(2, user_data=ctypes.addressof(c))
    sqe = ring.get_sqe()
    sqe.opcode, sqe.fd, sqe.user_data = u.IORING_OP_NOP, -1, 0
    sqe.cq_idx = 1
    ring.submit()
    ring.wait_cqe_nr(2)
    ring.reap()
    dt = time.perf_counter() - t0
    ring.cq(1).drain()
    ring.cq(2).drain()
    return dt


def nop_loop(ring, obj, nops: int) -> float:
    """``nops`` NOPs driven by one BPF request; returns the duration in seconds."""
    arr = obj.maps["arr"]
    for i in (20, 21, 22):
        arr.update(i, (0).to_bytes(8, "little"))
    t0 = time.perf_counter()
    ring.prep_bpf(4, user_data=nops)
    ring.submit()
    ring.wait_cqe()
    ring.reap()
    dt = time.perf_counter() - t0
    assert arr.lookup_int(22) == nops
    return dt


def python_nop_loop(nops: int) -> float:
    """The same loop in Python on the plain Ring: reap, re-issue, QD 8."""
    with PlainRing(QD) as ring:
        t0 = time.perf_counter()
        issued = done = 0
        while issued < min(QD, nops):
            ring.prep_nop(user_data=issued)
            issued += 1
        ring.submit()
        while done < nops:
            ring.wait_cqe()
            for _ in ring.reap():
                done += 1
                if issued < nops:
                    ring.prep_nop(user_data=issued)
                    issued += 1
            ring.submit()
        return time.perf_counter() - t0


def main(rounds: int = 30, nops: int = 20000) -> None:
    """Time both games on every engine (Python/native, interpreter/JIT) and print them."""
    obj_path = build()
    results = {}
    for native in (False, True):
        for engine in ("interp", "jit"):
            ring, obj = setup(engine, obj_path=obj_path, native=native)
            try:
                one_game(ring, obj)        # warm-up
                best = min(one_game(ring, obj) for _ in range(rounds))
            finally:
                ring.close()
            key = f"{'native' if native else 'python'} engine + {engine}"
            results[key] = best
            print(f"{key:28s} {best * 1e6:9.1f} us per game ({best / 24 * 1e6:7.1f} us per run)")
    base = results["python engine + interp"]
    for key, value in results.items():
        print(f"{key:28s} {base / value:6.1f}x faster than python engine + interp")
    print(f"\nnop_loop: {nops} NOPs, {QD} in flight, driven by one BPF request")
    rates = {}
    for native in (False, True):
        for engine in ("interp", "jit"):
            ring, obj = setup(engine, obj_path=obj_path, native=native)
            try:
                dt = nop_loop(ring, obj, nops)
            finally:
                ring.close()
            key = f"{'native' if native else 'python'} engine + {engine}"
            rates[key] = nops / dt
    rates["python loop on Ring"] = nops / python_nop_loop(nops)
    ref = rates["python loop on Ring"]
    for key, rate in rates.items():
        print(f"{key:28s} {rate:11,.0f} NOPs/s  {rate / ref:5.2f}x the Python loop")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: ``[rounds] [nops]`` (both optional, positional as before)."""
    ap = argparse.ArgumentParser(
        description="Time the requests design's examples on each engine pair (Python or "
                    "native engine x interpreter or JIT): the pingpong game and nop_loop, "
                    "against a NOP loop written in Python on the plain Ring. Prints costs "
                    "and ratios; asserts nothing.")
    ap.add_argument("rounds", nargs="?", type=_positive, default=30,
                    help="pingpong games per engine pair; the best one is reported "
                         "(default: %(default)s)")
    ap.add_argument("nops", nargs="?", type=_positive, default=20000,
                    help="NOPs each nop_loop run (and the Python loop) completes, %d in "
                         "flight (default: %%(default)s)" % QD)
    return ap.parse_args(argv)


if __name__ == "__main__":
    _args = parse_args()
    main(_args.rounds, _args.nops)
