"""Example 2 (the RFC's counting test): react to 11 timer ticks inside BPF.

One BPF request queues a 200 ms TIMEOUT whose CQE goes to CQ 1, sleeps until CQ 1 has
it, and does that 11 times; the application submits one SQE and sees one completion.
Run: ``python examples/requests/counting.py [interp]``.
"""

from __future__ import annotations

import ctypes
import sys
import time

from common import setup, slots

from uringbpf.uring.uapi import KernelTimespec


def run(engine: str = "jit", tick: float = 0.2, **kw) -> dict:
    """A BPF request counting CQEs for ``tick`` seconds; returns what it saw."""
    ring, obj = setup(engine, **kw)
    try:
        ts = KernelTimespec.from_seconds(tick)       # struct counting_ctx { ts }
        ring.prep_bpf(1, user_data=ctypes.addressof(ts))
        t0 = time.monotonic()
        submitted = ring.submit()
        cqe = ring.wait_cqe()
        elapsed = time.monotonic() - t0
        completions = [tuple(c) for c in ring.reap()]
        return {"submitted": submitted, "completions": completions, "slots": slots(obj, 3),
                "elapsed": elapsed, "runs": ring.requests.stats["runs"],
                "ts_addr": ctypes.addressof(ts), "cq1_left": ring.cq(1).ready(),
                "first_res": cqe is not None}
    finally:
        ring.close()


if __name__ == "__main__":
    out = run(*(sys.argv[1:2]))
    print("completions:", out["completions"])
    print("arr[0..2] =", out["slots"], f"in {out['elapsed']:.2f} s, {out['runs']} program runs")
