"""Copy a file on tmpfs: the 7.1 loop_step cp program vs C liburing vs Python on Ring.

    .venv/bin/python bench/cp.py [--size-mib 256] [--chunk-kib 128] [--rounds 5]
                                 [--depths 1 4] [--pin CPU | --no-pin] [--no-python]
                                 [--dir /dev/shm]

Three implementations of the same copy (read a chunk, write exactly what the read
returned at the output offset, resume short writes, stop when reads return 0), each at
every depth of ``--depths`` (chunks in flight, default 1 and 4):

* ``loop-jit``: examples/loop/cp.bpf.c as a Linux 7.1 ``loop_step`` on the native driver,
  run through ``uringbpf.designs.loop.copy_fd(..., chunk=..., depth=N, engine="jit")``:
  one ``io_uring_enter`` does the whole copy.  The program keeps N slots (one buffer
  each), handles every ready completion per step and submits the follow-up SQEs with one
  ``bpf_io_uring_submit_sqes`` per step;
* ``c-liburing``: the same slot loop in C against the system liburing, compiled on the
  fly with ``cc -O2 -luring`` (a SINGLE_ISSUER | DEFER_TASKRUN ring, like the loop's ring);
* ``python-ring``: the same slot loop in Python on :class:`uringbpf.Ring`.

At depth 1 all three read at the file position (offset -1, as cp.bpf.c does for pipes);
deeper, at explicit offsets.  The headline ratios are loop-jit / c-liburing at the same
depth.

tmpfs files do not support RWF_NOWAIT, so io_uring hands EVERY read and write to an
io-wq worker thread; at depth 1 each request is a task -> worker -> task hand-off.  Where
the scheduler puts that worker (same vCPU or the other one) changes a run's speed by up
to 2.5x, so by default the whole benchmark is pinned to one CPU (the workers inherit the
affinity); ``--no-pin`` measures the free-running case, where depth matters.

Engines run interleaved for ``--rounds`` rounds; every copy is checked byte-for-byte
against the source by BLAKE2b hash and the output removed.  The MEDIAN of the rounds is
reported (the best is printed too); ratios use the medians.  Only the copy loop is timed
(after ring setup, buffer allocation and, for the loop program, loading and JIT
compiling); the loop program's whole ``copy_fd`` call is shown as well.
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

C_CP = r"""
#include <liburing.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

/* one slot per chunk in flight: read it, write what was read, read the next one */
struct slot {
	char *buf;
	unsigned long long off;	/* output offset of this chunk */
	unsigned len, written;
	int writing;
};

static unsigned long long next_off, copied;
static unsigned chunk, qd;
static int in_fd, out_fd;

static void queue_read(struct io_uring *ring, struct slot *s, unsigned idx)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	/* depth 1: the file position, exactly as cp.bpf.c; deeper: explicit offsets */
	unsigned long long roff = qd == 1 ? (unsigned long long)-1 : next_off;
	s->off = next_off;
	s->writing = 0;
	io_uring_prep_read(sqe, in_fd, s->buf, chunk, roff);
	sqe->user_data = idx;
	next_off += chunk;
}

static void queue_write(struct io_uring *ring, struct slot *s, unsigned idx)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	s->writing = 1;
	io_uring_prep_write(sqe, out_fd, s->buf + s->written, s->len - s->written,
			    s->off + s->written);
	sqe->user_data = idx;
}

