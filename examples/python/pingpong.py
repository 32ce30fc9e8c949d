"""The 2021 RFC's pingpong test in Python: two BPF requests bounce a counter.

    python examples/python/pingpong.py [--app] [--engine jit|interp]

Request idx (0 or 1, from the struct its user_data points at) listens on CQ idx+1 and
answers on the peer's CQ with the counter + 1; a NOP to CQ 1 starts the game.  Request 0
ends having seen 20, request 1 having seen 21 (st.seen[0], st.seen[1]).  The design's
C version is designs/requests/examples/requests.bpf.c (pingpong).
"""

from __future__ import annotations

import argparse
import ctypes

from uringbpf.lang import Module, array, ptr, s32, stack, u8, u32, u64
from uringbpf.lang.requests import bpf_copy_from_user, iouring_emit_cqe, iouring_reap_cqe
from uringbpf.uring.uapi import Cqe

bpf = Module("pingpong")
LAST = 20


class PingCtx(ctypes.Structure):
    _fields_ = [("idx", ctypes.c_uint64)]


@bpf.bss
class st:
    started: array(u64, 2)
    seen: array(u64, 2)     # the counter each request saw last


@bpf.request
def pingpong(ctx) -> s32:
    pc = stack(PingCtx)
    if bpf_copy_from_user(ptr[u8](pc), 8, ctx.user_data) != 0:
        return 0
    idx = u32(pc.idx & 1)
    if st.started[idx] == 0:        # first run: wait for the first ball on our CQ
        st.started[idx] = 1
        ctx.wait_idx = idx + 1
        ctx.wait_nr = 1
        return 0
    cqe = stack(Cqe)
    if iouring_reap_cqe(ctx, idx + 1, ptr[u8](cqe), 16) != 0:
        return 0
    it = cqe.user_data
    iouring_emit_cqe(ctx, (idx ^ 1) + 1, it + 1, 0, 0)
    if it < LAST:
        ctx.wait_idx = idx + 1
        ctx.wait_nr = 1
    else:
        st.seen[idx] = it
    return 0


def play(app: bool = False, engine: str = "jit") -> dict:
    """Both requests, the kick-off NOP; returns what the program and the ring show."""
    from uringbpf.designs.requests import Ring
    from uringbpf.uring import uapi as u
    for i in range(2):
        st.started[i] = 0
        st.seen[i] = 0
    ring = Ring(8, nr_cq=2, cq_sizes=[128, 128])
    try:
        handle = pingpong.run_in_app(ring, slot=2) if app else pingpong.attach(ring, engine, slot=2)
        with handle:
            ctxs = [PingCtx(0), PingCtx(1)]
            for c in ctxs:
                ring.prep_bpf(2, user_data=ctypes.addressof(c))
            sqe = ring.get_sqe()
            sqe.opcode, sqe.fd, sqe.user_data = u.IORING_OP_NOP, -1, 0
            sqe.cq_idx = 1                             # the kick-off
            submitted = ring.submit()
            ring.wait_cqe_nr(2)
            cqes = ring.reap()
            # both requests completed (their user_data are the two contexts), with res 0
            done = sorted((c.user_data, c.res) for c in cqes) == sorted(
                (ctypes.addressof(c), 0) for c in ctxs)
            return {"submitted": submitted, "done": done, "seen": [int(st.seen[0]), int(st.seen[1])],
                    "runs": ring.requests.stats["runs"]}
    finally:
        ring.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--app", action="store_true")
    ap.add_argument("--engine", choices=("jit", "interp"), default="jit")
    ap.add_argument("--emit-obj", metavar="PATH", help="write the compiled .bpf.o and exit")
    a = ap.parse_args()
    if a.emit_obj:
        print(bpf.emit_obj(a.emit_obj))
        return
    print(play(a.app, a.engine))


if __name__ == "__main__":
    main()
