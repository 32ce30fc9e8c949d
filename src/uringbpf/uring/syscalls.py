"""The three io_uring syscalls and mmap, through ctypes (no C liburing at run time).

Every wrapper returns the raw kernel result: ``>= 0`` on success, ``-errno`` on failure,
exactly like liburing's ``__sys_io_uring_*`` helpers, so callers decide what is an error.
Tests monkeypatch :func:`io_uring_setup` to force the thread-pool fallback.
"""

from __future__ import annotations

import ctypes
import os

# the C library already in the process (as uring/threads.py and the others take it):
# ctypes.util.find_library("c") runs `ldconfig -p` in a child process, ~5 ms of wall time
# on every import of the ring layer (#19, first run)
_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                  ctypes.c_long]
_munmap = _libc.munmap
_munmap.restype = ctypes.c_int
_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]

# io_uring uses the generic syscall table numbers on every architecture except alpha.
_NUMBERS = {
    "x86_64": (425, 426, 427),
    "aarch64": (425, 426, 427),
    "arm64": (425, 426, 427),
}
SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register = _NUMBERS.get(
    os.uname().machine, (425, 426, 427))

PROT_READ, PROT_WRITE = 1, 2
MAP_SHARED, MAP_POPULATE = 0x01, 0x8000
MAP_FAILED = ctypes.c_void_p(-1).value


def _ret(r: int) -> int:
    return -ctypes.get_errno() if r == -1 else r


def io_uring_setup(entries: int, params_addr: int) -> int:
    """io_uring_setup(2): returns the ring fd or -errno."""
    return _ret(_syscall(ctypes.c_long(SYS_io_uring_setup), ctypes.c_uint(entries),
                         ctypes.c_void_p(params_addr)))


def io_uring_enter(fd: int, to_submit: int, min_complete: int, flags: int,
                   arg: int = 0, argsz: int = 0) -> int:
    """io_uring_enter2: ``arg`` is a sigset_t* (argsz = 8) or io_uring_getevents_arg* (EXT_ARG).

    Hot path: the 32-bit arguments are passed as plain Python ints (ctypes passes them
    as C ints, zero-extended in the registers; the kernel reads them as u32), which is
    about 3x cheaper than wrapping each one in a ctypes object.
    """
    if arg:   # 64-bit arguments must be real ctypes objects
        r = _syscall(SYS_io_uring_enter, fd, to_submit & 0xFFFFFFFF, min_complete & 0xFFFFFFFF,
                     flags & 0xFFFFFFFF, ctypes.c_void_p(arg), ctypes.c_size_t(argsz))
    else:     # argp NULL: the kernel never looks at argsz
        r = _syscall(SYS_io_uring_enter, fd, to_submit & 0xFFFFFFFF, min_complete & 0xFFFFFFFF,
                     flags & 0xFFFFFFFF, None, None)
    return -ctypes.get_errno() if r == -1 else r


def io_uring_register(fd: int, opcode: int, arg: int, nr_args: int) -> int:
    """The io_uring_register syscall: ``>= 0`` or ``-errno``."""
    return _ret(_syscall(ctypes.c_long(SYS_io_uring_register), ctypes.c_int(fd),
                         ctypes.c_uint(opcode), ctypes.c_void_p(arg or None),
                         ctypes.c_uint(nr_args)))


def mmap_ring(fd: int, size: int, offset: int) -> int:
    """mmap one ring region shared with the kernel; returns its address or raises OSError."""
    addr = _mmap(None, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset)
    if addr is None or addr == MAP_FAILED:
        err = ctypes.get_errno()
        raise OSError(err, f"mmap of io_uring region at offset {offset:#x} failed")
    return addr


def munmap(addr: int, size: int) -> None:
    """Unmap ``size`` bytes at ``addr``."""
    _munmap(addr, size)


MAP_PRIVATE, MAP_ANONYMOUS = 0x02, 0x20


def mmap_anon(size: int) -> int:
    """Private zero-filled memory (thread-pool rings, emulated SQE arrays); raises OSError."""
    addr = _mmap(None, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if addr is None or addr == MAP_FAILED:
        err = ctypes.get_errno()
        raise OSError(err, f"anonymous mmap of {size} bytes failed")
    return addr


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_vm_readv = _libc.process_vm_readv
_vm_readv.restype = ctypes.c_ssize_t
_vm_readv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
                      ctypes.c_ulong, ctypes.c_ulong]
_vm_writev = _libc.process_vm_writev
_vm_writev.restype = ctypes.c_ssize_t
_vm_writev.argtypes = _vm_readv.argtypes
_getpid = _libc.getpid


def read_user(addr: int, size: int) -> bytes | None:
    """Copy ``size`` bytes at ``addr`` of this process, or None on a bad address.

    Like the kernel's copy_from_user: a wild pointer in an SQE gives -EFAULT in the
    thread-pool backend instead of a segfault (process_vm_readv checks the mapping).
    """
    if size == 0:
        return b""
    if not addr:
        return None
    buf = ctypes.create_string_buffer(size)
    loc, rem = _IoVec(ctypes.addressof(buf), size), _IoVec(addr, size)
    if _vm_readv(_getpid(), ctypes.byref(loc), 1, ctypes.byref(rem), 1, 0) != size:
        return None
    return buf.raw


def write_user(addr: int, data: bytes) -> bool:
    """copy_to_user: False on a bad address."""
    if not data:
        return True
    if not addr:
        return False
    buf = ctypes.create_string_buffer(bytes(data), len(data))
    loc, rem = _IoVec(ctypes.addressof(buf), len(data)), _IoVec(addr, len(data))
    return _vm_writev(_getpid(), ctypes.byref(loc), 1, ctypes.byref(rem), 1, 0) == len(data)
