"""The base helpers every program type may call, under the kernel's BPF_FUNC_* ids.

Each helper is registered once in the one table (:mod:`uringbpf.bpf.helpers`) with its
prototype, an ``impl(runtime, r1..r5)`` for the interpreter and, where one exists, a
native twin ``(module, symbol)`` in ``native/maps.c`` or ``native/base.c`` that JIT code
calls directly.  The interpreter implementations check the pointers they are given
against the run's :class:`AddressSpace` (so a bad pointer raises :class:`BpfMemoryError`
instead of crashing) and then call the *same* C function: one implementation per helper.

Ids verified against the kernel's include/uapi/linux/bpf.h (``___BPF_FUNC_MAPPER``).
"""

from __future__ import annotations

import ctypes
import errno
import re
import struct
import threading

from .. import native
from . import maps as _maps
from .helpers import HELPERS, KFUNCS, Arg, Ret, Runtime, helper, kfunc
from .memory import BpfRuntimeError

U64 = (1 << 64) - 1

BPF_FUNC_map_lookup_elem = 1
BPF_FUNC_map_update_elem = 2
BPF_FUNC_map_delete_elem = 3
BPF_FUNC_probe_read = 4
BPF_FUNC_ktime_get_ns = 5
BPF_FUNC_trace_printk = 6
BPF_FUNC_get_prandom_u32 = 7
BPF_FUNC_get_smp_processor_id = 8
BPF_FUNC_get_current_pid_tgid = 14
BPF_FUNC_get_current_comm = 16
BPF_FUNC_spin_lock = 93
BPF_FUNC_spin_unlock = 94
BPF_FUNC_probe_read_user = 112
BPF_FUNC_probe_read_kernel = 113
BPF_FUNC_probe_read_user_str = 114
BPF_FUNC_probe_read_kernel_str = 115
BPF_FUNC_ktime_get_boot_ns = 125
BPF_FUNC_ringbuf_output = 130
BPF_FUNC_ringbuf_reserve = 131
BPF_FUNC_ringbuf_submit = 132
BPF_FUNC_ringbuf_discard = 133
BPF_FUNC_ringbuf_query = 134
BPF_FUNC_copy_from_user = 148
BPF_FUNC_ktime_get_coarse_ns = 160
# 164-167 (for_each_map_elem, snprintf, sys_bpf, btf_find_by_name_kind in mainline) are
# taken by the 2021 io_uring BPF-requests RFC's helpers (designs/requests.py), as in that RFC.
BPF_FUNC_loop = 181
BPF_FUNC_strncmp = 182
BPF_FUNC_map_lookup_percpu_elem = 195

def _set_base_prototypes(so: ctypes.CDLL) -> None:
    native.set_register_prototypes(so, _BASE_SYMBOLS)
    so.ubpf_spin_trylock.argtypes = [ctypes.c_uint64, ctypes.c_uint64]
    so.ubpf_spin_trylock.restype = ctypes.c_int


def base_lib() -> ctypes.CDLL:
    """The native library of the base helpers (built on first use), with its prototypes set."""
    return native.load("base", configure=_set_base_prototypes)


_BASE_SYMBOLS = ("ubpf_helper_ktime_get_ns", "ubpf_helper_ktime_get_boot_ns",
                 "ubpf_helper_ktime_get_coarse_ns", "ubpf_helper_get_prandom_u32",
                 "ubpf_helper_get_smp_processor_id", "ubpf_helper_get_current_pid_tgid",
                 "ubpf_helper_probe_read", "ubpf_helper_probe_read_str",
                 "ubpf_helper_probe_read_user", "ubpf_helper_probe_read_user_str",
                 "ubpf_helper_spin_lock", "ubpf_helper_spin_unlock", "ubpf_helper_loop",
                 "ubpf_kfunc_iter_num_new", "ubpf_kfunc_iter_num_next", "ubpf_kfunc_iter_num_destroy")


def _base_call(symbol: str, *args: int) -> int:
    regs = [a & U64 for a in args] + [0] * (5 - len(args))
    return getattr(base_lib(), symbol)(*regs)


