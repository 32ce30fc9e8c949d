"""The thread-pool backend: an in-process "kernel" for machines without io_uring.

When io_uring_setup fails (ENOSYS, or EPERM from ``kernel.io_uring_disabled`` or a
seccomp policy), this backend provides the same three memory regions with the same
layout and the same two verbs. ``enter`` consumes SQEs from the SQ ring exactly as the
kernel does (head/tail, optional SQ array), runs them, and posts CQEs into the CQ ring, so
the :class:`~.ring.Ring` frontend cannot tell the difference.

What is reproduced: CQE results are the raw syscall results (bytes or ``-errno``, taken
from libc through ctypes so errno is the kernel's own), IO_LINK (an error or a short
read/write fails the link and the rest complete with -ECANCELED), IO_HARDLINK, IO_DRAIN,
CQE_SKIP_SUCCESS, LINK_TIMEOUT, TIMEOUT (time and completion count), ASYNC_CANCEL,
fixed files and buffers (incl. sparse tables and updates), MSG_RING between thread-pool
rings, NOP result injection, CQ overflow without loss (FEAT_NODROP) and the probe.

How: a chain (a request and the requests linked to it) runs in order on one worker
thread; blocking socket/pipe operations first wait in ``poll`` together with a
per-request eventfd so ASYNC_CANCEL and LINK_TIMEOUT can interrupt them. Quick
operations (NOP, CLOSE, OPENAT, MSG_RING, ASYNC_CANCEL, URING_CMD) run inline in
``enter`` like the kernel runs them inline. Not emulated: SQPOLL, IOPOLL, multishot
requests, provided buffers, the many opcodes the frontend has no prep helper for (they
complete with -EINVAL and are absent from the probe).
"""

from __future__ import annotations

import collections
import ctypes
import errno
import os
import queue
import select
import socket
import stat
import struct
import threading
import time
import logging
import weakref

from . import region as rg
from . import syscalls
from . import uapi as u

log = logging.getLogger(__name__)

M32 = 0xFFFFFFFF
U64 = (1 << 64) - 1

_libc = ctypes.CDLL(None, use_errno=True)


def _fn(name, restype, *argtypes):
    f = getattr(_libc, name)
    f.restype, f.argtypes = restype, list(argtypes)
    return f


_vp, _int, _sz, _off = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_long
_pread = _fn("pread64", ctypes.c_ssize_t, _int, _vp, _sz, _off)
_pwrite = _fn("pwrite64", ctypes.c_ssize_t, _int, _vp, _sz, _off)
_read = _fn("read", ctypes.c_ssize_t, _int, _vp, _sz)
_write = _fn("write", ctypes.c_ssize_t, _int, _vp, _sz)
_preadv = _fn("preadv64", ctypes.c_ssize_t, _int, _vp, _int, _off)
_pwritev = _fn("pwritev64", ctypes.c_ssize_t, _int, _vp, _int, _off)
_readv = _fn("readv", ctypes.c_ssize_t, _int, _vp, _int)
_writev = _fn("writev", ctypes.c_ssize_t, _int, _vp, _int)
_recv = _fn("recv", ctypes.c_ssize_t, _int, _vp, _sz, _int)
_send = _fn("send", ctypes.c_ssize_t, _int, _vp, _sz, _int)
_accept4 = _fn("accept4", _int, _int, _vp, _vp, _int)
_connect = _fn("connect", _int, _int, _vp, ctypes.c_uint32)
_fsync = _fn("fsync", _int, _int)
_fdatasync = _fn("fdatasync", _int, _int)
_openat = _fn("openat", _int, _int, _vp, _int, ctypes.c_uint)
_close = _fn("close", _int, _int)


def _sys(ret: int) -> int:
    return -ctypes.get_errno() if ret < 0 else ret


_SQE = struct.Struct("<BBHiQQIIQHHI")   # the first 48 bytes of struct io_uring_sqe
_MSG_DONTWAIT, _MSG_NOSIGNAL, _MSG_WAITALL = 0x40, 0x4000, 0x100

SUPPORTED_OPS = frozenset([
    u.IORING_OP_NOP, u.IORING_OP_READV, u.IORING_OP_WRITEV, u.IORING_OP_FSYNC,
    u.IORING_OP_READ_FIXED, u.IORING_OP_WRITE_FIXED, u.IORING_OP_POLL_ADD,
    u.IORING_OP_TIMEOUT, u.IORING_OP_ACCEPT, u.IORING_OP_ASYNC_CANCEL,
    u.IORING_OP_LINK_TIMEOUT, u.IORING_OP_CONNECT, u.IORING_OP_OPENAT, u.IORING_OP_CLOSE,
    u.IORING_OP_READ, u.IORING_OP_WRITE, u.IORING_OP_SEND, u.IORING_OP_RECV,
    u.IORING_OP_MSG_RING, u.IORING_OP_URING_CMD])
_INLINE_OPS = frozenset([u.IORING_OP_NOP, u.IORING_OP_CLOSE, u.IORING_OP_OPENAT,
                         u.IORING_OP_MSG_RING, u.IORING_OP_ASYNC_CANCEL, u.IORING_OP_URING_CMD])
# requests that always wait in poll() (so a cancel always catches them)
_WAIT_OPS = frozenset([u.IORING_OP_POLL_ADD, u.IORING_OP_SEND, u.IORING_OP_RECV,
                       u.IORING_OP_ACCEPT, u.IORING_OP_CONNECT, u.IORING_OP_TIMEOUT])
