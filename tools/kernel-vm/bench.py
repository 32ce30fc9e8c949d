"""NOP loop and cp in the 7.2 guest: kernel loop_step vs emulated loop_step vs C.

    .venv/bin/python tests/kernel/prepare.py
    tools/kernel-vm/run -- env XDG_CACHE_HOME=$PWD/build/kernel-vm/cache \
        python3 tools/kernel-vm/bench.py [--nops 100000] [--repeat 3]

Run inside the guest (XDG_CACHE_HOME pointing at build/kernel-vm/cache, objects from
tests/kernel/prepare.py).  The CPU is emulated (QEMU TCG): only ratios mean anything.
Prints one line per configuration and the ratios docs/benchmarks.md records.
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "kernel"))

import cases  # noqa: E402  (the suite's object helpers)
from uringbpf import Ring  # noqa: E402
from uringbpf.uring import ENTER_GETEVENTS  # noqa: E402


def nop_rate(executor: str, total: int, k: int) -> float:
    ring = Ring(k, cq_entries=k, flags=cases.LOOP_FLAGS)
    obj = cases._open("nops", ring, max_inflight=k)
    try:
        obj.bss.reqs_to_run = total
        obj.load("jit", executor=executor)
        link = obj.attach_struct_ops("nops_ops")
        t = time.perf_counter()
        ret = ring.enter(0, 0, ENTER_GETEVENTS)
        secs = time.perf_counter() - t
        assert ret == 0 and obj.bss.reqs_to_run == 0, (ret, obj.bss.reqs_to_run)
        link.destroy()
        return total / secs
    finally:
        obj.close()
        ring.close()


def c_rate(total: int, k: int) -> float:
    out = subprocess.run([str(REPO / "build" / "kernel-vm" / "bin" / "nop_bench"), str(total), str(k)],
                         check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]) / float(out[1])


def cp_rate(executor: str, size: int, depth: int) -> float:
    data = os.urandom(size)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        src.write_bytes(data)
        in_fd, out_fd = os.open(src, os.O_RDONLY), os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644)
        ring = Ring(8, cq_entries=8, flags=cases.LOOP_FLAGS)
        chunk = 65536
        buf = mmap.mmap(-1, chunk * depth)
        obj = cases._open("cp", ring, in_fd=in_fd, out_fd=out_fd,
                          buf_addr=ctypes.addressof(ctypes.c_char.from_buffer(buf)),
                          chunk_size=chunk, depth=depth, in_start=0)
        try:
            obj.load("jit", executor=executor)
            link = obj.attach_struct_ops("cp_ops")
            t = time.perf_counter()
            ret = ring.enter(0, 0, ENTER_GETEVENTS)
            secs = time.perf_counter() - t
            assert ret == 0 and obj.bss.copied == size and dst.read_bytes() == data
            link.destroy()
            return size / secs / 1e6
        finally:
            obj.close()
            ring.close()
            del buf
            os.close(in_fd)
            os.close(out_fd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nops", type=int, default=100000)
    ap.add_argument("--cp-mb", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs (TCG timing is noisy)")
    args = ap.parse_args()
    r = args.repeat
    print(f"kernel {os.uname().release} (QEMU TCG: ratios only; best of {r})")
    for k in (1, 8, 32):
        kern = max(nop_rate("kernel", args.nops, k) for _ in range(r))
        emu = max(nop_rate("emulated", args.nops, k) for _ in range(r))
        c = max(c_rate(args.nops, k) for _ in range(r))
        print(f"nops k={k:2}: kernel {kern / 1e6:.3f} M/s, emulated {emu / 1e6:.3f} M/s, "
              f"C io_uring_enter loop {c / 1e6:.3f} M/s; kernel/C {kern / c:.2f}, "
              f"emulated/kernel {emu / kern:.2f}")
    for depth in (1, 4):
        kern = max(cp_rate("kernel", args.cp_mb << 20, depth) for _ in range(r))
        emu = max(cp_rate("emulated", args.cp_mb << 20, depth) for _ in range(r))
        print(f"cp depth={depth}: kernel {kern:.1f} MB/s, emulated {emu:.1f} MB/s; "
              f"emulated/kernel {emu / kern:.2f}")


if __name__ == "__main__":
    main()
