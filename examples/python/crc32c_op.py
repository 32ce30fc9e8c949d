"""An IORING_OP_BPF operation in Python: crc32c of the buffer a linked READ filled (the ops
design's cksum example, designs/ops/examples/cksum.bpf.c, written in Python).

    python examples/python/crc32c_op.py FILE [--app] [--block 65536]

SQE: opcode IORING_OP_BPF, op id 0, sqe->addr -> one io_bpf_buf_desc, sqe->len = 1.
prep copies the descriptor into the request's pdu; issue walks the buffer page by page
with the series' iterator (read-only dynptrs) and completes the request with the low 31
bits of the crc32c (a CQE res must stay >= 0 to mean success); the full value is in
``st.last_crc``.  The application never touches the data.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import mmap
import os

from uringbpf.lang import Module, array, bpf_range, copy, inline, ptr, s32, stack, u8, u32, u64
from uringbpf.lang.ops import (ITER_SOURCE, BufDesc, Dynptr, IterUringBuf, bpf_dynptr_read,
                               bpf_iter_uring_buf_destroy, bpf_iter_uring_buf_new,
                               bpf_iter_uring_buf_next, bpf_probe_read_user, bpf_uring_buf_dynptr,
                               uring_bpf_set_result)

bpf = Module("crc32c_op")

CHUNK = 256
PAGE = 4096
DESC_SIZE = 16


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


@bpf.rodata
class cfg:
    crc32c_table: array(u32, 256) = _crc32c_table()


@bpf.bss
class st:
    last_crc: u32
    bytes_seen: u64
    nr_cleanup: u64


cksum = bpf.uring_bpf_ops("cksum_op", op_id=0)


@cksum.prep
def cksum_prep(data, sqe) -> s32:
    if sqe.len != 1:
        return -errno.EINVAL
    desc = stack(BufDesc)
    if bpf_probe_read_user(ptr[u8](desc), DESC_SIZE, sqe.addr) != 0:
        return -errno.EFAULT
    copy(data.pdu, desc, DESC_SIZE)
    return 0


@inline
def crc_page(it: ptr[IterUringBuf], crcp: ptr[u32], n: s32) -> s32:
    """crc32c of one page; a new dynptr over it in the same stack slots each time."""
    dp = stack(Dynptr)
    buf = stack(u8, CHUNK)
    crc = crcp[0]
    total = s32(0)
    if n <= 0 or n > PAGE or bpf_uring_buf_dynptr(it, dp) != 0:
        return -1
    for i in bpf_range(0, PAGE // CHUNK):
        off = u32(i * CHUNK)
        if off >= u32(n):
            break
        length = u32(n) - off
        if length > CHUNK:
            length = u32(CHUNK)
        if bpf_dynptr_read(buf, length, dp, off, 0) != 0:
            break
        for j in bpf_range(0, CHUNK):
            if j >= length:
                break
            crc = cfg.crc32c_table[(crc ^ buf[j]) & 0xFF] ^ (crc >> 8)
        total += s32(length)
    crcp[0] = crc
    return total


@cksum.issue
def cksum_issue(data) -> s32:
    it = stack(IterUringBuf)
    crcp = stack(u32)
    crcp[0] = 0xFFFFFFFF
    total = u64(0)
    err = bpf_iter_uring_buf_new(it, data, ptr[BufDesc](data.pdu), ITER_SOURCE)
    while True:
        avail = bpf_iter_uring_buf_next(it)
        if not avail:
            break
        got = crc_page(it, crcp, avail[0])
        if got < 0:
            break
        total += u64(got)
    bpf_iter_uring_buf_destroy(it)
    if err != 0:
        uring_bpf_set_result(data, err)
        return 0
    crc = ~crcp[0]
    st.last_crc = crc
    st.bytes_seen += total
    uring_bpf_set_result(data, s32(crc & 0x7FFFFFFF))
    return 0


@cksum.cleanup
def cksum_cleanup(data) -> s32:
    st.nr_cleanup += 1
    return 0


def crc32c(data: bytes) -> int:
    """The same checksum in plain Python (for checking)."""
    table, crc = _crc32c_table(), 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def checksum_file(path: str, app: bool = False, engine: str = "jit", block: int = 65536) -> dict:
    """READ (linked) -> IORING_OP_BPF crc32c, per block of ``path``."""
    from uringbpf.designs import ops
    from uringbpf.uring import uapi as u
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    buf = mmap.mmap(-1, block)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    st.last_crc = st.bytes_seen = st.nr_cleanup = 0
    out = []
    try:
        with ops.create_ring(8) as ring:
            handle = cksum.run_in_app(ring) if app else cksum.attach(ring, engine)
            with handle:
                for off in range(0, max(size, 1), block):
                    n = min(block, size - off)
                    ring.prep_read(fd, buf, off, nbytes=n, user_data=1, flags=u.IOSQE_IO_LINK)
                    ring.prep_bpf(0, ops.buf_descs((ops.IO_BPF_BUF_USER, addr, n)), user_data=2)
                    ring.submit()
                    got = {c.user_data: c.res for c in ring.wait(2)}
                    out.append((got[1], got[2], int(st.last_crc)))
                result = {"blocks": out, **st.values()}
    finally:
        buf.close()
        os.close(fd)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?")
    ap.add_argument("--app", action="store_true")
    ap.add_argument("--engine", choices=("jit", "interp"), default="jit")
    ap.add_argument("--block", type=int, default=65536)
    ap.add_argument("--emit-obj", metavar="PATH", help="write the compiled .bpf.o and exit")
    a = ap.parse_args()
    if a.emit_obj:
        print(bpf.emit_obj(a.emit_obj))
        return
    if not a.file:
        ap.error("FILE is required")
    r = checksum_file(a.file, a.app, a.engine, a.block)
    for n, res, crc in r["blocks"]:
        print(f"{n:8d} bytes  crc32c {crc:#010x}  (CQE res {res})")


if __name__ == "__main__":
    main()