_RW_LEN_OPS = frozenset([u.IORING_OP_READ, u.IORING_OP_WRITE, u.IORING_OP_READ_FIXED,
                         u.IORING_OP_WRITE_FIXED])
_SETUP_OK = (u.IORING_SETUP_CQSIZE | u.IORING_SETUP_CLAMP | u.IORING_SETUP_SUBMIT_ALL
             | u.IORING_SETUP_COOP_TASKRUN | u.IORING_SETUP_TASKRUN_FLAG
             | u.IORING_SETUP_SQE128 | u.IORING_SETUP_CQE32 | u.IORING_SETUP_SINGLE_ISSUER
             | u.IORING_SETUP_DEFER_TASKRUN | u.IORING_SETUP_NO_SQARRAY)
FEATURES = (u.IORING_FEAT_SINGLE_MMAP | u.IORING_FEAT_NODROP | u.IORING_FEAT_SUBMIT_STABLE
            | u.IORING_FEAT_RW_CUR_POS | u.IORING_FEAT_CQE_SKIP | u.IORING_FEAT_EXT_ARG)
_ENTER_OK = (u.IORING_ENTER_GETEVENTS | u.IORING_ENTER_SQ_WAKEUP | u.IORING_ENTER_SQ_WAIT
             | u.IORING_ENTER_EXT_ARG)
_LINK = u.IOSQE_IO_LINK | u.IOSQE_IO_HARDLINK

#: ring fd -> backend, so MSG_RING can find a thread-pool ring by its fd.
_registry: "weakref.WeakValueDictionary[int, ThreadsBackend]" = weakref.WeakValueDictionary()


class _Done(Exception):
    """Raised inside an operation to complete it with ``res`` at once."""

    def __init__(self, res: int):
        self.res = res


def _pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


class _Req:
    __slots__ = ("op", "flags", "fd", "off", "addr", "len", "op_flags", "user_data",
                 "buf_index", "file_index", "ioprio", "seq", "efd", "cancelled",
                 "timed_out", "waiting", "error", "started")

    def __init__(self, raw: bytes, seq: int):
        (self.op, self.flags, self.ioprio, self.fd, self.off, self.addr, self.len,
         self.op_flags, self.user_data, self.buf_index, _pers, self.file_index) = \
            _SQE.unpack_from(raw)
        self.seq = seq
        self.efd = None
        self.cancelled = self.timed_out = self.waiting = self.started = False
        self.error = 0


