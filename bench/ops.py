"""IORING_OP_BPF benchmark: READ -> BPF crc32c chain vs READ + checksum in Python.

    python bench/ops.py [--size-mib 4] [--block-kib 64] [--engine jit|interp] [--breakdown]

Per block, the BPF side submits one linked pair (READ, IORING_OP_BPF crc32c) and waits
for both CQEs; the Python side submits the READ, waits, then computes crc32c in Python
(a table-driven pure-Python loop, and zlib-free native crc32c from designs/kbuf for
reference).  Prints MiB/s and ratios.  Ming: the op is "for function, not speed".
``--breakdown`` also times, per block, the prep (submit hook, Python + prep_fn) and the
issue (issue_fn: the kfuncs and the crc loop) of the BPF side, in a separate run.
"""

from __future__ import annotations

import argparse
import importlib.util
import mmap
import os
import tempfile
import time
from pathlib import Path

from uringbpf.designs.kbuf import crc32c as native_crc
from uringbpf.uring.ring import Ring

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("ops_drivers", ROOT / "examples/ops/drivers.py")
drivers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(drivers)

_T = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _T.append(_c)


def py_crc32c(data: bytes) -> int:
    crc, t = 0xFFFFFFFF, _T
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def python_side(path: str, block: int, native: bool) -> float:
    fd = os.open(path, os.O_RDONLY)
    buf = mmap.mmap(-1, block)
    size = os.path.getsize(path)
    t = time.perf_counter()
    with Ring(8) as ring:
        for off in range(0, size, block):
            ring.prep_read(fd, buf, off, nbytes=min(block, size - off), user_data=1)
            ring.submit()
            n = ring.wait(1)[0].res
            if native:
                import ctypes
                native_crc(ctypes.addressof(ctypes.c_char.from_buffer(buf)), n)
            else:
                py_crc32c(buf[:n])
    dt = time.perf_counter() - t
    os.close(fd)
    return dt


def bpf_side(path: str, block: int, engine: str) -> float:
    """Steady state: the object is loaded and attached before the clock starts."""
    from uringbpf.designs import ops
    fd = os.open(path, os.O_RDONLY)
    buf = mmap.mmap(-1, block)
    size = os.path.getsize(path)
    with ops.create_ring(8) as ring:
        obj, _ = ops.open_example("cksum", ring, engine=engine)
        try:
            drivers.cksum_blocks(ring, obj, fd, min(size, block), buf, block=block)  # warm
            t = time.perf_counter()
            drivers.cksum_blocks(ring, obj, fd, size, buf, block=block)
            dt = time.perf_counter() - t
        finally:
            obj.close()
    os.close(fd)
    return dt


def breakdown(path: str, block: int, engine: str) -> tuple[float, float, float]:
    """Microseconds per block: (total, prep, issue), with timing wrappers installed."""
    from uringbpf.designs import ops
    spent = {"prep": 0.0, "issue": 0.0}
    orig = {"_prep": ops.OpsTable._prep, "_issue": ops.OpsTable._issue}

    def timed(name, key):
        def wrapper(self, arg):
            t0 = time.perf_counter()
            try:
                return orig[name](self, arg)
            finally:
                spent[key] += time.perf_counter() - t0
        return wrapper

    ops.OpsTable._prep, ops.OpsTable._issue = timed("_prep", "prep"), timed("_issue", "issue")
    try:
        dt = bpf_side(path, block, engine)
    finally:
        ops.OpsTable._prep, ops.OpsTable._issue = orig["_prep"], orig["_issue"]
    n = (os.path.getsize(path) + block - 1) // block + 1        # + the warm-up block
    return dt / (n - 1) * 1e6, spent["prep"] / n * 1e6, spent["issue"] / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=float, default=4)
    ap.add_argument("--block-kib", type=int, default=64)
    ap.add_argument("--engine", choices=("jit", "interp"), default="jit")
    ap.add_argument("--breakdown", action="store_true")
    a = ap.parse_args()
    size, block = int(a.size_mib * 2**20), a.block_kib * 1024
    with tempfile.NamedTemporaryFile(dir=os.environ.get("TMPDIR"), delete=False) as f:
        f.write(os.urandom(size))
    try:
        rows = [("READ -> BPF crc32c (" + a.engine + ")", bpf_side(f.name, block, a.engine)),
                ("READ + pure-Python crc32c", python_side(f.name, block, False)),
                ("READ + native crc32c (reference)", python_side(f.name, block, True))]
        split = breakdown(f.name, block, a.engine) if a.breakdown else None
    finally:
        os.unlink(f.name)
    base = rows[1][1]
    print(f"{size / 2**20:.1f} MiB in {block // 1024} KiB blocks")
    for name, dt in rows:
        print(f"{name:40s} {size / 2**20 / dt:8.1f} MiB/s   time vs pure Python: {dt / base:6.2f}x")
    if split:
        print(f"BPF side per block: {split[0]:.1f} us total, prep {split[1]:.1f} us, "
              f"issue {split[2]:.1f} us")


if __name__ == "__main__":
    main()