def _neg(err: int) -> int:
    return (-err) & U64


def _map(runtime: Runtime, addr: int, helper_name: str) -> "_maps.Map":
    m = _maps.map_at(addr)
    if m is None:
        raise BpfRuntimeError(f"{helper_name}: {addr:#x} is not a map")
    return m


def _set_native(helper_id: int, module: str, symbol: str) -> None:
    HELPERS[helper_id].native = (module, symbol)


# --- maps ----------------------------------------------------------------------------

@helper(BPF_FUNC_map_lookup_elem, "bpf_map_lookup_elem", (Arg.CONST_MAP_PTR, Arg.MAP_KEY),
        Ret.MAP_VALUE_OR_NULL)
def map_lookup_elem(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_map_lookup_elem``: the Python implementation the interpreter calls (r1..r5 as
    the program passed them)."""
    m = _map(rt, r1, "bpf_map_lookup_elem")
    rt.mem.check(r2, m.key_size, False)
    return _maps.call_native("map_lookup_elem", r1, r2)


@helper(BPF_FUNC_map_update_elem, "bpf_map_update_elem",
        (Arg.CONST_MAP_PTR, Arg.MAP_KEY, Arg.MAP_VALUE, Arg.ANYTHING))
def map_update_elem(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_map_update_elem``: the Python implementation the interpreter calls (r1..r5 as
    the program passed them)."""
    m = _map(rt, r1, "bpf_map_update_elem")
    rt.mem.check(r2, m.key_size, False)
    rt.mem.check(r3, m.value_size, False)
    if m.frozen:
        return _neg(errno.EPERM)
    return _maps.call_native("map_update_elem", r1, r2, r3, r4)


@helper(BPF_FUNC_map_delete_elem, "bpf_map_delete_elem", (Arg.CONST_MAP_PTR, Arg.MAP_KEY))
def map_delete_elem(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_map_delete_elem``: the Python implementation the interpreter calls (r1..r5 as
    the program passed them)."""
    m = _map(rt, r1, "bpf_map_delete_elem")
    rt.mem.check(r2, m.key_size, False)
    return _maps.call_native("map_delete_elem", r1, r2)


@helper(BPF_FUNC_map_lookup_percpu_elem, "bpf_map_lookup_percpu_elem",
        (Arg.CONST_MAP_PTR, Arg.MAP_KEY, Arg.SCALAR), Ret.MAP_VALUE_OR_NULL)
def map_lookup_percpu_elem(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_map_lookup_percpu_elem``: the Python implementation the interpreter calls
    (r1..r5 as the program passed them)."""
    m = _map(rt, r1, "bpf_map_lookup_percpu_elem")
    rt.mem.check(r2, m.key_size, False)
    return _maps.call_native("map_lookup_percpu_elem", r1, r2, r3)


# --- ring buffer ---------------------------------------------------------------------

def _ringbuf(rt: Runtime, addr: int, name: str) -> "_maps.Map":
    m = _map(rt, addr, name)
    if m.type != _maps.MAP_TYPE_RINGBUF:
        raise BpfRuntimeError(f"{name}: map {m.name!r} is not a ring buffer")
    return m


@helper(BPF_FUNC_ringbuf_output, "bpf_ringbuf_output",
        (Arg.CONST_MAP_PTR, Arg.MEM, Arg.CONST_SIZE_OR_ZERO, Arg.SCALAR))
def ringbuf_output(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_ringbuf_output``: the Python implementation the interpreter calls (r1..r5 as
    the program passed them)."""
    _ringbuf(rt, r1, "bpf_ringbuf_output")
    if r3:
        rt.mem.check(r2, r3, False)
    return _maps.call_native("ringbuf_output", r1, r2, r3, r4)


@helper(BPF_FUNC_ringbuf_reserve, "bpf_ringbuf_reserve",
        (Arg.CONST_MAP_PTR, Arg.CONST_ALLOC_SIZE, Arg.SCALAR), Ret.RINGBUF_MEM_OR_NULL,
        ret_size_arg=1, acquires=True)
def ringbuf_reserve(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_ringbuf_reserve``: the Python implementation the interpreter calls (r1..r5 as
    the program passed them)."""
    _ringbuf(rt, r1, "bpf_ringbuf_reserve")
    return _maps.call_native("ringbuf_reserve", r1, r2, r3)


_BUSY = 1 << 31


def _check_record(rt: Runtime, r1: int, name: str) -> None:
    """``r1`` must be a sample from bpf_ringbuf_reserve that is still reserved.

    (The C commit finds the ring from the record header, so a bad pointer must never reach it.)
    """
    hdr = (r1 - 8) & U64
    region = rt.mem.check(hdr, 8, True)
    ring = next((m for m in rt.maps if getattr(m, "type", None) == _maps.MAP_TYPE_RINGBUF
                 and not m.closed and m._s.rb_data <= hdr < m._s.rb_data + m._s.rb_mask + 1), None)
    if ring is None or not region.name.startswith("ringbuf "):
        raise BpfRuntimeError(f"{name}: {r1:#x} is not a ring buffer record")
    offset = hdr - ring._s.rb_data
    length, pg_off = struct.unpack("<II", ctypes.string_at(hdr, 8))
    if offset % 8 or pg_off * 8 != offset or not length & _BUSY:
        raise BpfRuntimeError(f"{name}: {r1:#x} is not a reserved ring buffer record "
                              "(never reserved, or already submitted/discarded)")


@helper(BPF_FUNC_ringbuf_submit, "bpf_ringbuf_submit", (Arg.RINGBUF_MEM, Arg.SCALAR), Ret.VOID,
        releases=0)
def ringbuf_submit(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_ringbuf_submit``: the Python implementation the interpreter calls (r1..r5 as
    the program passed them)."""
    _check_record(rt, r1, "bpf_ringbuf_submit")
    return _maps.call_native("ringbuf_submit", r1, r2)


@helper(BPF_FUNC_ringbuf_discard, "bpf_ringbuf_discard", (Arg.RINGBUF_MEM, Arg.SCALAR), Ret.VOID,
        releases=0)
def ringbuf_discard(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_ringbuf_discard``: the Python implementation the interpreter calls (r1..r5 as
    the program passed them)."""
    _check_record(rt, r1, "bpf_ringbuf_discard")
    return _maps.call_native("ringbuf_discard", r1, r2)


@helper(BPF_FUNC_ringbuf_query, "bpf_ringbuf_query", (Arg.CONST_MAP_PTR, Arg.ANYTHING))
def ringbuf_query(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_ringbuf_query``: the Python implementation the interpreter calls (r1..r5 as
    the program passed them)."""
    _ringbuf(rt, r1, "bpf_ringbuf_query")
    return _maps.call_native("ringbuf_query", r1, r2)


# --- time, random, identity ----------------------------------------------------------

@helper(BPF_FUNC_ktime_get_ns, "bpf_ktime_get_ns", ())
def ktime_get_ns(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_ktime_get_ns``: the Python implementation the interpreter calls (r1..r5 as the
    program passed them)."""
    return _base_call("ubpf_helper_ktime_get_ns")


@helper(BPF_FUNC_ktime_get_boot_ns, "bpf_ktime_get_boot_ns", ())
def ktime_get_boot_ns(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_ktime_get_boot_ns``: the Python implementation the interpreter calls (r1..r5
    as the program passed them)."""
    return _base_call("ubpf_helper_ktime_get_boot_ns")


@helper(BPF_FUNC_ktime_get_coarse_ns, "bpf_ktime_get_coarse_ns", ())
def ktime_get_coarse_ns(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_ktime_get_coarse_ns``: the Python implementation the interpreter calls (r1..r5
    as the program passed them)."""
    return _base_call("ubpf_helper_ktime_get_coarse_ns")


@helper(BPF_FUNC_get_prandom_u32, "bpf_get_prandom_u32", ())
def get_prandom_u32(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_get_prandom_u32``: the Python implementation the interpreter calls (r1..r5 as
    the program passed them)."""
    return _base_call("ubpf_helper_get_prandom_u32")


@helper(BPF_FUNC_get_smp_processor_id, "bpf_get_smp_processor_id", ())
def get_smp_processor_id(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_get_smp_processor_id``: always CPU 0 (programs run on the calling thread)."""
    return 0


@helper(BPF_FUNC_get_current_pid_tgid, "bpf_get_current_pid_tgid", ())
def get_current_pid_tgid(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_get_current_pid_tgid``: the Python implementation the interpreter calls
    (r1..r5 as the program passed them)."""
    return _base_call("ubpf_helper_get_current_pid_tgid")


# --- memory reads --------------------------------------------------------------------

def _probe_read(rt: Runtime, dst: int, size: int, src: int,
                symbol: str = "ubpf_helper_probe_read") -> int:
    size &= 0xFFFFFFFF
    if size:
        rt.mem.check(dst, size, True)
    return _base_call(symbol, dst, size, src)


def _probe_read_str(rt: Runtime, dst: int, size: int, src: int,
                    symbol: str = "ubpf_helper_probe_read_str") -> int:
    size &= 0xFFFFFFFF
    if size:
        rt.mem.check(dst, size, True)
    return _base_call(symbol, dst, size, src)


_READ_ARGS = (Arg.UNINIT_MEM, Arg.CONST_SIZE_OR_ZERO, Arg.ANYTHING)


@helper(BPF_FUNC_probe_read, "bpf_probe_read", _READ_ARGS)
def probe_read(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_probe_read``: the Python implementation the interpreter calls (r1..r5 as the
    program passed them)."""
    return _probe_read(rt, r1, r2, r3)


@helper(BPF_FUNC_probe_read_user, "bpf_probe_read_user", _READ_ARGS)
def probe_read_user(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_probe_read_user``: the Python implementation the interpreter calls (r1..r5 as
    the program passed them)."""
    return _probe_read(rt, r1, r2, r3, "ubpf_helper_probe_read_user")


@helper(BPF_FUNC_probe_read_kernel, "bpf_probe_read_kernel", _READ_ARGS)
def probe_read_kernel(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_probe_read_kernel``: the Python implementation the interpreter calls (r1..r5
    as the program passed them)."""
    return _probe_read(rt, r1, r2, r3)


@helper(BPF_FUNC_probe_read_user_str, "bpf_probe_read_user_str", _READ_ARGS)
def probe_read_user_str(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_probe_read_user_str``: the Python implementation the interpreter calls (r1..r5
    as the program passed them)."""
    return _probe_read_str(rt, r1, r2, r3, "ubpf_helper_probe_read_user_str")


@helper(BPF_FUNC_probe_read_kernel_str, "bpf_probe_read_kernel_str", _READ_ARGS)
def probe_read_kernel_str(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_probe_read_kernel_str``: the Python implementation the interpreter calls
    (r1..r5 as the program passed them)."""
    return _probe_read_str(rt, r1, r2, r3)


@helper(BPF_FUNC_copy_from_user, "bpf_copy_from_user", _READ_ARGS, sleepable_only=True)
def copy_from_user(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_copy_from_user``: the Python implementation (runtime-owned memory gives
    -EFAULT)."""
    return _probe_read(rt, r1, r2, r3, "ubpf_helper_probe_read_user")


# --- spin locks ----------------------------------------------------------------------

SPIN_LOCK_MAX_SPINS = 1 << 26


@helper(BPF_FUNC_spin_lock, "bpf_spin_lock", (Arg.SPIN_LOCK,), Ret.VOID)
def spin_lock(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_spin_lock``: the Python implementation the interpreter calls (r1..r5 as the
    program passed them)."""
    rt.mem.check(r1, 4, True)
    if r1 % 4:
        raise BpfRuntimeError(f"bpf_spin_lock: lock at {r1:#x} is not 4-byte aligned")
    # the same atomic exchange as the native twin, but bounded: an unverified program that
    # locks twice gets an error instead of hanging the interpreter
    if not base_lib().ubpf_spin_trylock(r1, SPIN_LOCK_MAX_SPINS):
        raise BpfRuntimeError(f"bpf_spin_lock: lock at {r1:#x} stays held (locked twice?)")
    return 0


@helper(BPF_FUNC_spin_unlock, "bpf_spin_unlock", (Arg.SPIN_LOCK,), Ret.VOID)
def spin_unlock(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_spin_unlock``: the Python implementation the interpreter calls (r1..r5 as the
    program passed them)."""
    rt.mem.check(r1, 4, True)
    return _base_call("ubpf_helper_spin_unlock", r1)


# --- bpf_loop ------------------------------------------------------------------------

_CB = ctypes.CFUNCTYPE(ctypes.c_uint64, *[ctypes.c_uint64] * 5)


@helper(BPF_FUNC_loop, "bpf_loop", (Arg.SCALAR, Arg.FUNC, Arg.ANYTHING, Arg.SCALAR))
def bpf_loop(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Call ``callback(i, ctx)`` for i in [0, nr) until it returns non-zero.

    The callback value is what the engine's ``lddw PSEUDO_FUNC`` produced.  An engine that
    can run a subprogram from such a value sets ``runtime.call_function(fn, r1..r5)``; the
    interpreter does this.  Otherwise ``fn`` must be a native function address (JIT code).
    """
    if r4:
        return _neg(errno.EINVAL)
    nr = r1 & U64
    if nr > 1 << 23:            # the kernel's inlined bpf_loop: 64-bit compare, w0 = -E2BIG
        return _neg(errno.E2BIG) & 0xFFFFFFFF     # (see ubpf_helper_loop in native/base.c)
    call = getattr(rt, "call_function", None)
    if call is None:
        if r2 == 0:
            raise BpfRuntimeError("bpf_loop: callback is NULL")
        fn = _CB(r2)
        call = lambda f, *a: fn(*a)  # noqa: E731
    for i in range(nr):
        if call(r2, i, r3, 0, 0, 0) & U64:
            return i + 1
    return nr


# --- trace_printk --------------------------------------------------------------------

_FMT = re.compile(rb"%([-+ 0#]*)(\d*)(ll|l|h|hh|z)?([diuxXpsc%])|%p[KkxBb]?s?")


def format_printk(rt: Runtime, fmt: bytes, args: list[int]) -> str:
    """Format like the kernel's bpf_trace_printk (%d %i %u %x %X %p %s %c with l/ll)."""
    out = bytearray()
    pos = 0
    ai = 0
    for m in _FMT.finditer(fmt):
        out += fmt[pos:m.start()]
        pos = m.end()
        conv = m.group(4)
        if conv == b"%":
            out += b"%"
            continue
        arg = args[ai] if ai < len(args) else 0
        ai += 1
        length = m.group(3) or b""
        flags = (m.group(1) or b"").decode()
        width = (m.group(2) or b"").decode()
        if conv in (b"d", b"i"):
            bits = 64 if length in (b"l", b"ll", b"z") else 32
            v = arg & ((1 << bits) - 1)
            if v >> (bits - 1):
                v -= 1 << bits
            text = format(v, f"{flags}{width}d")
        elif conv == b"u":
            bits = 64 if length in (b"l", b"ll", b"z") else 32
            text = format(arg & ((1 << bits) - 1), f"{flags}{width}d")
        elif conv in (b"x", b"X"):
            bits = 64 if length in (b"l", b"ll", b"z") else 32
            text = format(arg & ((1 << bits) - 1), f"{flags}{width}{conv.decode()}")
        elif conv == b"c":
            text = chr(arg & 0xFF)
        elif conv == b"p":
            text = f"0x{arg:x}" if arg else "(null)"
        else:  # %s
            buf = ctypes.create_string_buffer(256)
            n = _base_call("ubpf_helper_probe_read_str", ctypes.addressof(buf), 256, arg) if arg else 0
            if not arg:
                text = "(null)"
            else:
                text = "(efault)" if n >= 1 << 63 else buf.value.decode("utf-8", "replace")
            if width:
                text = format(text, f"{'<' if '-' in flags else '>'}{width}")
        out += text.encode()
    out += fmt[pos:]
    return out.decode("utf-8", "replace")


@helper(BPF_FUNC_trace_printk, "bpf_trace_printk", (Arg.MEM, Arg.CONST_SIZE))
def trace_printk(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """Helper ``bpf_trace_printk``: the Python implementation the interpreter calls (r1..r5 as the
    program passed them)."""
    size = r2 & 0xFFFFFFFF
    fmt = rt.mem.read(r1, size) if size else b""
    fmt = fmt.split(b"\0", 1)[0]
    if sum(1 for m in _FMT.finditer(fmt) if m.group(4) != b"%") > 3:
        return _neg(errno.EINVAL)  # the kernel's trace_printk takes at most three arguments
    line = format_printk(rt, fmt, [r3, r4, r5])
    line = line[:-1] if line.endswith("\n") else line
    rt.printk.append(line)
    return len(line) + 1


@helper(BPF_FUNC_strncmp, "bpf_strncmp", (Arg.MEM, Arg.CONST_SIZE, Arg.ANYTHING))
def strncmp(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """bpf_strncmp(s1, s1_sz, s2): like strncmp(s1, s2, s1_sz); s2 is a constant string."""
    n = r2 & 0xFFFFFFFF
    s1 = rt.mem.read(r1, n) if n else b""
    region = rt.mem.check(r3, 1, False)
    s2 = ctypes.string_at(r3, min(region.end - r3, n + 1))
    for i in range(n):
        a = s1[i]
        b = s2[i] if i < len(s2) else 0
        if a != b:
            return _neg(1) if a < b else 1
        if a == 0:
            break
    return 0


@helper(BPF_FUNC_get_current_comm, "bpf_get_current_comm", (Arg.UNINIT_MEM, Arg.CONST_SIZE))
def get_current_comm(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """The calling thread's name (as /proc/self/comm), NUL-terminated and zero-padded."""
    size = r2 & 0xFFFFFFFF
    if not size:
        return _neg(errno.EINVAL)
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "rb") as f:
            comm = f.read().rstrip(b"\n")
    except OSError:
        comm = b""
    rt.mem.write(r1, (comm[:size - 1] + b"\0").ljust(size, b"\0"))
    return 0


# --- open-coded numeric iterators (bpf_for / bpf_repeat) ----------------------------

@kfunc("bpf_iter_num_new", (Arg.STACK_PTR, Arg.SCALAR, Arg.SCALAR),
       kfunc_flags=frozenset({"ITER_NEW"}))
def iter_num_new(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """kfunc ``bpf_iter_num_new``: the Python implementation the interpreter calls."""
    rt.mem.check(r1, 8, True)
    return _base_call("ubpf_kfunc_iter_num_new", r1, r2, r3)


@kfunc("bpf_iter_num_next", (Arg.STACK_PTR,), Ret.MEM_OR_NULL, ret_size=4,
       kfunc_flags=frozenset({"ITER_NEXT", "RET_NULL"}))
def iter_num_next(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """kfunc ``bpf_iter_num_next``: the Python implementation the interpreter calls."""
    rt.mem.check(r1, 8, True)
    return _base_call("ubpf_kfunc_iter_num_next", r1)


@kfunc("bpf_iter_num_destroy", (Arg.STACK_PTR,), Ret.VOID, kfunc_flags=frozenset({"ITER_DESTROY"}))
def iter_num_destroy(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """kfunc ``bpf_iter_num_destroy``: the Python implementation the interpreter calls."""
    rt.mem.check(r1, 8, True)
    return _base_call("ubpf_kfunc_iter_num_destroy", r1)


# --- arena kfuncs --------------------------------------------------------------------

# The kernel types the result as an arena pointer; here it is memory of at least one page
# (``ret_size``), or NULL, so a verifier without arena support still accepts the usual
# one-page use.  "ARENA_RET" tells an arena-aware verifier the whole arena is reachable.
@kfunc("bpf_arena_alloc_pages", (Arg.CONST_MAP_PTR, Arg.ANYTHING, Arg.SCALAR, Arg.SCALAR, Arg.SCALAR),
       Ret.MEM_OR_NULL, ret_size=4096, kfunc_flags=frozenset({"ARENA_RET", "RET_NULL"}))
def arena_alloc_pages(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """kfunc ``bpf_arena_alloc_pages``: the Python implementation the interpreter calls."""
    m = _map(rt, r1, "bpf_arena_alloc_pages")
    if m.type != _maps.MAP_TYPE_ARENA:
        return 0
    return _maps.call_native("bpf_arena_alloc_pages", r1, r2, r3, r4, r5)


@kfunc("bpf_arena_free_pages", (Arg.CONST_MAP_PTR, Arg.ANYTHING, Arg.SCALAR), Ret.VOID,
       kfunc_flags=frozenset({"ARENA_ARG"}))
def arena_free_pages(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """kfunc ``bpf_arena_free_pages``: the Python implementation the interpreter calls."""
    m = _map(rt, r1, "bpf_arena_free_pages")
    if m.type != _maps.MAP_TYPE_ARENA:
        return 0
    return _maps.call_native("bpf_arena_free_pages", r1, r2, r3)


@kfunc("bpf_arena_reserve_pages", (Arg.CONST_MAP_PTR, Arg.ANYTHING, Arg.SCALAR), Ret.INTEGER)
def arena_reserve_pages(rt: Runtime, r1, r2, r3, r4, r5) -> int:
    """kfunc ``bpf_arena_reserve_pages`` (6.17+): the Python implementation the interpreter
    calls (the kernel's -EINVAL for a map that is no arena)."""
    m = _map(rt, r1, "bpf_arena_reserve_pages")
    if m.type != _maps.MAP_TYPE_ARENA:
        return -errno.EINVAL & 0xFFFFFFFFFFFFFFFF
    return _maps.call_native("bpf_arena_reserve_pages", r1, r2, r3)


for _id, _sym in ((1, "ubpf_helper_map_lookup_elem"), (2, "ubpf_helper_map_update_elem"),
                  (3, "ubpf_helper_map_delete_elem"), (195, "ubpf_helper_map_lookup_percpu_elem"),
                  (130, "ubpf_helper_ringbuf_output"), (131, "ubpf_helper_ringbuf_reserve"),
                  (132, "ubpf_helper_ringbuf_submit"), (133, "ubpf_helper_ringbuf_discard"),
                  (134, "ubpf_helper_ringbuf_query")):
    _set_native(_id, "maps", _sym)
for _id, _sym in ((5, "ubpf_helper_ktime_get_ns"), (125, "ubpf_helper_ktime_get_boot_ns"),
                  (160, "ubpf_helper_ktime_get_coarse_ns"), (7, "ubpf_helper_get_prandom_u32"),
                  (8, "ubpf_helper_get_smp_processor_id"), (14, "ubpf_helper_get_current_pid_tgid"),
                  (4, "ubpf_helper_probe_read"), (112, "ubpf_helper_probe_read_user"),
                  (113, "ubpf_helper_probe_read"), (148, "ubpf_helper_probe_read_user"),
                  (114, "ubpf_helper_probe_read_user_str"), (115, "ubpf_helper_probe_read_str"),
                  (93, "ubpf_helper_spin_lock"), (94, "ubpf_helper_spin_unlock"),
                  (181, "ubpf_helper_loop")):
    _set_native(_id, "base", _sym)
KFUNCS["bpf_arena_alloc_pages"].native = ("maps", "ubpf_kfunc_arena_alloc_pages")
KFUNCS["bpf_iter_num_new"].native = ("base", "ubpf_kfunc_iter_num_new")
KFUNCS["bpf_iter_num_next"].native = ("base", "ubpf_kfunc_iter_num_next")
KFUNCS["bpf_iter_num_destroy"].native = ("base", "ubpf_kfunc_iter_num_destroy")
KFUNCS["bpf_arena_free_pages"].native = ("maps", "ubpf_kfunc_arena_free_pages")
KFUNCS["bpf_arena_reserve_pages"].native = ("maps", "ubpf_kfunc_arena_reserve_pages")
del _id, _sym
