"""IORING_OP_CONNECT's filter payload (Linux 7.2: io_connect_bpf_populate, io_uring/net.c).

struct io_uring_bpf_ctx.connect: __u32 family at 16 (for addr_len >= 2), __be16 port at
20 and the v4/v6 address at 24 (only for a whole sockaddr_in / sockaddr_in6); pdu_size 24.
Found by the differential suite (tests/kernel: filter_connect_*, filter_pdu_strict_op16).
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct

import pytest

from uringbpf import Ring
from uringbpf.designs import filter as flt
from uringbpf.designs.filter.cbpf import ABS, JEQ, JMP, K, LD, RET, W, jump, stmt
from uringbpf.uring import uapi

CONNECT = uapi.IORING_OP_CONNECT


def sockaddr_in(port: int, ip: str = "127.0.0.1") -> bytes:
    return struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + socket.inet_aton(ip) + bytes(8)


def sockaddr_in6(port: int, ip: str = "::1") -> bytes:
    return (struct.pack("<H", socket.AF_INET6) + struct.pack(">H", port) + bytes(4)
            + socket.inet_pton(socket.AF_INET6, ip) + bytes(4))


def connect_sqe(addr: ctypes.Array | None, addr_len: int, **fields) -> bytes:
    sqe = bytearray(64)
    sqe[0] = CONNECT
    struct.pack_into("<i", sqe, 4, 3)                                         # fd
    struct.pack_into("<Q", sqe, 8, addr_len)                                  # addr2
    struct.pack_into("<Q", sqe, 16, ctypes.addressof(addr) if addr is not None else 0)
    struct.pack_into("<Q", sqe, 32, 0x1234)                                   # user_data
    for off, value in fields.items():
        sqe[int(off[1:])] = value
    return bytes(sqe)


def native_ctx_words(sqe: bytes) -> list[int]:
    """What the C twin (native/cbpf.h) shows a filter: each context word, via a filter
    that returns it (the SQE is allowed iff the word is non-zero)."""
    words = []
    for off in range(0, 40, 4):
        table = flt.FilterTable()
        table.install(CONNECT, flt.compile_filter([stmt(LD | W | ABS, off), stmt(RET | 0x10, 0)]), 0)
        words.append(flt.lib().filter_sqe_check(table.native_addr(), sqe))
    return words


def check_both(sqe: bytes) -> bytes | None:
    ctx = flt.build_ctx(sqe)
    native = native_ctx_words(sqe)
    if ctx is None:      # prep fails first: the filter never runs, the SQE passes
        assert native == [0] * 10
    else:
        want = [0 if int.from_bytes(ctx[o:o + 4], "little") else -errno.EACCES
                for o in range(0, 40, 4)]
        assert native == want
    return ctx


def test_full_ipv4_address_gives_family_port_and_address():
    sa = sockaddr_in(8080)
    buf = ctypes.create_string_buffer(sa, len(sa))
    ctx = check_both(connect_sqe(buf, len(sa)))
    assert ctx[10] == 24                                        # pdu_size
    assert struct.unpack_from("<I", ctx, 16)[0] == socket.AF_INET
    assert ctx[20:22] == struct.pack(">H", 8080) and ctx[22:24] == b"\0\0"
    assert ctx[24:28] == socket.inet_aton("127.0.0.1") and ctx[28:40] == bytes(12)


def test_full_ipv6_address_gives_family_port_and_address():
    sa = sockaddr_in6(443, "fe80::1:2")
    buf = ctypes.create_string_buffer(sa, len(sa))
    ctx = check_both(connect_sqe(buf, len(sa)))
    assert ctx[10] == 24 and struct.unpack_from("<I", ctx, 16)[0] == socket.AF_INET6
    assert ctx[20:22] == struct.pack(">H", 443)
    assert ctx[24:40] == socket.inet_pton(socket.AF_INET6, "fe80::1:2")


@pytest.mark.parametrize("make,addr_len", [(sockaddr_in, 2), (sockaddr_in, 15),
                                           (sockaddr_in6, 16), (sockaddr_in6, 27)])
def test_short_address_gives_the_family_only(make, addr_len):
    sa = make(9)
    buf = ctypes.create_string_buffer(sa, len(sa))
    ctx = check_both(connect_sqe(buf, addr_len))
    assert ctx[10] == 24 and struct.unpack_from("<H", ctx, 16)[0] == sa[0] | sa[1] << 8
    assert ctx[20:40] == bytes(20)


@pytest.mark.parametrize("addr_len", [0, 1])
def test_no_family_below_two_bytes(addr_len):
    sa = sockaddr_in(80)
    buf = ctypes.create_string_buffer(sa, len(sa))
    ctx = check_both(connect_sqe(buf, addr_len))
    assert ctx[10] == 24 and ctx[16:40] == bytes(24)


def test_other_family_fills_only_the_family():
    sa = struct.pack("<H", socket.AF_UNIX) + b"/tmp/x" + bytes(20)
    buf = ctypes.create_string_buffer(sa, len(sa))
    ctx = check_both(connect_sqe(buf, len(sa)))
    assert struct.unpack_from("<I", ctx, 16)[0] == socket.AF_UNIX and ctx[20:40] == bytes(20)


@pytest.mark.parametrize("case", ["len", "rw_flags", "buf_index", "splice_fd_in", "too_long",
                                  "negative", "bad_pointer"])
def test_prep_failure_means_no_filter_context(case):
    sa = sockaddr_in(80)
    buf = ctypes.create_string_buffer(sa, 200)
    kw, addr, addr_len = {}, buf, len(sa)
    if case == "too_long":
        addr_len = 129
    elif case == "negative":
        addr_len = 0xFFFFFFFF
    elif case == "bad_pointer":
        addr = None
    else:
        kw = {"len": {"_24": 1}, "rw_flags": {"_28": 1}, "buf_index": {"_40": 1},
              "splice_fd_in": {"_44": 1}}[case]
    assert check_both(connect_sqe(addr, addr_len, **kw)) is None


def test_payload_size_negotiation():
    assert flt.FILTER_PDU_SIZE[CONNECT] == 24
    ring = Ring(4)
    try:
        prog = [stmt(RET | K, 1)]
        assert flt.register_bpf_filter(ring, CONNECT, prog, flags=flt.FILTER_SZ_STRICT,
                                       pdu_size=0) == -errno.EMSGSIZE
        assert flt.register_bpf_filter(ring, CONNECT, prog, flags=flt.FILTER_SZ_STRICT) == 0
    finally:
        ring.close()


def test_ring_filter_allows_connects_by_port():
    """Only connects to the listener's port pass; another port gets -EACCES."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    want = struct.unpack("<I", struct.pack(">H", port) + b"\0\0")[0]
    prog = [stmt(LD | W | ABS, 20), jump(JMP | JEQ | K, want, 0, 1),
            stmt(RET | K, 1), stmt(RET | K, 0)]
    ring = Ring(4)
    socks = [socket.socket(), socket.socket()]
    bufs = [ctypes.create_string_buffer(sockaddr_in(p), 16) for p in (port, port ^ 1)]
    try:
        assert flt.register_bpf_filter(ring, CONNECT, prog) == 0
        for i, (s, b) in enumerate(zip(socks, bufs)):
            sqe = ring.get_sqe()
            sqe.opcode = CONNECT
            sqe.fd = s.fileno()
            sqe.addr = ctypes.addressof(b)
            sqe.off = 16
            sqe.user_data = i
            assert ring.submit_and_wait(1) == 1
        res = {c.user_data: c.res for c in ring.reap()}
        assert res == {0: 0, 1: -errno.EACCES}
    finally:
        ring.close()
        for s in socks:
            s.close()
        srv.close()