int main(int argc, char **argv)
{
	struct io_uring ring;
	struct io_uring_params p;
	struct io_uring_cqe *cqe;
	struct timespec a, b;
	struct slot *slots;
	unsigned i, inflight = 0, entries;
	unsigned long long syscalls = 0;

	if (argc != 5)
		return 2;
	chunk = atoi(argv[3]);
	qd = atoi(argv[4]);
	in_fd = open(argv[1], O_RDONLY);
	out_fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in_fd < 0 || out_fd < 0)
		return 3;
	slots = calloc(qd, sizeof(*slots));
	for (i = 0; i < qd; i++) {
		if (posix_memalign((void **)&slots[i].buf, 4096, chunk))
			return 4;
		memset(slots[i].buf, 0, chunk);
	}
	entries = qd < 8 ? 8 : qd;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	if (io_uring_queue_init_params(entries, &ring, &p) < 0)
		return 5;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < qd; i++, inflight++)
		queue_read(&ring, &slots[i], i);
	while (inflight) {
		unsigned head, seen = 0;
		if (io_uring_submit_and_wait(&ring, 1) < 0)
			return 6;
		syscalls++;
		io_uring_for_each_cqe(&ring, head, cqe) {
			struct slot *s = &slots[cqe->user_data];
			int res = cqe->res;
			seen++;
			if (res < 0) {
				fprintf(stderr, "io error %d\n", res);
				return 7;
			}
			if (!s->writing) {
				if (res == 0) {		/* end of file for this slot */
					inflight--;
					continue;
				}
				s->len = res;
				s->written = 0;
				queue_write(&ring, s, cqe->user_data);
			} else {
				if (res == 0)
					return 8;
				s->written += res;
				copied += res;
				if (s->written < s->len)
					queue_write(&ring, s, cqe->user_data);
				else
					queue_read(&ring, s, cqe->user_data);
			}
		}
		io_uring_cq_advance(&ring, seen);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%lld %llu %llu\n",
	       (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec),
	       copied, syscalls);
	io_uring_queue_exit(&ring);
	close(out_fd);
	return 0;
}
"""


# --- setup ------------------------------------------------------------------------------
def pick_dir(requested: str | None) -> tuple[Path, str]:
    """A tmpfs directory: --dir, else /dev/shm; fall back to /tmp and say what it is."""
    for cand in ([requested] if requested else ["/dev/shm"]):
        if cand and os.path.isdir(cand) and os.access(cand, os.W_OK):
            return Path(cand), fs_type(cand)
    return Path(tempfile.gettempdir()), fs_type(tempfile.gettempdir())


def fs_type(path: str) -> str:
    """The filesystem type of the mount holding ``path`` (from /proc/self/mounts)."""
    best, kind = "", "unknown"
    real = os.path.realpath(path)
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                mnt = parts[1]
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


def build_c(tmp: Path) -> tuple[Path | None, str]:
    """Compile the C loop; (None, reason) when cc or the liburing headers are missing."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler (cc) on PATH"
    src, exe = tmp / "cp_liburing.c", tmp / "cp_liburing"
    src.write_text(C_CP)
    out = subprocess.run([cc, "-O2", "-o", str(exe), str(src), "-luring"],
                         capture_output=True, text=True)
    if out.returncode:
        first = (out.stderr.strip().splitlines() or ["?"])[0]
        return None, f"cc -O2 -luring failed (liburing-dev missing?): {first}"
    return exe, ""


