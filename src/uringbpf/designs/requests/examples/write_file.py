"""Example 4 (the RFC's write_file test): one BPF request writes a file with QD 4.

256 KiB in 16 blocks of 16 KiB from our buffer to fixed file 0, up to 4 writes in
flight whose CQEs go to CQ 1; the application submits one SQE and waits for one CQE.
Run: ``python examples/requests/write_file.py [interp] [path]``.
"""

from __future__ import annotations

import os
import sys
import tempfile

from common import setup, slots

from uringbpf import Buffer

BLOCK = 16 * 1024
BLOCKS = 16


def pattern() -> bytes:
    """Every block different, every byte position within a block different."""
    return bytes((i * 7 + (i // BLOCK) * 13) & 0xFF for i in range(BLOCK * BLOCKS))


def run(engine: str = "jit", path: str | None = None, **kw) -> dict:
    """One BPF request writes a file in blocks, 4 in flight; returns what the application saw."""
    ring, obj = setup(engine, **kw)
    if path is None:
        fd, path = tempfile.mkstemp(prefix="uringbpf-write-file-")
        os.close(fd)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        data = pattern()
        buf = Buffer(len(data))
        buf.view[:] = data
        ring.register_files([fd])
        ring.prep_bpf(3, user_data=buf.addr)
        submitted = ring.submit()
        ring.wait_cqe()
        completions = [tuple(c) for c in ring.reap()]
        with open(path, "rb") as f:
            written = f.read()
        return {"submitted": submitted, "completions": completions,
                "buf_addr": buf.addr, "ok": written == data,
                "size": len(written), "slots": slots(obj, 4), "path": path,
                "runs": ring.requests.stats["runs"]}
    finally:
        ring.close()
        os.close(fd)


if __name__ == "__main__":
    args = sys.argv[1:]
    out = run(args[0] if args else "jit", args[1] if len(args) > 1 else None)
    print(f"wrote {out['size']} bytes to {out['path']}: {'OK' if out['ok'] else 'MISMATCH'}; "
          f"inflight/next/errors/peak = {out['slots']}; {out['runs']} program runs")
