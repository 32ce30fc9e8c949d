"""The stripe target: a ublk-style server loop on a KbufRing.

Per tag: FETCH once, then for each delivered request split it with :class:`StripeLayout`
into at most ``nr_files`` ops (vectored when a file gets more than one piece; a single
contiguous piece is a plain READ/WRITE or READ_FIXED/WRITE_FIXED) and COMMIT_AND_FETCH the
result once they are done:

* ``copy``    READV/WRITEV on the server's per-tag buffer (the source copied a WRITE's pages
              into it before the fetch CQE and copies a READ's data out at commit).
* ``zc``      REGISTER_IO_BUF (CQE_SKIP_SUCCESS|HARDLINK) -> READV_FIXED/WRITEV_FIXED per
              file (HARDLINK) -> UNREGISTER_IO_BUF, buffer index = tag, ``iov_base`` = offsets
              into the request: the kernel reads/writes the request's pages directly. As in
              kublk the per-file ops of one request are serialised by the link.
* ``auto_zc`` UBLK_F_AUTO_BUF_REG: the source registered the pages at index = tag before the
              fetch CQE, so the per-file ops are independent (and run in parallel).

FLUSH is an fdatasync of every file; any short per-file result fails the request with -EIO.
Every WRITE's crc32c goes to the integrity log, computed on the pages by address.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import threading

from uringbpf import Buffer
from uringbpf.designs import kbuf as K
from uringbpf.uring import prep, uapi as u

from .integrity import IntegrityLog
from .layout import DEFAULT_CHUNK, StripeLayout

MODES = ("copy", "zc", "auto_zc")
FETCH, DATA, REG, UNREG = 1, 2, 3, 4


def _ud(kind: int, tag: int, i: int = 0) -> int:
    return kind << 56 | tag << 16 | i


#: A ublk io command as a whole 64-byte SQE: opcode, flags, ioprio, fd, cmd_op, pad, addr
#: (AUTO_BUF_REG data), len, uring_cmd_flags, user_data, buf_index, personality, file
#: index, then ``struct ublksrv_io_cmd`` (q_id, tag, result, addr) in ``sqe->cmd``. One
#: ``pack`` per command instead of a dozen ctypes field writes.
_CMD_SQE = struct.Struct("<BBHiIIQIIQHHiHHiQ")
assert _CMD_SQE.size == 64


def _cmd_sqe(fd: int, cmd_op: int, tag: int, *, result: int = 0, addr: int = 0,
             sqe_addr: int = 0, flags: int = 0, user_data: int = 0) -> bytes:
    return _CMD_SQE.pack(u.IORING_OP_URING_CMD, flags, 0, fd, cmd_op, 0, sqe_addr, 0, 0,
                         user_data, 0, 0, 0, 0, tag, result, addr)


class _TagState:
    __slots__ = ("outstanding", "error", "length", "expect", "keep", "op")

    def __init__(self):
        self.outstanding, self.error, self.length = 0, 0, 0
        self.expect: list[int] = []
        self.keep: list = []
        self.op = -1


class StripeTarget:
    """A ublk-like target striping requests over backing files (one file per stripe:
    the same file twice, by any path or link, is refused)."""
    def __init__(self, paths: list, chunk_size: int = DEFAULT_CHUNK, mode: str = "copy",
                 queue_depth: int = 32, max_io_bytes: int = 1 << 20,
                 integrity: IntegrityLog | None = None, pin: str = "region"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.paths = [os.fspath(p) for p in paths]
        self.fds = [os.open(p, os.O_RDWR | os.O_CLOEXEC) for p in self.paths]
        # The same file twice (also through a hard link or another path) would alias two
        # stripes' chunks: acknowledged writes to one would be overwritten through the other
        # (issue #13 item 14).  Identity is the device and inode of the opened file.
        seen: dict[tuple[int, int], str] = {}
        for path, fd in zip(self.paths, self.fds):
            st = os.fstat(fd)
            other = seen.get((st.st_dev, st.st_ino))
            seen[(st.st_dev, st.st_ino)] = path
            if other is not None:
                self.close()
                raise ValueError(f"backing files {other!r} and {path!r} are the same file "
                                 f"(device {st.st_dev}, inode {st.st_ino}): each stripe needs "
                                 "its own file")
        sizes = {os.fstat(fd).st_size - os.fstat(fd).st_size % chunk_size for fd in self.fds}
        if len(sizes) != 1:
            self.close()
            raise ValueError("all backing files must have the same size (rounded to a chunk)")
        try:
            self.layout = StripeLayout(len(self.fds), chunk_size, sizes.pop())
        except ValueError:
            self.close()
            raise
        self.size = self.layout.size
        self.mode, self.queue_depth, self.max_io_bytes = mode, queue_depth, max_io_bytes
        self.integrity = integrity
        self.pin = pin             # how the source pins request pages in the kernel table
        self._bufs = None
        self.stats = {"requests": 0, "ops": 0}

    def make_source(self) -> K.RequestSource:
        """The request source (the emulated ublk device) for this target."""
        flags = {"copy": 0, "zc": K.UBLK_F_SUPPORT_ZERO_COPY,
                 "auto_zc": K.UBLK_F_AUTO_BUF_REG | K.UBLK_F_SUPPORT_ZERO_COPY}[self.mode]
        return K.RequestSource(self.queue_depth, self.max_io_bytes, flags, size=self.size,
                               pin=self.pin)

    def make_ring(self) -> K.KbufRing:
        """The kbuf ring the target serves requests on."""
        per_tag = len(self.fds) + 2
        entries = 1
        while entries < self.queue_depth * per_tag:
            entries *= 2
        buffers = self.queue_depth if self.mode != "copy" else 0
        return K.KbufRing(entries, buffers=buffers, cq_entries=entries * 2)

    # -- the loop
    def serve(self, source: K.RequestSource, ring: K.KbufRing,
              ready: threading.Event | None = None) -> None:
        """Serve until the source is stopped (every fetch aborted with -ENODEV)."""
        ring.register_source(source)
        self.ring, self.source = ring, source
        qd = self.queue_depth
        if self.mode == "copy":
            self._bufs = Buffer(qd * self.max_io_bytes)
            self._buf_base = self._bufs.addr
        self._tags = [_TagState() for _ in range(qd)]
        fd = source.char_fd
        # the REGISTER/UNREGISTER commands of a tag never change: prepared once
        self._reg_sqe = [_cmd_sqe(fd, K.UBLK_U_IO_REGISTER_IO_BUF, tag, addr=tag,
                                  flags=u.IOSQE_CQE_SKIP_SUCCESS | u.IOSQE_IO_HARDLINK,
                                  user_data=_ud(REG, tag)) for tag in range(qd)]
        self._unreg_sqe = [_cmd_sqe(fd, K.UBLK_U_IO_UNREGISTER_IO_BUF, tag, addr=tag,
                                    user_data=_ud(UNREG, tag)) for tag in range(qd)]
        for tag in range(qd):
            self._queue_cmd(K.UBLK_U_IO_FETCH_REQ, tag, 0)
        ring.submit()
        if ready is not None:
            ready.set()
        aborted = 0
        while aborted < qd:
            c = ring.wait_cqe()
            kind, tag = c.user_data >> 56, (c.user_data >> 16) & 0xFFFF
            if kind == FETCH:
                if c.res < 0:            # -ENODEV: the device is gone; other errors: ours
                    aborted += 1
                    continue
                self._handle(tag)
            else:
                self._op_done(kind, tag, c.user_data & 0xFFFF, c.res)
            # new SQEs go to the kernel with the next wait_cqe (one io_uring_enter for both)

    def _sqe(self) -> u.Sqe:
        sqe = self.ring.get_sqe()
        if sqe is None:
            self.ring.submit()
            sqe = self.ring.get_sqe()
        return sqe

    def _push(self, raw: bytes) -> None:
        if not self.ring.queue_sqe_bytes(raw):
            self.ring.submit()
            if not self.ring.queue_sqe_bytes(raw):
                raise RuntimeError("SQ full after submit")

    def _queue_cmd(self, cmd_op: int, tag: int, result: int) -> None:
        addr = self._buf_base + tag * self.max_io_bytes if self.mode == "copy" else 0
        sqe_addr = K.auto_buf_reg_to_sqe_addr(tag) if self.mode == "auto_zc" else 0
        self._push(_cmd_sqe(self.source.char_fd, cmd_op, tag, result=result, addr=addr, sqe_addr=sqe_addr,
                            user_data=_ud(FETCH, tag)))

    def _handle(self, tag: int) -> None:
        desc = self.source.descs[tag]
        op = desc.op_flags & 0xFF
        st = self._tags[tag]
        st.outstanding, st.error, st.expect, st.keep, st.op = 0, 0, [], [], op
        st.length = desc.nr_sectors * K.SECTOR
        offset = desc.start_sector * K.SECTOR
        self.stats["requests"] += 1
        if op == K.UBLK_IO_OP_FLUSH:
            if self.integrity is not None:
                self.integrity.flush()
            for i, fd in enumerate(self.fds):
                sqe = self._sqe()
                prep.prep_rw(sqe, u.IORING_OP_FSYNC, fd, 0, 0, 0)
                sqe.fsync_flags = u.IORING_FSYNC_DATASYNC
                sqe.user_data = _ud(DATA, tag, i)
                st.expect.append(0)
            st.outstanding = len(self.fds)
            return
        if op not in (K.UBLK_IO_OP_READ, K.UBLK_IO_OP_WRITE) or st.length == 0 \
                or offset + st.length > self.size:
            self._commit(tag, -errno.EINVAL if op in (K.UBLK_IO_OP_READ, K.UBLK_IO_OP_WRITE)
                         else -errno.EOPNOTSUPP)
            return
        write = op == K.UBLK_IO_OP_WRITE
        fops = self.layout.split(offset, st.length)
        zc = self.mode != "copy"
        manual_reg = self.mode == "zc" or desc.op_flags & K.UBLK_IO_F_NEED_REG_BUF
        if zc and manual_reg:
            self._push(self._reg_sqe[tag])
        base = 0 if zc else self._buf_base + tag * self.max_io_bytes
        for i, fop in enumerate(fops):
            sqe = self._sqe()
            if len(fop.pieces) == 1:
                # one contiguous piece (a request within one chunk, or chunk-aligned): the
                # plain READ/WRITE (copy) or READ_FIXED/WRITE_FIXED (zero copy) — no iovec
                # array to build, and none for the kernel side to copy in
                boff, n = fop.pieces[0]
                if zc:
                    K.prep_write_fixed(sqe, self.fds[fop.file], boff, n, fop.file_offset, tag) \
                        if write else K.prep_read_fixed(sqe, self.fds[fop.file], boff, n,
                                                        fop.file_offset, tag)
                else:
                    prep.prep_rw(sqe, u.IORING_OP_WRITE if write else u.IORING_OP_READ,
                                 self.fds[fop.file], base + boff, n, fop.file_offset)
                if zc and manual_reg:
                    sqe.flags = u.IOSQE_IO_HARDLINK
                sqe.user_data = _ud(DATA, tag, i)
                st.expect.append(fop.length)
                continue
            iov = (u.Iovec * len(fop.pieces))()
            for j, (boff, n) in enumerate(fop.pieces):
                iov[j].iov_base, iov[j].iov_len = base + boff, n
            st.keep.append(iov)
            if zc:
                K.prep_rwv_fixed(sqe, write, self.fds[fop.file], ctypes.addressof(iov),
                                 len(fop.pieces), fop.file_offset, tag)
            else:
                prep.prep_rw(sqe, u.IORING_OP_WRITEV if write else u.IORING_OP_READV,
                             self.fds[fop.file], ctypes.addressof(iov), len(fop.pieces),
                             fop.file_offset)
            if zc and manual_reg:
                sqe.flags = u.IOSQE_IO_HARDLINK
            sqe.user_data = _ud(DATA, tag, i)
            st.expect.append(fop.length)
        st.outstanding = len(fops)
        if zc and manual_reg:
            self._push(self._unreg_sqe[tag])
            st.outstanding += 1
        self.stats["ops"] += len(fops)
        if write and self.integrity is not None:
            if zc:
                self.ring.submit()     # the REGISTER runs at submit: now the slot is filled
                found = K.kbuf_table(self.ring).lookup(tag)
                if found is None:
                    return             # registration failed: the REG CQE will fail the request
                addr = found[0]
            else:
                addr = base
            self.integrity.record_write(offset, addr, st.length)

    def _op_done(self, kind: int, tag: int, i: int, res: int) -> None:
        st = self._tags[tag]
        if kind == REG:                # only failures are posted (CQE_SKIP_SUCCESS)
            st.error = st.error or res
            return
        if kind == DATA:
            if res < 0:
                st.error = st.error or res
            elif res != st.expect[i]:
                st.error = st.error or -errno.EIO
        elif res < 0 and kind == UNREG:
            st.error = st.error or res
        st.outstanding -= 1
        if st.outstanding == 0:
            self._commit(tag, st.error if st.error else st.length)

    def _commit(self, tag: int, result: int) -> None:
        self._tags[tag].keep = []
        self._queue_cmd(K.UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, result)

    def close(self) -> None:
        """Close the backing files."""
        for fd in getattr(self, "fds", []):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []


def start(target: StripeTarget) -> tuple[K.RequestSource, K.KbufRing, threading.Thread]:
    """Run ``target`` in a thread; returns (source, ring, thread). Stop with :func:`stop`."""
    source = target.make_source()
    ring = target.make_ring()
    ready = threading.Event()
    errors: list = []

    def run():
        try:
            target.serve(source, ring, ready)
        except BaseException as exc:          # surfaced by stop()
            errors.append(exc)
            ready.set()
            source.stop()

    thread = threading.Thread(target=run, name="stripe-target", daemon=True)
    thread.errors = errors
    thread.start()
    ready.wait(10)
    if errors:
        raise errors[0]
    return source, ring, thread


def stop(source: K.RequestSource, ring: K.KbufRing, thread: threading.Thread,
         target: StripeTarget | None = None) -> None:
    """Stop a target started with :func:`start` and join its thread."""
    source.stop()
    thread.join(10)
    ring.close()
    source.close()
    if target is not None:
        if target.integrity is not None:
            target.integrity.flush()
        target.close()
    if thread.errors:
        raise thread.errors[0]
