"""Example 1 (the RFC's test1): every feature once.

The program emits a CQE to CQ 0 and two to CQ 1, reaps those two back, queues a NOP,
reads a value from our memory (29) and overwrites it (31), then waits for a CQE on CQ 0
and completes on its second run.  Run: ``python examples/requests/features.py [interp]``.
"""

from __future__ import annotations

import ctypes
import sys

from common import setup, slots


def run(engine: str = "jit", **kw) -> dict:
    """Exercise the RFC's helpers from one request; returns the CQEs and slot values."""
    ring, obj = setup(engine, **kw)
    try:
        secret = ctypes.c_uint64(29)
        ring.prep_bpf(0, user_data=ctypes.addressof(secret))
        submitted = ring.submit()
        ring.wait_cqe_nr(3)
        cqes = [tuple(c) for c in ring.reap()]
        return {"submitted": submitted, "cqes": cqes, "slots": slots(obj, 11),
                "secret_addr": ctypes.addressof(secret), "secret": secret.value,
                "cq1_left": ring.cq(1).ready(), "runs": ring.requests.stats["runs"]}
    finally:
        ring.close()


if __name__ == "__main__":
    out = run(*(sys.argv[1:2]))
    for ud, res, flags in out["cqes"]:
        print(f"cqe user_data={ud:#x} res={res} flags={flags}")
    print("arr[0..10] =", out["slots"])
    print("new secret =", out["secret"])
