"""The Dietrich/Schirmeier model: I/O with suppressed CQEs, post-processed by linked BPF.

Each job is a READ of one 64-byte chunk whose CQE goes to the ring's private CQ,
linked to a BPF request (CQE_SKIP_SUCCESS) that counts the newlines in what was read.
Mode "postprocess" (function 0) posts one CQE per job; mode "fork_join" (function 1)
adds the counts to global state and only the last job posts the join CQE.
Run: ``python examples/requests/postprocess.py [postprocess|fork_join] [interp|jit]``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from pathlib import Path

from uringbpf import Buffer
from uringbpf.bpf import cc
from uringbpf.bpf.object import BpfObject
from uringbpf.designs.requests import Ring
from uringbpf.uring import uapi as u

HERE = Path(__file__).resolve().parent
CHUNK = 64
JOIN_USER_DATA = 0x4A4F494E
FUNCTIONS = ("postprocess", "fork_join")


class Job(ctypes.Structure):
    """One job's context: the buffer a READ filled and the job id."""
    _fields_ = [("buf", ctypes.c_uint64), ("id", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


def build(out_dir: str | Path | None = None) -> Path:
    """Compile postprocess.bpf.c (into ``out_dir``, else cached)."""
    if out_dir is None:
        return cc.compile_cached(HERE / "postprocess.bpf.c")
    return cc.compile_c(HERE / "postprocess.bpf.c", Path(out_dir) / "postprocess.bpf.o")


def make_file(path: str | Path, nr_jobs: int) -> list[int]:
    """nr_jobs chunks, chunk i holding 3*i+1 newlines; returns the counts."""
    counts, data = [], bytearray()
    for i in range(nr_jobs):
        n = 3 * i + 1
        chunk = bytearray(b"x" * CHUNK)
        for k in range(n):
            chunk[(k * 37 + i) % CHUNK] = ord("\n")
        counts.append(chunk.count(b"\n"))
        data += chunk
    Path(path).write_bytes(bytes(data))
    return counts


def run(mode: str = "postprocess", engine: str = "jit", path: str | None = None,
        nr_jobs: int = 6, obj_path: Path | None = None) -> dict:
    """Read ``nr_jobs`` chunks and post-process each with a BPF function (``mode``); returns the
    CQEs and counts."""
    ring = Ring(2 * nr_jobs, private_cq=True)
    obj = BpfObject.open(obj_path or build())
    obj.rodata.private_cq = ring.private_cq
    obj.rodata.nr_jobs = nr_jobs
    obj.load(engine=engine, strict_engine=True)
    if path is None:
        fd, path = tempfile.mkstemp(prefix="uringbpf-dietrich-")
        os.close(fd)
    counts = make_file(path, nr_jobs)
    fd = os.open(path, os.O_RDONLY)
    try:
        functions = ring.register_functions(obj, FUNCTIONS)     # {name: index}
        bufs = [Buffer(CHUNK) for _ in range(nr_jobs)]
        jobs = [Job(bufs[i].addr, 100 + i) for i in range(nr_jobs)]
        for i in range(nr_jobs):
            sqe = ring.get_sqe()
            sqe.opcode, sqe.fd, sqe.addr, sqe.len, sqe.off = (
                u.IORING_OP_READ, fd, bufs[i].addr, CHUNK, CHUNK * i)
            sqe.user_data, sqe.flags, sqe.cq_idx = i, u.IOSQE_IO_LINK, ring.private_cq
            ring.prep_bpf(mode, user_data=ctypes.addressof(jobs[i]),   # function by name
                          flags=u.IOSQE_CQE_SKIP_SUCCESS)
        submitted = ring.submit()
        want = nr_jobs if mode == "postprocess" else 1
        ring.wait_cqe_nr(want)
        cqes = sorted(tuple(c) for c in ring.reap())
        return {"submitted": submitted, "cqes": cqes, "counts": counts,
                "private_left": ring.cq(ring.private_cq).ready(),
                "total_lines": obj.bss.total_lines, "jobs_done": obj.bss.jobs_done,
                "runs": ring.requests.stats["runs"], "functions": functions}
    finally:
        ring.close()
        os.close(fd)


if __name__ == "__main__":
    args = sys.argv[1:]
    out = run(args[0] if args else "postprocess", args[1] if len(args) > 1 else "jit")
    print("expected per-job counts:", out["counts"])
    print("CQEs the application saw:", out["cqes"])
