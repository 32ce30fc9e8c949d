"""Time the pingpong example's bounce (24 program runs, ~45 CQEs moved between CQs) on
each engine pair: Python or native engine x interpreter or JIT.  Prints per-run costs
and ratios; nothing here is asserted (see tests/designs/test_requests_examples.py).
Run: ``python examples/requests/bench_engines.py [rounds]``.
"""

from __future__ import annotations

import ctypes
import sys
import time

from common import build, setup
from pingpong import PingCtx

from uringbpf.uring import uapi as u


def one_game(ring, obj) -> float:
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


def main(rounds: int = 30) -> None:
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


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
