"""IORING_OP_BPF benchmark: READ -> BPF crc32c chains against C liburing and Python.

    python bench/ops.py [--size-mib 8] [--block-kib 64] [--rounds 3] [--engine jit|interp]

Per block, one linked pair (READ, IORING_OP_BPF crc32c of what it read; the program is
examples/ops/cksum.bpf.c, loaded, verified and compiled before the clock starts), waited
for before the next block.  Rows, timed in alternating rounds over the same file:

* ``C liburing``: a C program (built on the fly with ``cc -luring``) that READs each block
  with liburing and computes crc32c in C, byte-wise with a 256-entry table (the algorithm
  of the BPF program, so the rows compare engines and paths, not algorithms);
* ``C app -> OP_BPF (native path)``: the same C loop, but the block goes through a
  READ -> IORING_OP_BPF chain on an OpsRing: the C application fills the SQEs and calls
  ``ops_enter`` (designs/ops/ops.c), the native submit path -- no Python at all per block;
  ``FIXED buffer``: the same with the buffer registered and an IO_BPF_BUF_FIXED descriptor
  (user memory is probed once per page with process_vm_readv; registered memory is not);
* ``Python app -> OP_BPF (native path)`` / ``(Python path)``: drivers.cksum_blocks on Ring
  (prep_read, prep_bpf, submit, wait from Python); the submit hook in C (``ops_enter``) or
  the Python reference path (``ring.ops.allow_native = False``, what ran before #17);
* ``READ + pure-Python crc32c`` and ``READ + native crc32c`` (slicing-by-8 C, reference).

Every row's checksums are compared with the C program's; a mismatch aborts.  Prints MiB/s
(median of the rounds, min-max) and CPU time per block; no thresholds.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from uringbpf import Buffer
from uringbpf import native
from uringbpf.designs import ops
from uringbpf.designs.kbuf import crc32c as native_crc
from uringbpf.uring import uapi as u
from uringbpf.uring.ring import Ring

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("ops_drivers", ops.EXAMPLES_DIR / "drivers.py")
drivers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(drivers)

_T = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _T.append(_c)

C_SOURCE = r"""
#include <liburing.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <errno.h>

static uint32_t T[256];

static void init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
		T[i] = c;
	}
}