class ThreadsBackend:
    """An emulated io_uring instance (see the module docstring)."""

    name = "threads"

    def __init__(self, entries: int, params: u.IoUringParams):
        flags = params.flags
        if flags & ~_SETUP_OK:
            raise OSError(errno.EINVAL, f"thread-pool backend: unsupported setup flags "
                                        f"{flags & ~_SETUP_OK:#x}")
        if flags & u.IORING_SETUP_DEFER_TASKRUN and not flags & u.IORING_SETUP_SINGLE_ISSUER:
            raise OSError(errno.EINVAL, "DEFER_TASKRUN needs SINGLE_ISSUER")
        if not 1 <= entries <= 32768:
            raise OSError(errno.EINVAL, "entries out of range")
        sq = _pow2(entries)
        if flags & u.IORING_SETUP_CQSIZE:
            if not params.cq_entries:
                raise OSError(errno.EINVAL, "CQSIZE with cq_entries = 0")
            cq = _pow2(params.cq_entries)
            if cq < sq or cq > 65536:
                raise OSError(errno.EINVAL, "bad cq_entries")
        else:
            cq = 2 * sq
        self.params = params
        params.sq_entries, params.cq_entries, params.features = sq, cq, FEATURES
        self._sqe_size = 128 if flags & u.IORING_SETUP_SQE128 else 64
        self._cqe_size = 32 if flags & u.IORING_SETUP_CQE32 else 16
        so, co = params.sq_off, params.cq_off
        # one region, laid out like the kernel's struct io_rings (head/tail on their own lines)
        so.head, so.tail, co.head, co.tail = 0, 64, 128, 192
        so.ring_mask, co.ring_mask, so.ring_entries, co.ring_entries = 256, 260, 264, 268
        so.dropped, so.flags, co.flags, co.overflow = 272, 276, 280, 284
        co.cqes = 320
        cq_end = co.cqes + cq * self._cqe_size
        self._no_sqarray = bool(flags & u.IORING_SETUP_NO_SQARRAY)
        so.array = 0 if self._no_sqarray else cq_end
        size = cq_end + (0 if self._no_sqarray else 4 * sq)
        self.sq_region = self.cq_region = rg.anonymous(size)
        self.sqe_region = rg.anonymous(sq * self._sqe_size)
        self.sq_ring_addr = self.cq_ring_addr = self.sq_region.addr
        self.sqes_addr = self.sqe_region.addr
        self.sq_ring_size = self.cq_ring_size = size
        self._w = rg.u32_view(self.sq_region)
        w = self._w
        w[so.ring_mask >> 2], w[co.ring_mask >> 2] = sq - 1, cq - 1
        w[so.ring_entries >> 2], w[co.ring_entries >> 2] = sq, cq
        self._sq, self._cq = sq, cq
        self._so, self._co = so, co
        self._sqe_b = memoryview(self.sqe_region).cast("B")
        self._cq_b = memoryview(self.sq_region).cast("B")
        self.fd = os.eventfd(0, os.EFD_CLOEXEC)
        _registry[self.fd] = self
        self._closed = False
        self._cond = threading.Condition()
        self._overflow: collections.deque = collections.deque()
        self._seq = 0                      # non-timeout CQEs posted (TIMEOUT counts)
        self._active: dict[int, list[_Req]] = {}
        self._timeouts: list[_Req] = []
        # drain/ordering state
        self._lock = threading.Lock()
        self._running = 0
        self._drain_running = False
        self._held: collections.deque = collections.deque()
        # worker pool
        self._pool_lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = 0
        self._threads = 0
        # registered resources
        self._files: list | None = None
        self._bufs: list | None = None
        self._evfd: int | None = None       # IORING_REGISTER_EVENTFD (a dup, like the kernel's reference)

    # ---------------------------------------------------------------- CQ
    def _post(self, user_data: int, res: int, flags: int = 0, timeout: bool = False) -> None:
        with self._cond:
            if self._closed:
                return
            if not timeout:
                self._seq += 1
            self._overflow.append((user_data, res, flags))
            self._flush_overflow()
            self._cond.notify_all()
            if self._evfd is not None:   # the kernel signals a registered eventfd per CQE
                os.eventfd_write(self._evfd, 1)

    def _flush_overflow(self) -> None:
        w, co, so = self._w, self._co, self._so
        head, tail = w[co.head >> 2], w[co.tail >> 2]
        while self._overflow and (tail - head) & M32 < self._cq:
            ud, res, fl = self._overflow.popleft()
            off = co.cqes + (tail & (self._cq - 1)) * self._cqe_size
            struct.pack_into("<QiI", self._cq_b, off, ud & U64, res, fl)
            if self._cqe_size == 32:
                self._cq_b[off + 16:off + 32] = bytes(16)
            tail = (tail + 1) & M32
        w[co.tail >> 2] = tail
        if self._overflow:
            w[so.flags >> 2] |= u.IORING_SQ_CQ_OVERFLOW
        else:
            w[so.flags >> 2] &= ~u.IORING_SQ_CQ_OVERFLOW & M32

    def _ready(self) -> int:
        return (self._w[self._co.tail >> 2] - self._w[self._co.head >> 2]) & M32

    # ---------------------------------------------------------------- enter
    def enter(self, to_submit: int, min_complete: int, flags: int,
              sig: int | None = None, timeout: float | None = None) -> int:
        """io_uring_enter for the thread-pool ring: submit, then wait as the flags ask; ``>= 0``
        or ``-errno``."""
        if self._closed:
            return -errno.EBADF
        if flags & ~_ENTER_OK:
            return -errno.EINVAL
        submitted = self._submit(to_submit) if to_submit else 0
        if not flags & u.IORING_ENTER_GETEVENTS:
            return submitted
        want = min(min_complete, self._cq)
        deadline = None if timeout is None else time.monotonic() + timeout
        ret = 0
        with self._cond:
            self._flush_overflow()
            while self._ready() < want:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    ret = -errno.ETIME
                    break
                self._cond.wait(remaining)
                self._flush_overflow()
        return submitted if submitted else ret

    def _submit(self, n: int) -> int:
        w, so = self._w, self._so
        head, tail = w[so.head >> 2], w[so.tail >> 2]
        n = min(n, (tail - head) & M32)
        reqs = []
        size = self._sqe_size
        for i in range(n):
            pos = (head + i) & (self._sq - 1)
            idx = pos if self._no_sqarray else w[(so.array >> 2) + pos]
            if idx >= self._sq:
                w[so.dropped >> 2] += 1
                continue
            reqs.append(_Req(bytes(self._sqe_b[idx * size:idx * size + 48]), self._seq))
        w[so.head >> 2] = (head + n) & M32
        chain: list[_Req] = []
        for r in reqs:
            chain.append(r)
            if not r.flags & _LINK:
                self._dispatch(chain)
                chain = []
        if chain:
            self._dispatch(chain)
        return n

    # ---------------------------------------------------------------- dispatch
    def _prep_error(self, r: _Req, prev: _Req | None) -> int:
        """io_init_req-style checks done before anything in the chain runs."""
        if r.flags & ~0x7F or r.flags & u.IOSQE_BUFFER_SELECT:
            return -errno.EINVAL
        if r.op not in SUPPORTED_OPS:
            return -errno.EINVAL
        if r.op == u.IORING_OP_LINK_TIMEOUT:
            if prev is None or not prev.flags & _LINK or r.len != 1:
                return -errno.EINVAL
        if r.op == u.IORING_OP_TIMEOUT and r.len != 1:
            return -errno.EINVAL
        if r.op == u.IORING_OP_POLL_ADD and r.len & u.IORING_POLL_ADD_MULTI:
            return -errno.EINVAL
        return 0

    def _dispatch(self, chain: list[_Req]) -> None:
        prev = None
        for r in chain:
            r.error = self._prep_error(r, prev)
            prev = r
        if any(r.error for r in chain):
            # A request refused at submission fails its whole link: itself with its own
            # error, every other member with -ECANCELED (io_submit_fail_init).
            for r in chain:
                self._post(r.user_data, r.error or -errno.ECANCELED)
            return
        drain = any(r.flags & u.IOSQE_IO_DRAIN for r in chain)
        with self._cond:   # findable by ASYNC_CANCEL from submission on, like the kernel's
            for r in chain:
                self._active.setdefault(r.user_data, []).append(r)
        with self._lock:
            if self._held or self._drain_running or (drain and self._running):
                self._held.append((chain, drain))
                return
            self._running += 1
            if drain:
                self._drain_running = True
        if all(r.op in _INLINE_OPS for r in chain):
            self._run(chain, drain)
        else:
            self._spawn(lambda: self._run(chain, drain))

    def _run(self, chain: list[_Req], drain: bool) -> None:
        try:
            self._run_chain(chain)
        finally:
            start = []
            with self._lock:
                self._running -= 1
                if drain:
                    self._drain_running = False
                while self._held and not self._drain_running:
                    c, d = self._held[0]
                    if d and self._running:
                        break
                    self._held.popleft()
                    self._running += 1
                    if d:
                        self._drain_running = True
                    start.append((c, d))
            for c, d in start:
                self._spawn(lambda c=c, d=d: self._run(c, d))

    def _spawn(self, fn) -> None:
        with self._pool_lock:
            if self._idle > 0:
                self._idle -= 1
                self._queue.put(fn)
                return
            self._threads += 1
        threading.Thread(target=self._worker, args=(fn,), daemon=True,
                         name=f"uringbpf-threads-{self.fd}").start()

    def _worker(self, fn) -> None:
        while True:
            if fn is None:
                with self._pool_lock:
                    self._threads -= 1
                return
            try:
                fn()
            except Exception:   # why: a worker thread must not die with a request in hand: the failure is logged
                log.exception("thread-pool backend: a request's worker function failed")
            with self._pool_lock:
                self._idle += 1
            while True:
                try:
                    fn = self._queue.get(timeout=5.0)
                    break
                except queue.Empty:
                    with self._pool_lock:
                        if self._queue.empty():
                            self._idle -= 1
                            self._threads -= 1
                            return

    # ---------------------------------------------------------------- chains
    def _run_chain(self, chain: list[_Req]) -> None:
        failed = silent = False
        i, n = 0, len(chain)
        while i < n:
            r = chain[i]
            lt = chain[i + 1] if i + 1 < n and chain[i + 1].op == u.IORING_OP_LINK_TIMEOUT \
                else None
            if failed or self._closed:
                self._unregister(r)
                if not silent:
                    self._post(r.user_data, -errno.ECANCELED)
                i += 1
                continue
            deadline = None
            if lt is not None:
                deadline = self._deadline(lt)
                if isinstance(deadline, int):
                    # bad timespec: the pair fails like a prep error
                    self._unregister(r)
                    self._unregister(lt)
                    self._post(r.user_data, -errno.ECANCELED)
                    self._post(lt.user_data, deadline)
                    failed = True
                    i += 2
                    continue
            res = self._execute(r, deadline)
            self._unregister(r)
            if lt is not None:
                self._unregister(lt)
            bad = self._is_failure(r, res)
            if not (r.flags & u.IOSQE_CQE_SKIP_SUCCESS and not bad):
                self._post(r.user_data, res, timeout=r.op == u.IORING_OP_TIMEOUT)
            if lt is not None:
                self._post(lt.user_data, -errno.ETIME if r.timed_out else -errno.ECANCELED)
                i += 1
            if bad and not r.flags & u.IOSQE_IO_HARDLINK:
                failed = True
                # A failing CQE_SKIP_SUCCESS request silences the cancellations of the rest
                # of its chain (the kernel's REQ_F_SKIP_LINK_CQES): one CQE per chain.
                silent = bool(r.flags & u.IOSQE_CQE_SKIP_SUCCESS)
            i += 1

    def _is_failure(self, r: _Req, res: int) -> bool:
        if res < 0:
            return not (r.op == u.IORING_OP_TIMEOUT and res == -errno.ETIME
                        and r.op_flags & u.IORING_TIMEOUT_ETIME_SUCCESS)
        if r.op in _RW_LEN_OPS:
            return res != r.len
        if r.op in (u.IORING_OP_READV, u.IORING_OP_WRITEV):
            return res != self._iov_total(r)
        if r.op in (u.IORING_OP_SEND, u.IORING_OP_RECV) and r.op_flags & _MSG_WAITALL:
            return res < r.len
        return False

    def _iov_total(self, r: _Req) -> int:
        raw = syscalls.read_user(r.addr, 16 * r.len)
        if raw is None:
            return -1
        return sum(struct.unpack_from("<Q", raw, 16 * i + 8)[0] for i in range(r.len))

    def _deadline(self, r: _Req):
        raw = syscalls.read_user(r.addr, 16)
        if raw is None:
            return -errno.EFAULT
        sec, nsec = struct.unpack("<qq", raw)
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            return -errno.EINVAL
        value = sec + nsec / 1e9
        if r.op_flags & u.IORING_TIMEOUT_ABS:
            clock = time.time() if r.op_flags & u.IORING_TIMEOUT_REALTIME else time.monotonic()
            return time.monotonic() + (value - clock)
        return time.monotonic() + value

    def _unregister(self, r: _Req) -> None:
        with self._cond:
            lst = self._active.get(r.user_data)
            if lst is not None and r in lst:
                lst.remove(r)
                if not lst:
                    del self._active[r.user_data]
            if r.efd is not None:
                os.close(r.efd)
                r.efd = None

    def _execute(self, r: _Req, deadline: float | None) -> int:
        with self._cond:
            if r.cancelled:
                return -errno.ECANCELED
            r.started = True
        try:
            return self._issue(r, deadline)
        except _Done as d:
            return d.res
        except OSError as exc:
            return -(exc.errno or errno.EIO)

    # ---------------------------------------------------------------- operations
    def _file(self, r: _Req) -> int:
        if r.flags & u.IOSQE_FIXED_FILE:
            files = self._files
            if files is None or not 0 <= r.fd < len(files) or files[r.fd] is None:
                raise _Done(-errno.EBADF)
            return files[r.fd]
        return r.fd

    @staticmethod
    def _pollable(fd: int) -> bool:
        try:
            mode = os.fstat(fd).st_mode
        except OSError as exc:
            raise _Done(-exc.errno)
        return not (stat.S_ISREG(mode) or stat.S_ISBLK(mode))

    def _wait_fd(self, r: _Req, fd: int, events: int, deadline: float | None) -> int:
        """Wait for ``events`` on ``fd``; -ECANCELED on cancel or LINK_TIMEOUT expiry."""
        with self._cond:
            if r.efd is None:
                r.efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            r.waiting = True
            if r.cancelled:
                raise _Done(-errno.ECANCELED)
        p = select.poll()
        p.register(fd, events)
        p.register(r.efd, select.POLLIN)
        try:
            while True:
                ms = None
                if deadline is not None:
                    ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
                ready = p.poll(ms)
                if r.cancelled:
                    raise _Done(-errno.ECANCELED)
                for f, ev in ready:
                    if f == fd:
                        if ev & select.POLLNVAL:
                            raise _Done(-errno.EBADF)
                        return ev
                if deadline is not None and time.monotonic() >= deadline:
                    r.timed_out = True
                    raise _Done(-errno.ECANCELED)
        finally:
            with self._cond:
                r.waiting = False

    def _issue(self, r: _Req, deadline: float | None) -> int:
        op = r.op
        if op == u.IORING_OP_NOP:
            return self._nop(r)
        if op in (u.IORING_OP_READ, u.IORING_OP_WRITE, u.IORING_OP_READ_FIXED,
                  u.IORING_OP_WRITE_FIXED):
            if op in (u.IORING_OP_READ_FIXED, u.IORING_OP_WRITE_FIXED):
                self._check_fixed(r)
            reading = op in (u.IORING_OP_READ, u.IORING_OP_READ_FIXED)
            return self._rw(r, deadline, reading)
        if op in (u.IORING_OP_READV, u.IORING_OP_WRITEV):
            return self._rwv(r, deadline, op == u.IORING_OP_READV)
        if op == u.IORING_OP_FSYNC:
            fd = self._file(r)
            fn = _fdatasync if r.op_flags & u.IORING_FSYNC_DATASYNC else _fsync
            return _sys(fn(fd))
        if op == u.IORING_OP_OPENAT:
            return self._openat(r)
        if op == u.IORING_OP_CLOSE:
            return self._close_op(r)
        if op == u.IORING_OP_TIMEOUT:
            return self._timeout(r)
        if op == u.IORING_OP_POLL_ADD:
            fd = self._file(r)
            self._pollable(fd)
            mask = r.op_flags & 0xFFFF
            ev = self._wait_fd(r, fd, mask, deadline)
            return ev & (mask | select.POLLERR | select.POLLHUP)
        if op == u.IORING_OP_SEND:
            return self._send(r, deadline)
        if op == u.IORING_OP_RECV:
            return self._recv(r, deadline)
        if op == u.IORING_OP_ACCEPT:
            fd = self._file(r)
            self._pollable(fd)
            self._wait_fd(r, fd, select.POLLIN, deadline)
            return _sys(_accept4(fd, r.addr or None, r.off or None, r.op_flags & M32))
        if op == u.IORING_OP_CONNECT:
            return self._connect(r, deadline)
        if op == u.IORING_OP_MSG_RING:
            return self._msg_ring(r)
        if op == u.IORING_OP_ASYNC_CANCEL:
            return self._cancel(r)
        if op == u.IORING_OP_URING_CMD:
            self._pollable(self._file(r))
            return -errno.EOPNOTSUPP
        return -errno.EINVAL

    def _nop(self, r: _Req) -> int:
        known = (u.IORING_NOP_INJECT_RESULT | u.IORING_NOP_FILE | u.IORING_NOP_FIXED_FILE
                 | u.IORING_NOP_FIXED_BUFFER)
        if r.op_flags & ~known:
            return -errno.EINVAL
        if r.op_flags & u.IORING_NOP_FILE:
            fd = r.fd
            if r.op_flags & u.IORING_NOP_FIXED_FILE:
                if self._files is None or not 0 <= fd < len(self._files) or \
                        self._files[fd] is None:
                    return -errno.EBADF
            else:
                self._pollable(fd)
        if r.op_flags & u.IORING_NOP_INJECT_RESULT:
            return ctypes.c_int32(r.len).value
        return 0

    def _check_fixed(self, r: _Req) -> None:
        bufs = self._bufs
        if bufs is None or r.buf_index >= len(bufs) or bufs[r.buf_index] is None:
            raise _Done(-errno.EFAULT)
        base, size = bufs[r.buf_index]
        if r.addr < base or r.addr + r.len > base + size:
            raise _Done(-errno.EFAULT)

    def _rw(self, r: _Req, deadline, reading: bool) -> int:
        fd = self._file(r)
        poll = self._pollable(fd)
        while True:
            if poll:
                self._wait_fd(r, fd, select.POLLIN if reading else select.POLLOUT, deadline)
            if r.off == U64:
                ret = _sys((_read if reading else _write)(fd, r.addr or None, r.len))
            else:
                ret = _sys((_pread if reading else _pwrite)(fd, r.addr or None, r.len,
                                                            ctypes.c_int64(r.off).value))
            if ret == -errno.EAGAIN and poll:
                continue
            return ret

    def _rwv(self, r: _Req, deadline, reading: bool) -> int:
        fd = self._file(r)
        if r.len > 1024:
            return -errno.EINVAL
        poll = self._pollable(fd)
        while True:
            if poll:
                self._wait_fd(r, fd, select.POLLIN if reading else select.POLLOUT, deadline)
            if r.off == U64:
                ret = _sys((_readv if reading else _writev)(fd, r.addr or None, r.len))
            else:
                ret = _sys((_preadv if reading else _pwritev)(fd, r.addr or None, r.len,
                                                              ctypes.c_int64(r.off).value))
            if ret == -errno.EAGAIN and poll:
                continue
            return ret

    def _send(self, r: _Req, deadline) -> int:
        return self._sock_xfer(r, deadline, _send, _MSG_NOSIGNAL, select.POLLOUT)

    def _recv(self, r: _Req, deadline) -> int:
        return self._sock_xfer(r, deadline, _recv, 0, select.POLLIN)

    def _sock_xfer(self, r: _Req, deadline, call, extra_flags: int, event: int) -> int:
        """send/recv as the kernel's io_uring does: non-blocking tries, poll between them,
        and MSG_WAITALL keeps going until the whole length moved (or EOF/error)."""
        fd = self._file(r)
        flags = (r.op_flags | _MSG_DONTWAIT | extra_flags) & ~_MSG_WAITALL
        done = 0
        while True:
            ret = _sys(call(fd, (r.addr + done) or None, r.len - done, flags))
            if ret == -errno.EAGAIN:
                self._wait_fd(r, fd, event, deadline)
                continue
            if ret < 0:
                return ret if not done else done
            done += ret
            if not r.op_flags & _MSG_WAITALL or done >= r.len or ret == 0:
                return done

    def _connect(self, r: _Req, deadline) -> int:
        fd = self._file(r)
        ret = _sys(_connect(fd, r.addr or None, r.off & M32))
        if ret in (-errno.EINPROGRESS, -errno.EAGAIN):
            self._wait_fd(r, fd, select.POLLOUT, deadline)
            err = socket.socket(fileno=os.dup(fd))
            try:
                return -err.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            finally:
                err.close()
        return ret

    def _openat(self, r: _Req) -> int:
        if syscalls.read_user(r.addr, 1) is None:
            return -errno.EFAULT
        fd = _sys(_openat(r.fd, r.addr, r.op_flags & M32, r.len))
        if fd < 0 or not r.file_index:
            return fd
        files = self._files
        if files is None:
            os.close(fd)
            return -errno.ENXIO
        if r.file_index == u.IORING_FILE_INDEX_ALLOC:
            for slot, cur in enumerate(files):
                if cur is None:
                    files[slot] = fd
                    return slot
            os.close(fd)
            return -errno.ENFILE
        slot = r.file_index - 1
        if slot >= len(files):
            os.close(fd)
            return -errno.EINVAL
        if files[slot] is not None:
            os.close(files[slot])
        files[slot] = fd
        return 0

    def _close_op(self, r: _Req) -> int:
        if r.file_index:
            files, slot = self._files, r.file_index - 1
            if r.fd or r.flags & u.IOSQE_FIXED_FILE:
                return -errno.EINVAL
            if files is None or slot >= len(files) or files[slot] is None:
                return -errno.EBADF
            os.close(files[slot])
            files[slot] = None
            return 0
        if r.flags & u.IOSQE_FIXED_FILE:
            return -errno.EBADF
        if r.fd == self.fd:
            return -errno.EBADF
        return _sys(_close(r.fd))

    def _timeout(self, r: _Req) -> int:
        deadline = self._deadline(r)
        if isinstance(deadline, int):
            return deadline
        count = r.off
        with self._cond:
            self._timeouts.append(r)
            try:
                while True:
                    if r.cancelled or self._closed:
                        return -errno.ECANCELED
                    if count and self._seq - r.seq >= count:
                        return 0
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return -errno.ETIME
                    self._cond.wait(remaining)
            finally:
                self._timeouts.remove(r)

    def _msg_ring(self, r: _Req) -> int:
        if r.addr != u.IORING_MSG_DATA:
            return -errno.EINVAL
        fd = self._file(r) if r.flags & u.IOSQE_FIXED_FILE else r.fd
        target = _registry.get(fd)
        if target is None or target._closed:
            self._pollable(fd)   # -EBADF for a bad fd
            return -errno.EBADFD
        if not r.op_flags & u.IORING_MSG_RING_CQE_SKIP:
            cflags = r.file_index if r.op_flags & u.IORING_MSG_RING_FLAGS_PASS else 0
            target._post(r.off, ctypes.c_int32(r.len).value, cflags)
        return 0

    def _cancel(self, r: _Req) -> int:
        fl = r.op_flags
        if fl & ~(u.IORING_ASYNC_CANCEL_ALL | u.IORING_ASYNC_CANCEL_ANY
                  | u.IORING_ASYNC_CANCEL_USERDATA):
            return -errno.EINVAL
        with self._cond:
            if fl & u.IORING_ASYNC_CANCEL_ANY:
                cands = [x for lst in self._active.values() for x in lst if x is not r]
            else:
                cands = [x for x in self._active.get(r.addr, []) if x is not r]
            if not cands:
                return -errno.ENOENT
            if not fl & u.IORING_ASYNC_CANCEL_ALL:
                cands = cands[:1]
            done = 0
            for x in cands:
                # Always flag it: a request about to wait sees the flag before sleeping.
                x.cancelled = True
                if x.efd is not None:
                    os.eventfd_write(x.efd, 1)
                if not x.started or x.waiting or x.op in _WAIT_OPS or x in self._timeouts:
                    done += 1
            self._cond.notify_all()
        if fl & u.IORING_ASYNC_CANCEL_ALL:
            return done
        return 0 if done else -errno.EALREADY

    # ---------------------------------------------------------------- register
    def register(self, opcode: int, arg: int, nr_args: int) -> int:
        """io_uring_register emulation for the opcodes this backend implements (-EINVAL for
        others)."""
        if self._closed:
            return -errno.EBADF
        try:
            handler = _REGISTER.get(opcode)
            if handler is None:
                return -errno.EINVAL
            return handler(self, arg, nr_args)
        except _Done as d:
            return d.res

    def _read_struct(self, cls, addr: int):
        raw = syscalls.read_user(addr, ctypes.sizeof(cls))
        if raw is None:
            raise _Done(-errno.EFAULT)
        return cls.from_buffer_copy(raw)

    def _read_fds(self, addr: int, nr: int) -> list:
        raw = syscalls.read_user(addr, 4 * nr)
        if raw is None:
            raise _Done(-errno.EFAULT)
        return list(struct.unpack(f"<{nr}i", raw))

    def _dup_fds(self, fds: list) -> list:
        out: list = []
        try:
            for fd in fds:
                out.append(None if fd == -1 else os.dup(fd))
        except OSError as exc:
            for fd in out:
                if fd is not None:
                    os.close(fd)
            raise _Done(-exc.errno)
        return out

    def _reg_files(self, arg: int, nr: int) -> int:
        if self._files is not None:
            return -errno.EBUSY
        if not 0 < nr <= 1 << 20:
            return -errno.EINVAL
        self._files = self._dup_fds(self._read_fds(arg, nr))
        return 0

    def _reg_files2(self, arg: int, size: int) -> int:
        if size != ctypes.sizeof(u.IoUringRsrcRegister):
            return -errno.EINVAL
        reg = self._read_struct(u.IoUringRsrcRegister, arg)
        if self._files is not None:
            return -errno.EBUSY
        if not 0 < reg.nr <= 1 << 20 or reg.flags & ~u.IORING_RSRC_REGISTER_SPARSE:
            return -errno.EINVAL
        if reg.flags & u.IORING_RSRC_REGISTER_SPARSE:
            if reg.data:
                return -errno.EINVAL
            self._files = [None] * reg.nr
            return 0
        self._files = self._dup_fds(self._read_fds(reg.data, reg.nr))
        return 0

    def _unreg_files(self, arg: int, nr: int) -> int:
        if self._files is None:
            return -errno.ENXIO
        for fd in self._files:
            if fd is not None:
                os.close(fd)
        self._files = None
        return 0

    def _update_files(self, offset: int, data: int, nr: int) -> int:
        files = self._files
        if files is None:
            return -errno.ENXIO
        if offset + nr > len(files):
            return -errno.EINVAL
        fds = self._read_fds(data, nr)
        for i, fd in enumerate(fds):
            if fd == u.IORING_REGISTER_FILES_SKIP:
                continue
            new = self._dup_fds([fd])[0]
            if files[offset + i] is not None:
                os.close(files[offset + i])
            files[offset + i] = new
        return nr

    def _files_update(self, arg: int, nr: int) -> int:
        upd = self._read_struct(u.IoUringRsrcUpdate, arg)
        return self._update_files(upd.offset, upd.data, nr)

    def _files_update2(self, arg: int, size: int) -> int:
        if size != ctypes.sizeof(u.IoUringRsrcUpdate2):
            return -errno.EINVAL
        upd = self._read_struct(u.IoUringRsrcUpdate2, arg)
        return self._update_files(upd.offset, upd.data, upd.nr)

    def _read_iovecs(self, addr: int, nr: int) -> list:
        raw = syscalls.read_user(addr, 16 * nr)
        if raw is None:
            raise _Done(-errno.EFAULT)
        out = []
        for i in range(nr):
            base, size = struct.unpack_from("<QQ", raw, 16 * i)
            if base and size:
                if size > 1 << 30:
                    raise _Done(-errno.EFAULT)
                out.append((base, size))
            elif not base and not size:
                out.append(None)
            else:
                raise _Done(-errno.EFAULT)
        return out

    def _reg_bufs(self, arg: int, nr: int) -> int:
        if self._bufs is not None:
            return -errno.EBUSY
        if not 0 < nr <= 1 << 14:
            return -errno.EINVAL
        self._bufs = self._read_iovecs(arg, nr)
        return 0

    def _reg_bufs2(self, arg: int, size: int) -> int:
        if size != ctypes.sizeof(u.IoUringRsrcRegister):
            return -errno.EINVAL
        reg = self._read_struct(u.IoUringRsrcRegister, arg)
        if self._bufs is not None:
            return -errno.EBUSY
        if not 0 < reg.nr <= 1 << 14 or reg.flags & ~u.IORING_RSRC_REGISTER_SPARSE:
            return -errno.EINVAL
        if reg.flags & u.IORING_RSRC_REGISTER_SPARSE:
            self._bufs = [None] * reg.nr
        else:
            self._bufs = self._read_iovecs(reg.data, reg.nr)
        return 0

    def _unreg_bufs(self, arg: int, nr: int) -> int:
        if self._bufs is None:
            return -errno.ENXIO
        self._bufs = None
        return 0

    def _bufs_update(self, arg: int, size: int) -> int:
        if size != ctypes.sizeof(u.IoUringRsrcUpdate2):
            return -errno.EINVAL
        upd = self._read_struct(u.IoUringRsrcUpdate2, arg)
        if self._bufs is None:
            return -errno.ENXIO
        if upd.offset + upd.nr > len(self._bufs):
            return -errno.EINVAL
        for i, entry in enumerate(self._read_iovecs(upd.data, upd.nr)):
            self._bufs[upd.offset + i] = entry
        return upd.nr

    def _probe(self, arg: int, nr: int) -> int:
        """IORING_REGISTER_PROBE: the caller's buffer holds the header and ``nr`` ops."""
        nr = min(nr, 256)
        size = 16 + 8 * nr
        raw = syscalls.read_user(arg, size)
        if raw is None:
            return -errno.EFAULT
        if any(raw):
            return -errno.EINVAL          # the kernel wants a zeroed probe
        pr = u.IoUringProbe()
        pr.last_op = u.IORING_OP_LAST - 1
        pr.ops_len = min(nr, u.IORING_OP_LAST)
        for i in range(pr.ops_len):
            pr.ops[i].op = i
            pr.ops[i].flags = u.IO_URING_OP_SUPPORTED if i in SUPPORTED_OPS else 0
        if not syscalls.write_user(arg, bytes(pr)[:size]):
            return -errno.EFAULT
        return 0

    def _reg_eventfd(self, arg: int, nr_args: int) -> int:
        """IORING_REGISTER_EVENTFD: the kernel's rules (nr_args 1, one eventfd, EBUSY twice)."""
        if nr_args != 1:
            return -errno.EINVAL
        fd = self._read_fds(arg, 1)[0]
        with self._cond:
            if self._evfd is not None:
                return -errno.EBUSY
            try:                             # the kernel's eventfd_ctx_fdget checks
                kind = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                return -errno.EBADF
            if kind != "anon_inode:[eventfd]":
                return -errno.EINVAL
            self._evfd = os.dup(fd)
        return 0

    def _unreg_eventfd(self, arg: int, nr_args: int) -> int:
        with self._cond:
            if self._evfd is None:
                return -errno.ENXIO
            os.close(self._evfd)
            self._evfd = None
        return 0

    def probe(self) -> set[int]:
        """The opcodes this backend implements."""
        pr = u.IoUringProbe()
        ret = self._probe(ctypes.addressof(pr), 256)
        if ret < 0:
            raise OSError(-ret, "IORING_REGISTER_PROBE failed")
        return {pr.ops[i].op for i in range(pr.ops_len) if pr.ops[i].flags & u.IO_URING_OP_SUPPORTED}

    # ---------------------------------------------------------------- close
    def close(self) -> None:
        """Stop: cancel waiting requests, refuse new work, release registered files."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            for lst in self._active.values():
                for r in lst:
                    r.cancelled = True
                    if r.efd is not None:
                        os.eventfd_write(r.efd, 1)
            self._cond.notify_all()
        with self._pool_lock:
            for _ in range(self._idle):
                self._queue.put(None)
            self._idle = 0
        if self._files:
            for fd in self._files:
                if fd is not None:
                    os.close(fd)
        self._files = None
        if self._evfd is not None:
            os.close(self._evfd)
            self._evfd = None
        _registry.pop(self.fd, None)
        os.close(self.fd)
        self.fd = -1


_REGISTER = {
    u.IORING_REGISTER_FILES: ThreadsBackend._reg_files,
    u.IORING_UNREGISTER_FILES: ThreadsBackend._unreg_files,
    u.IORING_REGISTER_FILES_UPDATE: ThreadsBackend._files_update,
    u.IORING_REGISTER_FILES2: ThreadsBackend._reg_files2,
    u.IORING_REGISTER_FILES_UPDATE2: ThreadsBackend._files_update2,
    u.IORING_REGISTER_BUFFERS: ThreadsBackend._reg_bufs,
    u.IORING_UNREGISTER_BUFFERS: ThreadsBackend._unreg_bufs,
    u.IORING_REGISTER_BUFFERS2: ThreadsBackend._reg_bufs2,
    u.IORING_REGISTER_BUFFERS_UPDATE: ThreadsBackend._bufs_update,
    u.IORING_REGISTER_PROBE: ThreadsBackend._probe,
    u.IORING_REGISTER_EVENTFD: ThreadsBackend._reg_eventfd,
    u.IORING_UNREGISTER_EVENTFD: ThreadsBackend._unreg_eventfd,
}