def make_source(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; return their BLAKE2b hex digest."""
    h = hashlib.blake2b()
    step = 8 << 20
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(step, left))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


def file_hash(path: Path) -> str:
    h = hashlib.blake2b()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            h.update(block)
    return h.hexdigest()


# --- the three engines ------------------------------------------------------------------
def run_c(exe: Path, src: Path, dst: Path, chunk: int, qd: int) -> float:
    out = subprocess.run([str(exe), str(src), str(dst), str(chunk), str(qd)],
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"C copy failed with {out.returncode}: {out.stderr.strip()}")
    ns, _copied, _calls = (int(x) for x in out.stdout.split())
    return ns / 1e9


def run_python(src: Path, dst: Path, chunk: int, qd: int) -> float:
    """The same slot loop as the C program, on uringbpf.Ring."""
    from uringbpf import Ring
    from uringbpf.uring import uapi
    in_fd = os.open(src, os.O_RDONLY)
    out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    ring = Ring(max(8, qd), flags=uapi.IORING_SETUP_SINGLE_ISSUER
                | uapi.IORING_SETUP_DEFER_TASKRUN)
    bufs = [mmap.mmap(-1, chunk) for _ in range(qd)]
    views = [memoryview(b) for b in bufs]
    # per slot: [output offset, length read, bytes written, writing?]
    slots = [[0, 0, 0, False] for _ in range(qd)]
    next_off = 0
    try:
        start = time.perf_counter()

        def queue_read(i: int) -> None:
            nonlocal next_off
            s = slots[i]
            s[0], s[3] = next_off, False
            ring.prep_read(in_fd, views[i], -1 if qd == 1 else next_off, user_data=i)
            next_off += chunk

        def queue_write(i: int) -> None:
            s = slots[i]
            s[3] = True
            ring.prep_write(out_fd, views[i][s[2]:s[1]], s[0] + s[2], user_data=i)

        for i in range(qd):
            queue_read(i)
        inflight = qd
        while inflight:
            ring.submit_and_wait(1)
            for c in ring.reap():
                i, res = c.user_data, c.res
                if res < 0:
                    raise OSError(-res, os.strerror(-res))
                s = slots[i]
                if not s[3]:
                    if res == 0:
                        inflight -= 1
                        continue
                    s[1], s[2] = res, 0
                    queue_write(i)
                else:
                    if res == 0:
                        raise OSError(5, "write made no progress")
                    s[2] += res
                    if s[2] < s[1]:
                        queue_write(i)
                    else:
                        queue_read(i)
        return time.perf_counter() - start
    finally:
        ring.close()
        os.close(in_fd)
        os.close(out_fd)
        for v in views:
            v.release()


LOOP_TOTAL: dict[int, list[float]] = {}   # whole copy_fd() calls per depth (load+JIT+copy)


def run_loop(src: Path, dst: Path, chunk: int, qd: int, engine: str = "jit") -> float:
    """examples/loop/cp.bpf.c through copy_fd(..., depth=qd): one io_uring_enter."""
    from uringbpf.designs import loop
    in_fd = os.open(src, os.O_RDONLY)
    out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        t0 = time.perf_counter()
        res = loop.copy_fd(in_fd, out_fd, chunk=chunk, engine=engine, depth=qd)
        LOOP_TOTAL.setdefault(qd, []).append(time.perf_counter() - t0)
        if res.error or not res.done:
            raise RuntimeError(f"loop cp failed: error={res.error} done={res.done}")
        if res.engine != engine or res.depth != qd:
            raise RuntimeError(f"asked for {engine} at depth {qd}, ran {res.engine} "
                               f"at depth {res.depth}")
        return res.seconds
    finally:
        os.close(in_fd)
        os.close(out_fd)


# --- driver -----------------------------------------------------------------------------
def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (f"Linux {platform.release()} {platform.machine()}, {os.cpu_count()} cpus ({cpu}), "
            f"load average {load:.2f}, Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--chunk-kib", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--depths", type=int, nargs="+", default=[1, 4],
                    help="chunks in flight for every engine (cp.bpf.c supports 1..8)")
    ap.add_argument("--no-python", action="store_true")
    ap.add_argument("--pin", type=int, default=None, metavar="CPU",
                    help="CPU to pin the benchmark (and so the io-wq workers) to; default: "
                    "the first CPU this process may use")
    ap.add_argument("--no-pin", action="store_true",
                    help="let the scheduler place the task and the io-wq workers (noisy: "
                    "bimodal per run on a 2-vCPU VM, see docs/benchmarks.md)")
    ap.add_argument("--dir", default=None, help="directory for the files (default /dev/shm)")
    args = ap.parse_args(argv)
    if any(not 1 <= q <= 8 for q in args.depths):
        ap.error("--depths: each depth must be in 1..8 (cp.bpf.c's MAX_DEPTH)")
    depths = list(dict.fromkeys(args.depths))
    if args.no_pin:
        args.pin = None
    else:
        if args.pin is None:
            args.pin = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {args.pin})
    size, chunk = args.size_mib << 20, args.chunk_kib << 10
    mib = size / (1 << 20)

    where, kind = pick_dir(args.dir)
    print(machine())
    if args.pin is not None:
        print(f"pinned to CPU {args.pin} (io-wq workers inherit the affinity)")
    note = "" if kind == "tmpfs" else "  (NOT tmpfs: /dev/shm unusable, fell back)"
    print(f"files in {where} ({kind}){note}; {args.size_mib} MiB, chunk {args.chunk_kib} KiB, "
          f"depths {depths}, {args.rounds} rounds interleaved, median reported")

    with tempfile.TemporaryDirectory(prefix="uringbpf-cp-") as build, \
            tempfile.TemporaryDirectory(prefix="uringbpf-cp-", dir=where) as work:
        exe, why = build_c(Path(build))
        if exe is None:
            print(f"note: C liburing baseline unavailable: {why}; nothing to compare, exiting")
            return 0
        src, dst = Path(work) / "src", Path(work) / "dst"
        digest = make_source(src, size)

        engines: dict[str, object] = {}
        for q in depths:
            engines[f"loop-jit (qd {q})"] = lambda q=q: run_loop(src, dst, chunk, q)
            engines[f"c-liburing (qd {q})"] = lambda q=q: run_c(exe, src, dst, chunk, q)
            if not args.no_python:
                engines[f"python-ring (qd {q})"] = lambda q=q: run_python(src, dst, chunk, q)

        times: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(args.rounds):
            for name, fn in engines.items():
                seconds = fn()
                got = file_hash(dst)
                if got != digest:
                    raise RuntimeError(f"{name}: copy differs from the source ({got[:16]}...)")
                dst.unlink()
                times[name].append(seconds)

    print(f"{'engine':24s} {'median MiB/s':>13s} {'best MiB/s':>11s} {'worst MiB/s':>12s}")
    rate = {}
    for name, ts in times.items():
        rate[name] = mib / statistics.median(ts)
        print(f"{name:24s} {rate[name]:13.0f} {mib / min(ts):11.0f} {mib / max(ts):12.0f}")
    for q in depths:
        print(f"loop-jit (qd {q}) whole copy_fd() call (load+JIT+ring+copy), median: "
              f"{mib / statistics.median(LOOP_TOTAL[q]):.0f} MiB/s")
    print("all copies verified (BLAKE2b of output == source)")
    for q in depths:
        loop_rate = rate[f"loop-jit (qd {q})"]
        c_key, py_key = f"c-liburing (qd {q})", f"python-ring (qd {q})"
        print(f"ratio loop-jit (qd {q}) / {c_key} = {loop_rate / rate[c_key]:.2f}  "
              "(target >= 0.9)")
        if py_key in rate:
            print(f"ratio loop-jit (qd {q}) / {py_key} = {loop_rate / rate[py_key]:.2f}")
    if len(depths) > 1:
        lo, hi = depths[0], depths[-1]
        print(f"ratio loop-jit (qd {hi}) / loop-jit (qd {lo}) = "
              f"{rate[f'loop-jit (qd {hi})'] / rate[f'loop-jit (qd {lo})']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
