"""The stripe target over NBD on 127.0.0.1, checked end to end with our own client."""

from __future__ import annotations

import os
import random
import socket
import struct

import pytest

from stripe import nbd
from stripe.integrity import read_log
from stripe.nbd import NbdClient, NbdError
from stripe.server import StripeNbd
from uringbpf.designs import kbuf as K


def make_files(tmp_path, n, size):
    paths = []
    for i in range(n):
        p = tmp_path / f"disk{i}"
        with open(p, "wb") as f:
            f.truncate(size)
        paths.append(p)
    return paths


@pytest.mark.parametrize("mode", ["copy", "zc", "auto_zc"])
def test_data_integrity_end_to_end(tmp_path, mode):
    paths = make_files(tmp_path, 4, 1 << 20)
    with StripeNbd(paths, 65536, mode, queue_depth=8, log_path=tmp_path / "log") as srv:
        c = NbdClient("127.0.0.1", srv.port)
        assert c.size == 4 << 20 and c.block_sizes == (512, 4096, 1 << 20)
        assert c.tflags & nbd.TF_SEND_FLUSH and c.tflags & nbd.TF_SEND_FUA
        rnd = random.Random(11)
        shadow = bytearray(c.size)
        written = []
        for _ in range(150):
            off = rnd.randrange(c.size // 512) * 512
            n = min(rnd.choice([512, 4096, 65536, 131072, 300 * 512]), c.size - off)
            if rnd.random() < 0.55:
                data = os.urandom(n)
                c.write(off, data, fua=rnd.random() < 0.1)
                shadow[off:off + n] = data
                written.append((off, data))
            else:
                assert c.read(off, n) == shadow[off:off + n]
        # pipelined: 48 requests in flight, replies may come in any order
        cookies = {}
        for i in range(48):
            data = bytes([i]) * 16384
            cookies[c.send(nbd.CMD_WRITE, i * 16384, data=data)] = i
            shadow[i * 16384:(i + 1) * 16384] = data
            written.append((i * 16384, data))
        replies = [c.recv() for _ in range(48)]
        assert sorted(ck for ck, _, _ in replies) == sorted(cookies)
        assert all(err == 0 for _, err, _ in replies)
        c.flush()
        for off in range(0, c.size, 1 << 20):
            assert c.read(off, 1 << 20) == shadow[off:off + (1 << 20)]
        c.disconnect()
        layout = srv.target.layout
    # the backing files hold exactly the device image, striped
    assert layout.read_files([str(p) for p in paths], 0, layout.size) == shadow
    logged = read_log(tmp_path / "log")
    assert sorted((o, n, crc) for o, n, crc in logged) == \
        sorted((o, len(d), K.crc32c_bytes(d)) for o, d in written)


def test_handshake_options_and_errors(tmp_path):
    paths = make_files(tmp_path, 2, 1 << 20)
    with StripeNbd(paths, 4096, "zc", queue_depth=4, export="disk") as srv:
        # old-style NBD_OPT_EXPORT_NAME
        c = NbdClient("127.0.0.1", srv.port, export="disk", use_go=False)
        assert c.size == 2 << 20
        c.write(4096, b"e" * 4096)
        assert c.read(4096, 4096) == b"e" * 4096
        # protocol errors come back as NBD errors, the connection stays usable
        cookie = c.send(nbd.CMD_READ, c.size - 512, 1024)
        assert c.recv()[:2] == (cookie, nbd.NBD_ENOSPC)
        cookie = c.send(nbd.CMD_WRITE, 100, data=b"x" * 512)
        assert c.recv()[:2] == (cookie, nbd.NBD_EINVAL)
        cookie = c.send(nbd.CMD_READ, 0, (1 << 20) + 512)      # above the max block size
        assert c.recv()[:2] == (cookie, nbd.NBD_EINVAL)
        cookie = c.send(4, 0, 4096)            # NBD_CMD_TRIM: not advertised
        assert c.recv()[:2] == (cookie, nbd.NBD_EINVAL)
        assert c.read(4096, 512) == b"e" * 512
        c.disconnect()
        # unknown export through GO is a proper error reply
        with pytest.raises(NbdError, match="refused"):
            NbdClient("127.0.0.1", srv.port, export="nope")
        # LIST, then an unsupported option, then GO on the same connection
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        hdr = s.recv(18, socket.MSG_WAITALL)
        assert struct.unpack(">QQH", hdr)[:2] == (nbd.NBDMAGIC, nbd.IHAVEOPT)
        s.sendall(struct.pack(">I", nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES))
        s.sendall(struct.pack(">QII", nbd.IHAVEOPT, nbd.OPT_LIST, 0))
        magic, opt, rtype, n = struct.unpack(">QIII", s.recv(20, socket.MSG_WAITALL))
        assert (magic, opt, rtype) == (nbd.REPLY_MAGIC, nbd.OPT_LIST, nbd.REP_SERVER)
        assert s.recv(n, socket.MSG_WAITALL)[4:] == b"disk"
        assert struct.unpack(">QIII", s.recv(20, socket.MSG_WAITALL))[2] == nbd.REP_ACK
        s.sendall(struct.pack(">QII", nbd.IHAVEOPT, 8, 0))    # STRUCTURED_REPLY
        assert struct.unpack(">QIII", s.recv(20, socket.MSG_WAITALL))[2] == nbd.REP_ERR_UNSUP
        s.sendall(struct.pack(">QII", nbd.IHAVEOPT, nbd.OPT_ABORT, 0))
        assert struct.unpack(">QIII", s.recv(20, socket.MSG_WAITALL))[2] == nbd.REP_ACK
        assert s.recv(1) == b""
        s.close()
        # a client that speaks nonsense is dropped, the server keeps serving others
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.recv(18, socket.MSG_WAITALL)
        s.sendall(struct.pack(">I", 1) + b"garbage!" * 4)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:      # closed with our garbage unread: an RST
            pass
        s.close()
        c = NbdClient("127.0.0.1", srv.port, export="disk")
        assert c.read(4096, 4096) == b"e" * 4096
        c.disconnect()


def test_two_connections_share_the_device(tmp_path):
    paths = make_files(tmp_path, 2, 256 * 1024)
    with StripeNbd(paths, 8192, "auto_zc", queue_depth=4) as srv:
        a = NbdClient("127.0.0.1", srv.port)
        b = NbdClient("127.0.0.1", srv.port)
        a.write(0, b"A" * 8192)
        a.flush()
        assert b.read(0, 8192) == b"A" * 8192
        b.write(8192, b"B" * 512)
        assert a.read(8192, 512) == b"B" * 512
        a.disconnect()
        b.disconnect()


def test_client_vanishing_mid_payload_leaves_server_healthy(tmp_path):
    paths = make_files(tmp_path, 2, 256 * 1024)
    with StripeNbd(paths, 4096, "auto_zc", queue_depth=2) as srv:
        for _ in range(3):
            c = NbdClient("127.0.0.1", srv.port)
            c.sock.sendall(struct.pack(">IHHQQI", nbd.REQUEST_MAGIC, 0, nbd.CMD_WRITE, 1, 0,
                                       65536) + b"p" * 1000)
            c.close()                          # 64 KiB announced, 1000 bytes sent
        c = NbdClient("127.0.0.1", srv.port)
        c.write(0, b"q" * 4096)
        assert c.read(0, 4096) == b"q" * 4096
        c.disconnect()
        assert srv.source.stats["queued"] == srv.source.stats["completed"]
