"""``RequestSource``: plays ublk_drv for one queue (block requests in, URING_CMD
completions out via MSG_RING), and ``BlockRequest``."""

from __future__ import annotations

import collections
import ctypes
import errno
import mmap
import os
import threading
import weakref
from ctypes import c_uint32
from typing import Callable

from ...uring import prep, uapi as u
from ...uring.kernel import KernelBackend
from .nativelib import native_lib
from .ring import _LINK_FLAGS, _ZERO_SQE, KbufRing
from .uapi import (KBUF_DIR_DEST, KBUF_DIR_SOURCE, SECTOR, UBLK_AUTO_BUF_REG_F_MASK,
                   UBLK_AUTO_BUF_REG_FALLBACK, UBLK_F_AUTO_BUF_REG, UBLK_F_SUPPORT_ZERO_COPY,
                   UBLK_IO_F_NEED_REG_BUF, UBLK_IO_OP_READ, UBLK_IO_OP_WRITE, UBLK_IO_RES_ABORT,
                   UBLK_IO_RES_OK, UBLK_U_IO_COMMIT_AND_FETCH_REQ, UBLK_U_IO_FETCH_REQ,
                   UBLK_U_IO_REGISTER_IO_BUF, UBLK_U_IO_UNREGISTER_IO_BUF, UblksrvIoCmd,
                   UblksrvIoDesc)


# --- the request source (the ublk driver's role) ------------------------------------------
class BlockRequest:
    """One block request: op, byte offset, length and its pages (in the source's region).

    The block-layer side (e.g. the NBD front end) fills a WRITE's pages with :meth:`view`
    before :meth:`RequestSource.queue_rq`, reads a READ's pages after completion, then calls
    :meth:`free`. The server side never gets a Python view of them.
    """

    __slots__ = ("source", "op", "offset", "length", "flags", "slot", "addr", "tag", "result",
                 "committed", "refs", "done", "on_complete", "event", "fallback")

    def __init__(self, source, op, offset, length, flags, slot, addr):
        self.source, self.op, self.offset, self.length, self.flags = (source, op, offset,
                                                                      length, flags)
        self.slot, self.addr = slot, addr
        self.tag = -1
        self.result: int | None = None
        self.committed = False
        self.refs = 0                # kernel-buffer registrations still alive
        self.done = False
        self.on_complete: Callable[["BlockRequest"], None] | None = None
        self.event = threading.Event()
        self.fallback = False

    @property
    def has_data(self) -> bool:
        """True for a READ or WRITE with pages (FLUSH and friends have none)."""
        return self.op in (UBLK_IO_OP_READ, UBLK_IO_OP_WRITE) and self.length > 0

    def view(self) -> memoryview:
        """The request's pages as a writable memoryview (block-layer side only)."""
        return memoryview((ctypes.c_char * self.length).from_address(self.addr)).cast("B")

    def free(self) -> None:
        """Give the request's pages back to the source (block-layer side, after completion)."""
        self.source._free_slot(self)


class _Tag:
    __slots__ = ("state", "ring", "user_data", "buf_addr", "auto", "auto_ring", "request",
                 "fetched")

    def __init__(self):
        self.state = "idle"          # idle -> parked (fetch armed) -> owned (server has a request)
        self.ring = None
        self.user_data = 0
        self.buf_addr = 0
        self.auto: tuple[int, int] | None = None      # (index, flags) for AUTO_BUF_REG
        self.auto_ring = None                          # ring the auto registration went into
        self.request: BlockRequest | None = None
        self.fetched = False         # FETCH_REQ seen once (ublk's per-io ACTIVE history)


