"""NBD over TCP in front of a RequestSource: the block layer for the stripe target.

Server: fixed newstyle handshake (NBD_OPT_GO, NBD_OPT_INFO, NBD_OPT_EXPORT_NAME,
NBD_OPT_LIST, NBD_OPT_ABORT; everything else NBD_REP_ERR_UNSUP), then simple replies for
READ, WRITE (with FUA), FLUSH and DISC. A WRITE's payload is received straight into the
request's pages and a READ's reply is sent straight from them, so in zero-copy mode the data
is never copied in user space between the socket and the backing files.

Durability: a WRITE is acknowledged once the target's pwritev reached every backing file
(the page cache): it survives the server process dying. FLUSH (and FUA) is acknowledged
only after fdatasync of every backing file, which is NBD's contract for FLUSH.

Client: :class:`NbdClient`, enough of the protocol for tests and benchmarks (pipelining
via :meth:`NbdClient.send` / :meth:`NbdClient.recv`).
"""

from __future__ import annotations

import errno
import queue
import socket
import struct
import threading

from uringbpf.designs import kbuf as K

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698

FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES = 1, 2
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_INFO, OPT_GO = 1, 2, 3, 6, 7
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
REP_ERR_UNSUP, REP_ERR_INVALID, REP_ERR_UNKNOWN = (1 << 31) + 1, (1 << 31) + 3, (1 << 31) + 6
INFO_EXPORT, INFO_BLOCK_SIZE = 0, 3
TF_HAS_FLAGS, TF_SEND_FLUSH, TF_SEND_FUA, TF_CAN_MULTI_CONN = 1, 4, 8, 256
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH = 0, 1, 2, 3
CMD_FLAG_FUA = 1
NBD_EPERM, NBD_EIO, NBD_ENOMEM, NBD_EINVAL, NBD_ENOSPC = 1, 5, 12, 22, 28
NBD_EOVERFLOW, NBD_ENOTSUP, NBD_ESHUTDOWN = 75, 95, 108
_NBD_ERRNOS = {errno.EPERM: NBD_EPERM, errno.EIO: NBD_EIO, errno.ENOMEM: NBD_ENOMEM,
               errno.EINVAL: NBD_EINVAL, errno.ENOSPC: NBD_ENOSPC,
               errno.EOVERFLOW: NBD_EOVERFLOW, errno.EOPNOTSUPP: NBD_ENOTSUP,
               errno.ESHUTDOWN: NBD_ESHUTDOWN}
MAX_OPTION_LEN = 64 * 1024
_REQ = struct.Struct(">IHHQQI")
_REPLY = struct.Struct(">IIQ")


class NbdError(Exception):
    """An NBD protocol error (the peer broke the protocol or answered an error)."""
    pass


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    _recv_into(sock, memoryview(buf))
    return bytes(buf)


def _recv_into(sock: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            raise ConnectionError("peer closed the connection")
        got += n


def status(req: K.BlockRequest) -> int:
    """0 or -errno for a completed request: a short READ/WRITE result is -EIO."""
    res = req.result
    if res is None:
        return -errno.EIO
    if res < 0:
        return res
    if req.op in (K.UBLK_IO_OP_READ, K.UBLK_IO_OP_WRITE) and res != req.length:
        return -errno.EIO
    return 0


def _send_parts(sock: socket.socket, parts: list) -> None:
    """sendmsg until every byte of every part is out (a vectored sendall)."""
    views = [memoryview(p).cast("B") for p in parts]
    while views:
        n = sock.sendmsg(views)
        while n:
            if n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][n:]
                n = 0


def nbd_error(res: int) -> int:
    """The NBD error code for a negative errno."""
    return _NBD_ERRNOS.get(-res, NBD_EIO)


