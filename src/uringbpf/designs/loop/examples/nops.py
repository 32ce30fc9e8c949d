"""Run examples/loop/nops.bpf.c: N NOPs, at most K in flight, all from one io_uring_enter.

    python examples/loop/nops.py [--nops 100000] [--k 8] [--engine jit|interp]
                                 [--executor emulated|kernel|auto]

The flow is libbpf's skeleton flow (liburing's test/bpf_nops.c): open the object, point
the struct_ops at the ring, set the offsets in .rodata, load, attach, enter once.
``--executor kernel`` loads it into the kernel's own loop (Linux >= 7.1; docs/kernel.md).
"""

from __future__ import annotations

import argparse
import time

from uringbpf import BpfObject, Ring
from uringbpf.designs import loop
from uringbpf.uring import (ENTER_GETEVENTS, SETUP_CQSIZE, SETUP_DEFER_TASKRUN,
                            SETUP_NO_SQARRAY, SETUP_SINGLE_ISSUER, SETUP_SQ_REWIND)


def run(nops: int, k: int = 8, engine: str = "jit",
        executor: str = "emulated") -> tuple[int, float, str]:
    """Returns (NOPs left undone, seconds, engine used: ``"kernel"`` with that executor)."""
    ring = Ring(k, cq_entries=k, flags=SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN |
                SETUP_NO_SQARRAY | SETUP_CQSIZE | SETUP_SQ_REWIND)
    obj = BpfObject.open(loop.example_object("nops"))
    try:
        obj.struct_ops.nops_ops.ring_fd = ring.fd
        obj.bss.reqs_to_run = nops
        obj.rodata.cq_head_offset = ring.params.cq_off.head
        obj.rodata.cq_tail_offset = ring.params.cq_off.tail
        obj.rodata.cqes_offset = ring.params.cq_off.cqes
        obj.rodata.cq_entries = k
        obj.rodata.sq_entries = k
        obj.rodata.max_inflight = k
        obj.load(engine, executor=executor)
        link = obj.attach_struct_ops("nops_ops")
        start = time.perf_counter()
        ret = ring.enter(0, 0, ENTER_GETEVENTS)
        elapsed = time.perf_counter() - start
        if ret:
            raise OSError(-ret, "loop run failed")
        left, used = obj.bss.reqs_to_run, link.engine
        link.destroy()
        return left, elapsed, used
    finally:
        obj.close()
        ring.close()


def main() -> None:
    """Command line: run N NOPs through nops.bpf.c and print the rate."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nops", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--engine", choices=("jit", "interp"), default="jit")
    ap.add_argument("--executor", choices=("emulated", "kernel", "auto"), default="emulated")
    args = ap.parse_args()
    left, secs, used = run(args.nops, args.k, args.engine, args.executor)
    print(f"{args.nops - left} NOPs in {secs * 1e3:.1f} ms ({(args.nops - left) / secs / 1e6:.2f} M/s, "
          f"engine={used}, left={left})")


if __name__ == "__main__":
    main()