class RequestSource:
    """Plays ublk_drv for one queue: block requests in, URING_CMD completions out.

    ``flags``: ``UBLK_F_SUPPORT_ZERO_COPY`` enables REGISTER/UNREGISTER_IO_BUF,
    ``UBLK_F_AUTO_BUF_REG`` the automatic registration; without either the source works in
    *copy mode*: FETCH's ``addr`` names the server's per-tag buffer and the source copies a
    WRITE's pages into it before the fetch CQE and a READ's result out of it at commit (in C).

    ``char_fd`` stands for ``/dev/ublkcN`` (an eventfd: a real descriptor nothing else uses);
    the server targets it with URING_CMD SQEs on a :class:`KbufRing` registered with
    :meth:`KbufRing.register_source`.
    """

    def __init__(self, queue_depth: int = 32, max_io_bytes: int = 1 << 20, flags: int = 0,
                 size: int = 0, pin: str = "region"):
        if not 1 <= queue_depth <= 4096:
            raise ValueError("queue_depth must be 1..4096")
        if max_io_bytes <= 0 or max_io_bytes % SECTOR:
            raise ValueError("max_io_bytes must be a positive multiple of 512")
        if pin not in ("region", "request"):
            raise ValueError("pin must be 'region' or 'request'")
        self.queue_depth, self.max_io_bytes, self.flags, self.size = (queue_depth, max_io_bytes,
                                                                      flags, size)
        self.pin = pin
        self.char_fd = os.eventfd(0, os.EFD_CLOEXEC)
        self._nslots = 2 * queue_depth
        self._region = mmap.mmap(-1, self._nslots * max_io_bytes,
                                 flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._region_addr = ctypes.addressof(ctypes.c_char.from_buffer(self._region))
        self._pin_span = (self._region_addr, len(self._region)) if pin == "region" else None
        self._free = list(range(self._nslots))
        self.descs = (UblksrvIoDesc * queue_depth)()     # "mmapped" descriptor array
        self._tags = [_Tag() for _ in range(queue_depth)]
        self._pending: collections.deque[BlockRequest] = collections.deque()
        self._lock = threading.RLock()
        self._slot_cv = threading.Condition(self._lock)
        self._driver = KernelBackend(64, u.IoUringParams())   # posts CQEs with MSG_RING
        self._driver_sqes = memoryview((ctypes.c_char * self._driver.sqes_size).from_address(
            self._driver.sqes_addr)).cast("B")
        self._rings: weakref.WeakSet = weakref.WeakSet()
        self.dead = False
        self.stats = collections.Counter()
        # copy mode's memmove, looked up once (native.load takes a lock per call): the
        # copy-vs-zero-copy comparison should charge copy mode for the copy, not the lookup
        self._copy = native_lib().kbuf_copy

    # -- block-layer side
    def alloc_request(self, op: int, offset: int, length: int, flags: int = 0,
                      timeout: float | None = None) -> BlockRequest:
        """A request with pages reserved (blocks while all page slots are in use)."""
        if op in (UBLK_IO_OP_READ, UBLK_IO_OP_WRITE):
            if length <= 0 or length > self.max_io_bytes or length % SECTOR or offset % SECTOR:
                raise ValueError(f"I/O must be 512-byte aligned and 1..{self.max_io_bytes} "
                                 f"bytes (offset {offset}, length {length})")
        else:
            # FLUSH and friends carry no data: no pages, so they never wait for a slot
            return BlockRequest(self, op, offset, 0, flags, -1, 0)
        with self._lock:
            while not self._free:
                if self.dead:
                    raise OSError(errno.ENODEV, "request source is dead")
                if not self._slot_cv.wait(timeout):
                    raise TimeoutError("no free request pages")
            slot = self._free.pop()
        addr = self._region_addr + slot * self.max_io_bytes
        return BlockRequest(self, op, offset, length, flags, slot, addr)

    def _free_slot(self, req: BlockRequest) -> None:
        with self._lock:
            if req.slot >= 0:
                self._free.append(req.slot)
                req.slot = -1
                self._slot_cv.notify()

    def queue_rq(self, req: BlockRequest,
                 on_complete: Callable[[BlockRequest], None] | None = None) -> None:
        """Hand a request to the server (blk-mq ``queue_rq``); ``on_complete`` runs once."""
        req.on_complete = on_complete
        with self._lock:
            if self.dead:
                self._finish(req, -errno.EIO)
                return
            self._pending.append(req)
            self.stats["queued"] += 1
            self._dispatch()

    def submit(self, op: int, offset: int, data: bytes | int = 0, flags: int = 0,
               timeout: float | None = 10.0) -> tuple[int, bytes]:
        """Synchronous convenience: run one request, return ``(result, read data)``."""
        length = data if isinstance(data, int) else len(data)
        req = self.alloc_request(op, offset, length, flags)
        try:
            if op == UBLK_IO_OP_WRITE:
                req.view()[:] = data
            self.queue_rq(req)
            if not req.event.wait(timeout):
                raise TimeoutError("request did not complete")
            out = bytes(req.view()) if op == UBLK_IO_OP_READ and req.result == length else b""
            return req.result, out
        finally:
            req.free()

    # -- dispatch and completion
    def _dispatch(self) -> None:
        while self._pending:
            tag_no = next((i for i, t in enumerate(self._tags) if t.state == "parked"), None)
            if tag_no is None:
                return
            req = self._pending.popleft()
            self._deliver(tag_no, req)

    def _deliver(self, tag_no: int, req: BlockRequest) -> None:
        tag = self._tags[tag_no]
        op_flags = req.op | (req.flags & ~0xFF)
        if tag.auto is not None and req.has_data:
            index, aflags = tag.auto
            ret = tag.ring.kbuf.register_kbuf(index, req.addr, req.length, _direction(req),
                                              self._release_cb(req), req, self._pin_span)
            if ret == 0:
                req.refs += 1
                tag.auto_ring = tag.ring
            elif aflags & UBLK_AUTO_BUF_REG_FALLBACK:
                op_flags |= UBLK_IO_F_NEED_REG_BUF
            else:
                # "the ublk I/O request fails silently; the uring_cmd won't be completed"
                self.stats["auto_reg_failed"] += 1
                self._finish(req, -errno.EIO)
                return
        desc = self.descs[tag_no]
        desc.op_flags = op_flags
        desc.nr_sectors = req.length // SECTOR
        desc.start_sector = req.offset // SECTOR
        desc.addr = tag.buf_addr
        if not self._zero_copy and req.op == UBLK_IO_OP_WRITE and req.length:
            self._copy(tag.buf_addr, req.addr, req.length)
            self.stats["copied_bytes"] += req.length
        req.tag = tag_no
        tag.request = req
        tag.state = "owned"
        self.stats["delivered"] += 1
        self._post(tag.ring, tag.user_data, UBLK_IO_RES_OK)

    @property
    def _zero_copy(self) -> bool:
        return bool(self.flags & (UBLK_F_SUPPORT_ZERO_COPY | UBLK_F_AUTO_BUF_REG))

    def _post(self, ring: KbufRing, user_data: int, res: int) -> None:
        """Post a CQE into ``ring``'s real CQ: IORING_OP_MSG_RING from the driver ring."""
        b = self._driver
        p = b.params
        sq = b.sq_ring_addr
        tail = c_uint32.from_address(sq + p.sq_off.tail)
        mask = c_uint32.from_address(sq + p.sq_off.ring_mask).value
        idx = tail.value & mask
        self._driver_sqes[idx * 64:idx * 64 + 64] = _ZERO_SQE
        sqe = u.Sqe.from_address(b.sqes_addr + idx * 64)
        prep.prep_msg_ring(sqe, ring.fd, res, user_data)
        sqe.flags = u.IOSQE_CQE_SKIP_SUCCESS
        c_uint32.from_address(sq + p.sq_off.array + 4 * idx).value = idx
        tail.value += 1
        ret = b.enter(1, 0, 0)
        if ret != 1:
            raise OSError(-ret if ret < 0 else errno.EIO, "posting a fetch completion failed")
        # Only failures produce a CQE on the driver ring (CQE_SKIP_SUCCESS): surface them.
        cq = b.cq_ring_addr
        head = c_uint32.from_address(cq + p.cq_off.head)
        ctail = c_uint32.from_address(cq + p.cq_off.tail).value
        if head.value != ctail:
            cmask = c_uint32.from_address(cq + p.cq_off.ring_mask).value
            cqe = u.Cqe.from_address(cq + p.cq_off.cqes + (head.value & cmask) * 16)
            err = cqe.res
            head.value = ctail
            raise OSError(-err, f"MSG_RING to the server ring failed: {os.strerror(-err)}")
        self.stats["posted"] += 1

    def _release_cb(self, req: BlockRequest) -> Callable[[], None]:
        def release() -> None:
            with self._lock:
                req.refs -= 1
                self._maybe_complete(req)
        return release

    def _maybe_complete(self, req: BlockRequest) -> None:
        if req.committed and req.refs == 0 and not req.done:
            self._finish(req, req.result)

    def _finish(self, req: BlockRequest, result: int) -> None:
        if req.done:
            return
        req.done = True
        req.result = result
        self.stats["completed"] += 1
        cb = req.on_complete
        req.event.set()
        if cb is not None:
            cb(req)

    # -- the command channel (what ublk_ch_uring_cmd does)
    def handle_cmd(self, ring: KbufRing, cmd_op: int, cmd: UblksrvIoCmd, sqe_addr: int,
                   user_data: int, sqe_flags: int):
        """Run one URING_CMD at issue time. Returns ``("done", res)``, ``("parked", None)``
        or ``("deferred", fn)`` (``fn() -> res`` runs when a linked chain reaches it)."""
        with self._lock:
            if cmd.q_id != 0 or cmd.tag >= self.queue_depth:
                return "done", -errno.EINVAL
            if cmd_op == UBLK_U_IO_UNREGISTER_IO_BUF:
                # ublk_unregister_io_buf: only SUPPORT_ZERO_COPY devices (AUTO_BUF_REG alone
                # is not enough); the index is an `unsigned int`, the table checks its range
                if not self.flags & UBLK_F_SUPPORT_ZERO_COPY:
                    return "done", -errno.EINVAL
                index = cmd.addr & 0xFFFFFFFF
                return "deferred", lambda: ring.kbuf.unregister_kbuf(index)
            if cmd_op not in (UBLK_U_IO_FETCH_REQ, UBLK_U_IO_COMMIT_AND_FETCH_REQ,
                              UBLK_U_IO_REGISTER_IO_BUF):
                return "done", -errno.EINVAL
            tag = self._tags[cmd.tag]
            if cmd_op == UBLK_U_IO_FETCH_REQ and all(t.fetched for t in self._tags):
                # ublk_fetch: FETCH_REQ is only allowed before the queue is set up
                return "done", -errno.EBUSY
            if cmd_op != UBLK_U_IO_FETCH_REQ and tag.state != "owned" and not self.dead:
                # __ublk_ch_uring_cmd: "there is pending io cmd, something must be wrong"
                return "done", -errno.EBUSY
            if cmd_op == UBLK_U_IO_REGISTER_IO_BUF:
                return "done", self._register_io_buf(ring, cmd)
            if self.dead:
                tag = self._tags[cmd.tag]
                if cmd_op == UBLK_U_IO_COMMIT_AND_FETCH_REQ and tag.state == "owned":
                    self._commit(ring, tag, cmd.result)    # finish it, but do not re-arm
                return "done", UBLK_IO_RES_ABORT
            if sqe_flags & _LINK_FLAGS:
                # a parked command cannot hold a link chain here (documented difference)
                return "done", -errno.EINVAL
            auto = None
            if self.flags & UBLK_F_AUTO_BUF_REG:
                index, aflags = sqe_addr & 0xFFFF, (sqe_addr >> 16) & 0xFF
                if sqe_addr >> 24 or aflags & ~UBLK_AUTO_BUF_REG_F_MASK:
                    return "done", -errno.EINVAL      # reserved fields must be zero
                auto = (index, aflags)
            if not self._zero_copy and not cmd.addr:
                return "done", -errno.EINVAL          # copy mode needs the server buffer
            if self._zero_copy and cmd.addr:
                return "done", -errno.EINVAL          # no user mapping: addr must be unset
            if cmd_op == UBLK_U_IO_FETCH_REQ:
                if tag.fetched or tag.state != "idle":
                    return "done", -errno.EINVAL      # each tag is fetched at most once
                tag.fetched = True
            else:
                # any of the server's rings may commit (and re-arm the tag there); an
                # automatic registration stays in the ring that fetched (see _commit)
                if tag.state != "owned":
                    return "done", -errno.EINVAL
                self._commit(ring, tag, cmd.result)
            tag.state, tag.ring, tag.user_data = "parked", ring, user_data
            tag.buf_addr = 0 if self._zero_copy else cmd.addr
            tag.auto = auto
            self._dispatch()
            return "parked", None

    def _register_io_buf(self, ring: KbufRing, cmd: UblksrvIoCmd) -> int:
        """ublk_register_io_buf for a tag the server owns (checked by the caller)."""
        if not self.flags & UBLK_F_SUPPORT_ZERO_COPY:
            return -errno.EINVAL
        tag = self._tags[cmd.tag]
        req = tag.request
        if req is None or not req.has_data:
            return -errno.EINVAL
        # the kernel passes `unsigned int index`: (1 << 32) | 1 is slot 1
        ret = ring.kbuf.register_kbuf(cmd.addr & 0xFFFFFFFF, req.addr, req.length, _direction(req),
                                      self._release_cb(req), req, self._pin_span)
        if ret == 0:
            req.refs += 1
        return ret

    def _commit(self, ring: KbufRing, tag: _Tag, result: int) -> None:
        req = tag.request
        if tag.auto_ring is not None:
            # AUTO_BUF_REG undoes its registration only on the ring that fetched; a commit
            # from another ring leaves it to the server (UNREGISTER_IO_BUF there), else the
            # request never completes — the kernel's rule
            if tag.auto_ring is ring and tag.auto is not None:
                ring.kbuf.unregister_kbuf(tag.auto[0])     # -EINVAL if the server already did
            tag.auto_ring = None
        if not self._zero_copy and req.op == UBLK_IO_OP_READ and result > 0:
            n = min(result, req.length)
            self._copy(req.addr, tag.buf_addr, n)
            self.stats["copied_bytes"] += n
        tag.request = None
        tag.state = "idle"
        req.result = result
        req.committed = True
        self.stats["committed"] += 1
        self._maybe_complete(req)

    # -- teardown
    def _ring_closed(self, ring: KbufRing) -> None:
        """The server ring died: its parked fetches vanish, its requests fail (-EIO)."""
        with self._lock:
            for tag in self._tags:
                if tag.ring is ring:
                    req = tag.request
                    tag.state, tag.ring, tag.request, tag.auto_ring = "idle", None, None, None
                    if req is not None and not req.done:
                        req.committed = True
                        req.refs = 0
                        self._finish(req, -errno.EIO)
            if not any(t.state != "idle" for t in self._tags):
                self._kill()

    def _kill(self) -> None:
        self.dead = True
        while self._pending:
            self._finish(self._pending.popleft(), -errno.EIO)
        self._slot_cv.notify_all()

    def stop(self) -> None:
        """Stop the device: fail queued requests and abort every parked fetch (-ENODEV),
        which is how a ublk server learns to exit."""
        with self._lock:
            self._kill()
            for tag in self._tags:
                if tag.state == "parked":
                    tag.state = "idle"
                    self._post(tag.ring, tag.user_data, UBLK_IO_RES_ABORT)

    def close(self) -> None:
        """Stop the device, fail what the server still owns (-EIO) and release the driver ring."""
        with self._lock:
            if self.char_fd < 0:
                return
            self.stop()
            for tag in self._tags:
                req = tag.request
                if req is not None and not req.done:
                    req.committed, req.refs = True, 0
                    self._finish(req, -errno.EIO)
            self._driver.close()
            os.close(self.char_fd)
            self.char_fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _direction(req: BlockRequest) -> int:
    """A WRITE request's pages are only a source; a READ's only a destination."""
    return KBUF_DIR_SOURCE if req.op == UBLK_IO_OP_WRITE else KBUF_DIR_DEST