# --- server ---------------------------------------------------------------------------
class NbdServer:
    """Serve one export of ``size`` bytes backed by ``source`` on ``host:port`` (0 = any)."""

    def __init__(self, source: K.RequestSource, size: int, export: str = "stripe",
                 host: str = "127.0.0.1", port: int = 0):
        self.source, self.size, self.export = source, size, export
        self.max_block = source.max_io_bytes
        self._lsock = socket.create_server((host, port))
        self.address = self._lsock.getsockname()
        self.port = self.address[1]
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self._accept_loop, name="nbd-accept",
                                        daemon=True)

    def start(self) -> "NbdServer":
        """Accept and serve connections in background threads; returns self."""
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                conn, _ = self._lsock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve_conn, args=(conn,), name="nbd-conn",
                             daemon=True).start()

    def close(self) -> None:
        """Stop serving: close the listening socket and shut every connection down."""
        self._closing = True
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._lsock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- handshake
    def _reply(self, sock, opt: int, rtype: int, data: bytes = b"") -> None:
        sock.sendall(struct.pack(">QIII", REPLY_MAGIC, opt, rtype, len(data)) + data)

    def _tflags(self) -> int:
        return TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_FUA | TF_CAN_MULTI_CONN

    def _handshake(self, sock) -> bool:
        sock.sendall(struct.pack(">QQH", NBDMAGIC, IHAVEOPT,
                                 FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))
        (cflags,) = struct.unpack(">I", _recv_exact(sock, 4))
        if cflags & ~(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES):
            return False
        no_zeroes = bool(cflags & FLAG_NO_ZEROES)
        while True:
            magic, opt, length = struct.unpack(">QII", _recv_exact(sock, 16))
            if magic != IHAVEOPT or length > MAX_OPTION_LEN:
                return False
            data = _recv_exact(sock, length)
            if opt == OPT_EXPORT_NAME:
                if data.decode(errors="replace") not in (self.export, ""):
                    return False       # the protocol has no error reply here: hang up
                sock.sendall(struct.pack(">QH", self.size, self._tflags())
                             + (b"" if no_zeroes else bytes(124)))
                return True
            if opt == OPT_ABORT:
                self._reply(sock, opt, REP_ACK)
                return False
            if opt == OPT_LIST:
                if length:
                    self._reply(sock, opt, REP_ERR_INVALID)
                    continue
                name = self.export.encode()
                self._reply(sock, opt, REP_SERVER, struct.pack(">I", len(name)) + name)
                self._reply(sock, opt, REP_ACK)
                continue
            if opt in (OPT_GO, OPT_INFO):
                if length < 6:
                    self._reply(sock, opt, REP_ERR_INVALID)
                    continue
                (nlen,) = struct.unpack(">I", data[:4])
                if 4 + nlen + 2 > length:
                    self._reply(sock, opt, REP_ERR_INVALID)
                    continue
                name = data[4:4 + nlen].decode(errors="replace")
                (nreq,) = struct.unpack(">H", data[4 + nlen:6 + nlen])
                if 6 + nlen + 2 * nreq != length:
                    self._reply(sock, opt, REP_ERR_INVALID)
                    continue
                if name not in (self.export, ""):
                    self._reply(sock, opt, REP_ERR_UNKNOWN, b"no such export")
                    continue
                self._reply(sock, opt, REP_INFO,
                            struct.pack(">HQH", INFO_EXPORT, self.size, self._tflags()))
                self._reply(sock, opt, REP_INFO,
                            struct.pack(">HIII", INFO_BLOCK_SIZE, K.SECTOR, 4096,
                                        self.max_block))
                self._reply(sock, opt, REP_ACK)
                if opt == OPT_GO:
                    return True
                continue
            self._reply(sock, opt, REP_ERR_UNSUP)

    # -- transmission
    def _serve_conn(self, sock: socket.socket) -> None:
        out: queue.Queue = queue.Queue()
        inflight = [0]
        cv = threading.Condition()
        writer = threading.Thread(target=self._writer, args=(sock, out), daemon=True)
        try:
            if not self._handshake(sock):
                return
            writer.start()
            self._transmission(sock, out, inflight, cv)
        except (ConnectionError, OSError, struct.error):
            pass
        finally:
            with cv:
                cv.wait_for(lambda: inflight[0] == 0, timeout=10)
            out.put(None)
            if writer.is_alive():
                writer.join(10)
            with self._lock:
                self._conns.discard(sock)
            sock.close()

    def _writer(self, sock, out: queue.Queue) -> None:
        broken = False
        while True:
            item = out.get()
            if item is None:
                return
            header, req = item
            try:
                if not broken:
                    _send_parts(sock, [header] if req is None else [header, req.view()])
            except OSError:
                broken = True
            finally:
                if req is not None:
                    req.free()

    def _transmission(self, sock, out: queue.Queue, inflight: list, cv) -> None:
        src = self.source

        def done(cookie: int, req: K.BlockRequest | None, res: int, fua: bool = False) -> None:
            err = 0 if res >= 0 else nbd_error(res)
            data = req if (req is not None and req.op == K.UBLK_IO_OP_READ and not err) \
                else None
            if req is not None and data is None:
                req.free()
            out.put((_REPLY.pack(SIMPLE_REPLY_MAGIC, err, cookie), data))
            with cv:
                inflight[0] -= 1
                cv.notify_all()

        while True:
            magic, flags, ctype, cookie, offset, length = _REQ.unpack(
                _recv_exact(sock, _REQ.size))
            if magic != REQUEST_MAGIC:
                return
            if ctype == CMD_DISC:
                return
            with cv:
                inflight[0] += 1
            bad = offset % K.SECTOR or length % K.SECTOR or offset + length > self.size
            if ctype in (CMD_READ, CMD_WRITE) and (bad or not 0 < length <= self.max_block):
                if ctype == CMD_WRITE:
                    _recv_exact(sock, length)           # consume the payload
                code = NBD_ENOSPC if offset + length > self.size else NBD_EINVAL
                out.put((_REPLY.pack(SIMPLE_REPLY_MAGIC, code, cookie), None))
                with cv:
                    inflight[0] -= 1
                continue
            if ctype == CMD_FLUSH:
                req = src.alloc_request(K.UBLK_IO_OP_FLUSH, 0, 0)
                src.queue_rq(req, lambda r, c=cookie: done(c, r, status(r)))
                continue
            if ctype not in (CMD_READ, CMD_WRITE):
                out.put((_REPLY.pack(SIMPLE_REPLY_MAGIC, NBD_EINVAL, cookie), None))
                with cv:
                    inflight[0] -= 1
                continue
            op = K.UBLK_IO_OP_READ if ctype == CMD_READ else K.UBLK_IO_OP_WRITE
            fua = bool(flags & CMD_FLAG_FUA) and ctype == CMD_WRITE
            req = src.alloc_request(op, offset, length, K.UBLK_IO_F_FUA if fua else 0)
            if ctype == CMD_WRITE:
                try:
                    _recv_into(sock, req.view())
                except BaseException:
                    req.free()
                    with cv:
                        inflight[0] -= 1
                    raise
            if fua:
                src.queue_rq(req, lambda r, c=cookie: self._fua(r, c, done))
            else:
                src.queue_rq(req, lambda r, c=cookie: done(c, r, status(r)))

    def _fua(self, req: K.BlockRequest, cookie: int, done) -> None:
        """FUA: the write is acknowledged only after a flush made it durable."""
        res = status(req)
        if res < 0:
            done(cookie, req, res)
            return
        flush = self.source.alloc_request(K.UBLK_IO_OP_FLUSH, 0, 0)

        def flushed(f: K.BlockRequest) -> None:
            f.free()
            done(cookie, req, status(f))
        self.source.queue_rq(flush, flushed)