/* C liburing: READ each block, then crc32c in C; per-block crcs summed into *sum */
int64_t c_read_crc(int fd, uint64_t size, uint64_t block, uint8_t *buf, uint64_t *sum)
{
	struct io_uring ring;
	init();
	if (io_uring_queue_init(8, &ring, 0))
		return -1;
	*sum = 0;
	for (uint64_t off = 0; off < size; off += block) {
		struct io_uring_sqe *s = io_uring_get_sqe(&ring);
		struct io_uring_cqe *c;
		uint32_t crc = ~0u;
		int n;
		io_uring_prep_read(s, fd, buf, block, off);
		io_uring_submit_and_wait(&ring, 1);
		if (io_uring_peek_cqe(&ring, &c))
			return -2;
		n = c->res;
		io_uring_cqe_seen(&ring, c);
		if (n < 0)
			return n;
		for (int i = 0; i < n; i++)
			crc = T[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
		*sum += ~crc;
	}
	io_uring_queue_exit(&ring);
	return 0;
}

/* The application side of an OpsRing in C: SQEs written at the SQ tail as liburing
 * would, io_uring_enter replaced by ops_enter (the ring's IORING_SETUP_BPF_EXT path). */
struct opsring {
	uint64_t handle, enter;
	uint32_t *sq_tail, *sq_array, sq_mask, *cq_head, *cq_tail, cq_mask;
	uint8_t *sqes, *cqes;
	uint32_t *last_crc;
	uint64_t desc_type;      /* IO_BPF_BUF_USER (0) or IO_BPF_BUF_FIXED (1, buffer 0) */
};

typedef int64_t (*enter_fn)(uint64_t, uint64_t, uint64_t, uint64_t);

static uint8_t *sqe_at(struct opsring *r, uint32_t tail)
{
	uint32_t p = tail & r->sq_mask;
	uint8_t *s = r->sqes + 64 * (size_t)p;
	if (r->sq_array)
		r->sq_array[p] = p;
	memset(s, 0, 64);
	return s;
}

int64_t c_ops_crc(struct opsring *r, int fd, uint64_t size, uint64_t block, uint8_t *buf,
		  uint64_t *sum)
{
	uint8_t desc[16];
	enter_fn enter = (enter_fn)(uintptr_t)r->enter;
	*sum = 0;
	for (uint64_t off = 0; off < size; off += block) {
		uint32_t tail = *r->sq_tail, len = (uint32_t)(size - off < block ? size - off : block);
		uint32_t head, op = 0u << 24, got = 0, one = 1;
		uint64_t a = (uint64_t)(uintptr_t)buf, ud;
		int32_t rd = -1, cs = -1;
		uint8_t *s = sqe_at(r, tail);
		memset(desc, 0, 16);
		desc[0] = (uint8_t)r->desc_type;
		memcpy(desc + 4, &len, 4);
		memcpy(desc + 8, &a, 8);
		s[0] = IORING_OP_READ;
		s[1] = IOSQE_IO_LINK;
		memcpy(s + 4, &fd, 4);
		memcpy(s + 8, &off, 8);
		memcpy(s + 16, &a, 8);
		memcpy(s + 24, &len, 4);
		ud = 1;
		memcpy(s + 32, &ud, 8);
		s = sqe_at(r, tail + 1);
		s[0] = 65;                                  /* IORING_OP_BPF */
		a = (uint64_t)(uintptr_t)desc;
		memcpy(s + 16, &a, 8);
		memcpy(s + 24, &one, 4);
		memcpy(s + 28, &op, 4);
		ud = 2;
		memcpy(s + 32, &ud, 8);
		__atomic_store_n(r->sq_tail, tail + 2, __ATOMIC_RELEASE);
		if (enter(r->handle, 2, 2, IORING_ENTER_GETEVENTS) != 2)
			return -3;
		head = *r->cq_head;
		while (got < 2) {
			uint8_t *c;
			int32_t res;
			if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
				return -4;
			c = r->cqes + 16 * (size_t)(head & r->cq_mask);
			memcpy(&ud, c, 8);
			memcpy(&res, c + 8, 4);
			if (ud == 1)
				rd = res;
			else
				cs = res;
			head++;
			got++;
		}
		__atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
		if (rd != (int32_t)len || cs < 0)
			return -5;
		*sum += *r->last_crc;
	}
	return 0;
}
"""


class _OpsRingC(ctypes.Structure):
    _fields_ = [("handle", ctypes.c_uint64), ("enter", ctypes.c_uint64),
                ("sq_tail", ctypes.c_uint64), ("sq_array", ctypes.c_uint64),
                ("sq_mask", ctypes.c_uint32), ("pad0", ctypes.c_uint32),
                ("cq_head", ctypes.c_uint64), ("cq_tail", ctypes.c_uint64),
                ("cq_mask", ctypes.c_uint32), ("pad1", ctypes.c_uint32),
                ("sqes", ctypes.c_uint64), ("cqes", ctypes.c_uint64),
                ("last_crc", ctypes.c_uint64), ("desc_type", ctypes.c_uint64)]


def build_c() -> ctypes.CDLL | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not Path("/usr/include/liburing.h").exists():
        print("(C rows skipped: needs cc and liburing-dev: apt-get install liburing-dev)")
        return None
    out = Path(tempfile.gettempdir()) / f"uringbpf-bench-ops-{os.getuid()}.so"
    src = out.with_suffix(".c")
    src.write_text(C_SOURCE)
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(src), "-luring"],
                   check=True)
    lib = ctypes.CDLL(str(out))
    U = ctypes.c_uint64
    lib.c_read_crc.restype = lib.c_ops_crc.restype = ctypes.c_int64
    lib.c_read_crc.argtypes = [ctypes.c_int, U, U, U, U]
    lib.c_ops_crc.argtypes = [U, ctypes.c_int, U, U, U, U]
    return lib


def py_crc32c(data: bytes) -> int:
    crc, t = 0xFFFFFFFF, _T
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    total = fn()
    return time.perf_counter() - w, time.process_time() - c, total


def c_side(lib, path: str, block: int):
    fd = os.open(path, os.O_RDONLY)
    buf = Buffer(block)
    out = ctypes.c_uint64()
    size = os.path.getsize(path)
    try:
        def run():
            if lib.c_read_crc(fd, size, block, buf.addr, ctypes.addressof(out)):
                raise RuntimeError("C liburing run failed")
            return out.value
        return _timed(run)
    finally:
        os.close(fd)


def python_side(path: str, block: int, native_crc_: bool):
    fd = os.open(path, os.O_RDONLY)
    buf = Buffer(block)
    size = os.path.getsize(path)
    try:
        with Ring(8) as ring:
            def run():
                total = 0
                for off in range(0, size, block):
                    ring.prep_read(fd, buf, off, nbytes=min(block, size - off), user_data=1)
                    ring.submit()
                    n = ring.wait(1)[0].res
                    total += (native_crc(buf.addr, n) if native_crc_
                              else py_crc32c(bytes(buf.view[:n])))
                return total
            return _timed(run)
    finally:
        os.close(fd)


def bpf_side(path: str, block: int, engine: str, *, native_path: bool, lib=None,
             fixed: bool = False):
    """Steady state: the object is loaded and attached before the clock starts.  ``lib``:
    the C application drives the ring (ops_enter) instead of Python; ``fixed``: the buffer
    is registered and the descriptor is IO_BPF_BUF_FIXED (no per-page probe of user
    memory, as registered buffers are pinned once in the kernel)."""
    fd = os.open(path, os.O_RDONLY)
    buf = Buffer(block)
    size = os.path.getsize(path)
    try:
        with ops.create_ring(8) as ring:
            obj, _ = ops.open_example("cksum", ring, engine=engine)
            try:
                ring.ops.allow_native = native_path
                if fixed:
                    ring.register_buffers([buf])
                drivers.cksum_blocks(ring, obj, fd, min(size, block), buf, block=block)  # warm
                if lib is not None:
                    if not ring.ops.native_path:
                        raise RuntimeError("the C application needs the native path (JIT)")
                    r = _OpsRingC(ring.ops.nring, native.symbol_address(ops.NATIVE_SOURCE,
                                                                        "ops_enter"),
                                  ring.sq_tail_addr, ring.sq_array_addr, ring.sq_mask, 0,
                                  ring.cq_head_addr, ring.cq_tail_addr, ring.cq_mask, 0,
                                  ring.kernel_sqes_addr, ring.cqes_addr,
                                  obj.bss.address_of("last_crc"),
                                  ops.IO_BPF_BUF_FIXED if fixed else ops.IO_BPF_BUF_USER)
                    out = ctypes.c_uint64()

                    def run():
                        ret = lib.c_ops_crc(ctypes.addressof(r), fd, size, block, buf.addr,
                                            ctypes.addressof(out))
                        if ret:
                            raise RuntimeError(f"C application on the OpsRing failed: {ret}")
                        return out.value
                    res = _timed(run)
                    ring.sync_sq_tail()
                    return res
                return _timed(lambda: sum(c for _, _, c in drivers.cksum_blocks(
                    ring, obj, fd, size, buf, block=block, fixed=fixed)))
            finally:
                obj.close()
    finally:
        os.close(fd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=float, default=8)
    ap.add_argument("--block-kib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--engine", choices=("jit", "interp"), default="jit")
    ap.add_argument("--no-pure-python", action="store_true", help="skip the slow row")
    a = ap.parse_args()
    size, block = int(a.size_mib * 2**20), a.block_kib * 1024
    lib = build_c()
    rows: dict[str, list] = {}

    def add(name, fn):
        rows.setdefault(name, []).append(fn())

    with tempfile.NamedTemporaryFile(dir=os.environ.get("TMPDIR"), delete=False) as f:
        f.write(os.urandom(size))
    try:
        for _ in range(a.rounds):
            if lib is not None:
                add("C liburing: READ + crc32c in C", lambda: c_side(lib, f.name, block))
                if a.engine == "jit":
                    add("C app -> OP_BPF crc32c (native path)",
                        lambda: bpf_side(f.name, block, a.engine, native_path=True, lib=lib))
                    add("C app -> OP_BPF crc32c (native path, FIXED buffer)",
                        lambda: bpf_side(f.name, block, a.engine, native_path=True, lib=lib,
                                         fixed=True))
            add(f"Python app -> OP_BPF crc32c (native path, {a.engine})",
                lambda: bpf_side(f.name, block, a.engine, native_path=True))
            add(f"Python app -> OP_BPF crc32c (native path, FIXED, {a.engine})",
                lambda: bpf_side(f.name, block, a.engine, native_path=True, fixed=True))
            add(f"Python app -> OP_BPF crc32c (Python path, {a.engine})",
                lambda: bpf_side(f.name, block, a.engine, native_path=False))
            add("READ + native crc32c (slicing-by-8, reference)",
                lambda: python_side(f.name, block, True))
        if not a.no_pure_python:
            add("READ + pure-Python crc32c", lambda: python_side(f.name, block, False))
    finally:
        os.unlink(f.name)
    nblocks = (size + block - 1) // block
    sums = {name: {r[2] for r in runs} for name, runs in rows.items()}
    ref = next(iter(sums.values()))
    for name, s in sums.items():
        if s != ref:
            raise SystemExit(f"checksums differ: {name}: {s} vs {ref}")
    print(f"{size / 2**20:.1f} MiB in {block // 1024} KiB blocks, {a.rounds} alternating rounds; "
          "checksums agree")
    base = statistics.median(r[0] for r in rows["C liburing: READ + crc32c in C"]) \
        if "C liburing: READ + crc32c in C" in rows else None
    for name, runs in rows.items():
        walls = [r[0] for r in runs]
        med = statistics.median(walls)
        mibs = [size / 2**20 / w for w in walls]
        cpu = statistics.median(r[1] for r in runs) / nblocks * 1e6
        ratio = f"{base / med:5.2f}x C" if base else ""
        print(f"{name:52s} {size / 2**20 / med:7.1f} MiB/s ({min(mibs):.0f}-{max(mibs):.0f})"
              f"  cpu {cpu:7.1f} us/block  {ratio}")


if __name__ == "__main__":
    main()
