"""The loop design's section of ``uringbpf demo``: cp through a pipe, checksum, NOP rate."""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time

from ...errors import BpfVerifierError
from ...uring import uapi
from .copy import copy_fd, fnv1a32
from .example import make_ring, nops_example


def _load_verified(fn, *args, **kw):
    """Run an example loader with the verifier; if it refuses the program, say so and go on."""
    try:
        return fn(*args, verify=True, **kw)
    except BpfVerifierError as exc:   # the demo says so and asks for an unverified run
        print(f"  (verifier: {str(exc).splitlines()[0]} -- running unverified)")
        return fn(*args, verify=False, **kw)


#: NOPs of the nops.bpf.c part on the interpreter (a few seconds there, like 300,000 on the JIT)
NOPS_INTERP = 30_000


def demo_section(opts=None) -> None:
    """cp with short reads through a pipe, checksum-while-copy, and NOP throughput."""
    # the engine uringbpf demo chose (uringbpf.bpf.engines); the interpreter runs fewer NOPs
    engine = opts.engine if opts is not None else "jit"
    nops = 300_000 if engine == "jit" else NOPS_INTERP
    size = 4 << 20
    data = random.Random(1).randbytes(size)
    r, w = os.pipe()

    def writer():
        try:
            for i in range(0, size, 50_000):
                os.write(w, data[i:i + 50_000])
        finally:
            os.close(w)

    with tempfile.TemporaryDirectory(prefix="uringbpf-loop-") as tmp:
        out_path = os.path.join(tmp, "out")
        out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        t = threading.Thread(target=writer)
        t.start()
        start = time.perf_counter()
        try:
            res = _load_verified(copy_fd, r, out, chunk=128 * 1024, engine=engine)
        finally:
            os.close(r)
            t.join()
            os.close(out)
        secs = time.perf_counter() - start
        with open(out_path, "rb") as f:
            same = f.read() == data
    print(f"  cp.bpf.c: {res.copied / (1 << 20):.1f} MiB from a pipe in {res.reads} reads, "
          f"{res.short_reads} of them short (128 KiB asked, <= 64 KiB in the pipe); each write "
          f"as long as its read; identical: {'yes' if same else 'NO'}; "
          f"one io_uring_enter of {res.seconds * 1e3:.0f} ms (a Python thread feeds the pipe), "
          f"{secs * 1e3:.0f} ms with compile+verify+{res.engine}, engine={res.engine}")
    r, w = os.pipe()
    with tempfile.TemporaryDirectory(prefix="uringbpf-loop-") as tmp:
        out = os.open(os.path.join(tmp, "out"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        t = threading.Thread(target=writer)
        t.start()
        try:
            res = _load_verified(copy_fd, r, out, checksum=True, engine=engine)
        finally:
            os.close(r)
            t.join()
            os.close(out)
    same = res.fnv1a == fnv1a32(data)
    print(f"  cksum.bpf.c: copied {res.copied / (1 << 20):.1f} MiB and hashed it inside the loop:"
          f" fnv1a32={res.fnv1a:#010x}, matches Python: {'yes' if same else 'NO'} "
          "(no link chain can look at the data)")
    for k in (8, 32):
        ring = make_ring(k)
        try:
            obj, link = _load_verified(nops_example, ring, nops, cap=k, engine=engine)
            start = time.perf_counter()
            ret = ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS)
            secs = time.perf_counter() - start
            left = obj.bss.reqs_to_run
            link.destroy()
            obj.close()
        finally:
            ring.close()
        print(f"  nops.bpf.c K={k}: {nops} NOPs in one io_uring_enter: {nops / secs / 1e6:.2f} M "
              f"NOPs/s (ret={ret}, left={left}, engine={link.engine}; see bench/loop_nops.py "
              "for C liburing and Python side by side)")


def register_demo(add_section) -> None:
    """Add the loop design's section to ``uringbpf demo``."""
    add_section("loop", "Linux 7.1 loop_step: short-read-proof cp, checksum, NOP throughput",
                demo_section)