# --- client ---------------------------------------------------------------------------
class NbdClient:
    """A small NBD client: fixed newstyle, NBD_OPT_GO (or EXPORT_NAME), simple replies."""

    def __init__(self, host: str, port: int, export: str = "stripe", use_go: bool = True,
                 timeout: float | None = 30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._next = 1
        self._reads: dict[int, int] = {}
        self.block_sizes = None
        magic, opt, hflags = struct.unpack(">QQH", _recv_exact(self.sock, 18))
        if magic != NBDMAGIC or opt != IHAVEOPT or not hflags & FLAG_FIXED_NEWSTYLE:
            raise NbdError("not a fixed-newstyle NBD server")
        no_zeroes = hflags & FLAG_NO_ZEROES
        self.sock.sendall(struct.pack(">I", FLAG_FIXED_NEWSTYLE | no_zeroes))
        name = export.encode()
        if use_go:
            data = struct.pack(">I", len(name)) + name + struct.pack(">HH", 1, INFO_BLOCK_SIZE)
            self._option(OPT_GO, data)
            self.size = self.tflags = None
            while True:
                rtype, payload = self._opt_reply(OPT_GO)
                if rtype == REP_ACK:
                    break
                if rtype & (1 << 31):
                    raise NbdError(f"NBD_OPT_GO refused ({rtype:#x}): {payload!r}")
                if rtype == REP_INFO:
                    (itype,) = struct.unpack(">H", payload[:2])
                    if itype == INFO_EXPORT:
                        _, self.size, self.tflags = struct.unpack(">HQH", payload)
                    elif itype == INFO_BLOCK_SIZE:
                        self.block_sizes = struct.unpack(">III", payload[2:])
            if self.size is None:
                raise NbdError("server sent no NBD_INFO_EXPORT")
        else:
            self._option(OPT_EXPORT_NAME, name)
            self.size, self.tflags = struct.unpack(">QH", _recv_exact(self.sock, 10))
            if not no_zeroes:
                _recv_exact(self.sock, 124)

    def _option(self, opt: int, data: bytes) -> None:
        self.sock.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)

    def _opt_reply(self, opt: int) -> tuple[int, bytes]:
        magic, ropt, rtype, length = struct.unpack(">QIII", _recv_exact(self.sock, 20))
        if magic != REPLY_MAGIC or ropt != opt:
            raise NbdError("bad option reply")
        return rtype, _recv_exact(self.sock, length)

    def list_exports(self) -> list[str]:
        """The server's export names (NBD_OPT_LIST)."""
        self._option(OPT_LIST, b"")
        names = []
        while True:
            rtype, payload = self._opt_reply(OPT_LIST)
            if rtype == REP_ACK:
                return names
            (n,) = struct.unpack(">I", payload[:4])
            names.append(payload[4:4 + n].decode())

    # -- transmission
    def send(self, ctype: int, offset: int = 0, length: int = 0, data: bytes | None = None,
             flags: int = 0) -> int:
        """Send one request; returns its cookie (the handle its reply carries)."""
        cookie = self._next
        self._next += 1
        if data is not None:
            length = len(data)
        hdr = _REQ.pack(REQUEST_MAGIC, flags, ctype, cookie, offset, length)
        self.sock.sendall(hdr + data if data is not None else hdr)
        if ctype == CMD_READ:
            self._reads[cookie] = length
        return cookie

    def recv(self) -> tuple[int, int, bytes]:
        """One reply: (cookie, NBD error, data read)."""
        magic, err, cookie = _REPLY.unpack(_recv_exact(self.sock, _REPLY.size))
        if magic != SIMPLE_REPLY_MAGIC:
            raise NbdError(f"bad reply magic {magic:#x}")
        n = self._reads.pop(cookie, 0)
        data = _recv_exact(self.sock, n) if n and not err else b""
        return cookie, err, data

    def _one(self, ctype, offset=0, length=0, data=None, flags=0) -> tuple[int, bytes]:
        cookie = self.send(ctype, offset, length, data, flags)
        got, err, payload = self.recv()
        if got != cookie:
            raise NbdError("unexpected reply cookie")
        return err, payload

    def read(self, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset`` from the export."""
        err, data = self._one(CMD_READ, offset, length)
        if err:
            raise NbdError(f"read failed: NBD error {err}")
        return data

    def write(self, offset: int, data: bytes, fua: bool = False) -> None:
        """Write ``data`` at ``offset`` to the export."""
        err, _ = self._one(CMD_WRITE, offset, data=data, flags=CMD_FLAG_FUA if fua else 0)
        if err:
            raise NbdError(f"write failed: NBD error {err}")

    def flush(self) -> None:
        """NBD_CMD_FLUSH: make earlier writes durable."""
        err, _ = self._one(CMD_FLUSH)
        if err:
            raise NbdError(f"flush failed: NBD error {err}")

    def disconnect(self) -> None:
        """NBD_CMD_DISC: end the session, then close the socket."""
        try:
            self.sock.sendall(_REQ.pack(REQUEST_MAGIC, 0, CMD_DISC, 0, 0, 0))
        finally:
            self.sock.close()

    def close(self) -> None:
        """Close the socket (no NBD_CMD_DISC: see :meth:`disconnect`)."""
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
