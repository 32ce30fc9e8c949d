"""Example 3 (the RFC's pingpong test): two BPF requests bounce a counter.

Request idx listens on CQ idx+1 and answers on the peer's CQ with counter + 1; a NOP to
CQ 1 starts the game.  Program 0 ends having seen 20, program 1 having seen 21.
Run: ``python examples/requests/pingpong.py [interp]``.
"""

from __future__ import annotations

import ctypes
import sys

from common import setup, slots

from uringbpf.uring import uapi as u


class PingCtx(ctypes.Structure):
    """The context of one player: its CQ index."""
    _fields_ = [("idx", ctypes.c_uint64)]


def run(engine: str = "jit", **kw) -> dict:
    """Two requests bounce a counter between CQ 1 and CQ 2; returns the slots and run count."""
    ring, obj = setup(engine, **kw)
    try:
        ctxs = [PingCtx(0), PingCtx(1)]
        for c in ctxs:
            ring.prep_bpf(2, user_data=ctypes.addressof(c))
        sqe = ring.get_sqe()
        sqe.opcode, sqe.fd, sqe.user_data = u.IORING_OP_NOP, -1, 0
        sqe.cq_idx = 1                             # the kick-off
        submitted = ring.submit()
        ring.wait_cqe_nr(2)
        done = sorted(c.user_data for c in ring.reap())
        return {"submitted": submitted, "done": done,
                "ctx_addrs": sorted(ctypes.addressof(c) for c in ctxs),
                "slots": slots(obj, 7), "runs": ring.requests.stats["runs"]}
    finally:
        ring.close()


if __name__ == "__main__":
    out = run(*(sys.argv[1:2]))
    print("arr[5], arr[6] =", out["slots"][5], out["slots"][6], f"({out['runs']} runs)")
