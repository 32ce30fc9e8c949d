"""Drivers for the IORING_OP_BPF examples (examples/ops/*.bpf.c).

    python examples/ops/drivers.py [--engine jit|interp]

Each ``run_*`` function sets up an IORING_SETUP_BPF_EXT ring, attaches the example's
struct_ops, submits IORING_OP_BPF SQEs (alone or linked with kernel requests) and
returns what it saw, so tests and humans use the same code.
"""

from __future__ import annotations

import argparse
import ctypes
import os

from uringbpf import Buffer
from uringbpf.designs import ops
from uringbpf.uring import uapi as u

USER, FIXED, VEC, KFIXED, REG_VEC = (ops.IO_BPF_BUF_USER, ops.IO_BPF_BUF_FIXED,
                                     ops.IO_BPF_BUF_VEC, ops.IO_BPF_BUF_KFIXED,
                                     ops.IO_BPF_BUF_REG_VEC)
SIZE = 512 * 2050                     # 1,049,600 bytes, as Ming's bpf_ext_memcpy selftest


def run_basic(engine: str = "jit", n: int = 6) -> dict:
    """n requests alternating ops 0 and 1: CQEs and the callback counters."""
    with ops.create_ring(16) as ring:
        obj, _ = ops.open_example("basic", ring, engine=engine)
        try:
            for i in range(n):
                ring.prep_bpf(i % 2, user_data=1000 + i)
            ring.submit()
            cqes = ring.wait(n)
            b = obj.bss
            return {"cqes": [(c.user_data, c.res) for c in cqes], "prep": b.nr_prep,
                    "issue": b.nr_issue, "cleanup": b.nr_cleanup, "fail": b.nr_fail}
        finally:
            obj.close()


def run_memcpy(kind: int, engine: str = "jit", use_kfunc: bool = False) -> dict:
    """Copy SIZE bytes buffer -> BPF memory -> a second buffer of the same kind.

    With ``use_kfunc`` (v2) the BPF side is the object's arena and the copies are
    ``uring_bpf_memcpy`` calls; otherwise (v3) it is global data reached through the
    page iterator.  Returns the two CQE results and whether every byte arrived."""
    src_m, dst_m = Buffer(SIZE + 8192), Buffer(SIZE + 8192)
    pattern = bytes((i * 7 + 0xAB) & 0xFF for i in range(SIZE))
    src_m.view[:SIZE] = pattern
    src, dst = src_m.addr, dst_m.addr
    with ops.create_ring(8) as ring:
        obj, _ = ops.open_example("memcpy", ring, engine=engine)
        keep = []
        try:
            if kind in (FIXED, REG_VEC, KFIXED):
                ring.register_buffers([src_m.view[:SIZE], dst_m.view[:SIZE]])

            def desc(which: int, addr: int) -> tuple:
                index = which
                if kind == USER:
                    return (USER, addr, SIZE)
                if kind == FIXED:
                    return (FIXED, addr, SIZE, index)
                if kind == KFIXED:
                    return (KFIXED, 0, SIZE, index)
                # VEC / REG_VEC: five iovecs of unequal, 512-multiple lengths
                cuts = [0, 512 * 100, 512 * 700, 512 * 701, 512 * 1500, SIZE]
                iov = (u.Iovec * 5)()
                for i in range(5):
                    iov[i].iov_base, iov[i].iov_len = addr + cuts[i], cuts[i + 1] - cuts[i]
                keep.append(iov)
                return (kind, ctypes.addressof(iov), 5, index)

            if use_kfunc:
                arena = obj.maps["arena"].value_addr
                a_desc = (USER, arena, SIZE)
                d1 = ops.buf_descs(a_desc, desc(0, src))          # dst = arena, src = buffer
                d2 = ops.buf_descs(desc(1, dst), a_desc)          # dst = buffer, src = arena
                ring.prep_bpf(2, d1, user_data=0xCAFEBABE, flags=u.IOSQE_IO_LINK)
                ring.prep_bpf(2, d2, user_data=0xCAFEBABF)
            else:
                ring.prep_bpf(0, ops.buf_descs(desc(0, src)), user_data=0xCAFEBABE,
                              flags=u.IOSQE_IO_LINK)
                ring.prep_bpf(1, ops.buf_descs(desc(1, dst)), user_data=0xCAFEBABF)
            ring.submit()
            cqes = ring.wait(2)
            return {"cqes": [(c.user_data, c.res) for c in cqes],
                    "ok": dst_m.view[:SIZE] == pattern, "cleanup": obj.bss.nr_cleanup,
                    "errors": list(ring.ops.errors)}
        finally:
            if kind in (FIXED, REG_VEC, KFIXED):
                ring.unregister_buffers()
            obj.close()


def cksum_blocks(ring, obj, fd: int, size: int, buf, *, fixed: bool = False,
                 block: int = 65536) -> list[tuple[int, int, int]]:
    """On a ring with cksum.bpf.c attached: per block, READ (linked) -> BPF crc32c.
    ``buf`` is a :class:`uringbpf.Buffer` of at least ``block`` bytes.
    Returns ``(bytes read, CQE res of the op, full crc32c)`` per block."""
    out = []
    addr = buf.addr
    # one descriptor, rewritten per block (prep_fn copies it into the request's pdu), and
    # the program's last_crc read in place: the loop allocates nothing per block
    d = ops.buf_descs((FIXED if fixed else USER, addr, block, 0))
    last_crc = ctypes.c_uint32.from_address(obj.bss.address_of("last_crc"))
    link = u.IOSQE_IO_LINK
    for off in range(0, max(size, 1), block):
        n = min(block, size - off)
        d[0].len = n
        if fixed:
            ring.prep_read_fixed(fd, 0, n, off, user_data=1, flags=link)
        else:
            ring.prep_read(fd, buf, off, nbytes=n, user_data=1, flags=link)
        ring.prep_bpf(0, d, user_data=2)
        ring.submit()
        got = {c.user_data: c.res for c in ring.wait(2)}
        out.append((got[1], got[2], last_crc.value))
    return out


def run_cksum(path: str, engine: str = "jit", *, fixed: bool = False,
              block: int = 65536) -> dict:
    """READ (linked) -> BPF crc32c of what it read, for each block of ``path``."""
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    buf = Buffer(block)
    try:
        with ops.create_ring(8) as ring:
            obj, _ = ops.open_example("cksum", ring, engine=engine)
            try:
                if fixed:
                    ring.register_buffers([buf])
                out = cksum_blocks(ring, obj, fd, size, buf, fixed=fixed, block=block)
            finally:
                if fixed:
                    ring.unregister_buffers()
                obj.close()
    finally:
        os.close(fd)
    return {"blocks": out}


def run_errors(engine: str = "jit") -> dict:
    """The error paths of errors.bpf.c: user_data -> CQE res, and the callback counters."""
    import struct
    with ops.create_ring(16) as ring:
        obj, _ = ops.open_example("errors", ring, engine=engine)
        try:
            buf = Buffer(100)
            bad = ops.buf_descs((FIXED, buf.addr, 100, 3))   # not registered
            for ud, op in ((9, 9), (10, 0), (11, 1), (12, 2), (14, 4), (15, 5)):
                ring.prep_bpf(op, user_data=ud)
            ring.prep_bpf(3, bad, user_data=13)
            ring.submit()
            res = {c.user_data: c.res for c in ring.wait(7)}
            counters = {n: struct.unpack("<8Q", bytes(getattr(obj.bss, n)))[:6]
                        for n in ("preps", "issues", "fails", "cleanups")}
            return {"res": res, **counters}
        finally:
            obj.close()


def main() -> None:
    """Run every driver once and print what it saw."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", choices=("jit", "interp"), default="jit")
    a = ap.parse_args()
    print("basic:", run_basic(a.engine))
    for kind in (USER, VEC, FIXED, REG_VEC):
        print("memcpy", kind, {k: v for k, v in run_memcpy(kind, a.engine).items()})
    print("memcpy kfunc USER:", run_memcpy(USER, a.engine, use_kfunc=True))
    print("cksum of this file:", run_cksum(__file__, a.engine))
    print("errors:", run_errors(a.engine))


if __name__ == "__main__":
    main()
