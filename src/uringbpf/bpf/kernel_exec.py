"""Kernel executor: hand an opened :class:`~uringbpf.bpf.object.BpfObject` to the running kernel.

On a kernel that has a design natively (Linux >= 7.1 has ``struct io_uring_bpf_ops``,
7.0 has ``IORING_REGISTER_BPF_FILTER``) the same Python flow as the emulation --
``BpfObject.open``, set ``.rodata``/``.bss`` and struct_ops fields, ``load()``,
``attach_struct_ops()`` -- can run the programs in the kernel instead: the objects'
maps become kernel maps, programs are loaded with ``BPF_PROG_LOAD`` (the kernel's
verifier decides), and a struct_ops variable becomes a ``BPF_MAP_TYPE_STRUCT_OPS``
map plus a ``BPF_LINK_CREATE`` link, which is what libbpf does for a skeleton.

Everything goes through the ``bpf(2)`` syscall with ctypes; no libbpf is needed.
Programs keep the loader's relocated form: map references stay
``BPF_PSEUDO_MAP_IDX``/``BPF_PSEUDO_MAP_IDX_VALUE`` indexes resolved by the kernel
through ``fd_array``, and kfunc calls get the vmlinux BTF id of the kfunc's name.

Global data sections (``.bss``, ``.data``, ``.rodata``) become mmapable kernel array
maps; after load the object's ``GlobalData`` views read and write the kernel's memory,
so ``obj.bss.counter`` shows what the kernel program wrote.

Fact sources: include/uapi/linux/bpf.h (union bpf_attr layouts, enum values),
kernel/bpf/bpf_struct_ops.c (value layout ``struct bpf_struct_ops_<name>``: common
header then ``data``; function-pointer members carry program fds), and the 7.2 kernel's
BTF (``struct io_uring_bpf_ops { loop_step; __u32 ring_fd; void *priv; }``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import os
import struct
import weakref
from dataclasses import dataclass, field
from typing import Any

from . import btf as _btf
from . import isa
from . import maps as _maps
from ..errors import BpfLoadError, KernelLoadError, MapError

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
LOOP_OPS_TYPE = "io_uring_bpf_ops"

# enum bpf_cmd
BPF_MAP_CREATE = 0
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_PROG_LOAD = 5
BPF_BTF_LOAD = 18
BPF_MAP_FREEZE = 22
BPF_LINK_CREATE = 28
# enum bpf_map_type / bpf_prog_type / bpf_attach_type
BPF_MAP_TYPE_STRUCT_OPS = 26
BPF_ATTACH_STRUCT_OPS = 44
PROG_TYPES = {"socket_filter": 1, "kprobe": 2, "sched_cls": 3, "sched_act": 4,
              "tracepoint": 5, "xdp": 6, "struct_ops": 27, "syscall": 31}
BPF_F_SLEEPABLE = 1 << 4
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_MMAPABLE = 1 << 10
BPF_F_LINK = 1 << 13

_ATTR_SIZE = 160      # > sizeof(union bpf_attr) of 7.2's used fields; the tail stays zero
_LOG_SIZE = 1 << 20

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_NR_BPF = 321         # x86_64




def bpf(cmd: int, attr: ctypes.Array) -> int:
    """``bpf(cmd, attr, sizeof attr)``: the result, or -errno."""
    ret = _libc.syscall(_NR_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    return -ctypes.get_errno() if ret < 0 else ret


def _attr(fields: list[tuple[int, str, int]]) -> ctypes.Array:
    buf = (ctypes.c_char * _ATTR_SIZE)()
    for off, fmt, value in fields:
        struct.pack_into("<" + fmt, buf, off, value)
    return buf


# --- vmlinux BTF: only the few ids and layouts we need ---------------------------------
_KIND_STRUCT, _KIND_FUNC = 4, 12
_VLEN_SIZE = {1: 4, 3: 12, 4: 12, 5: 12, 6: 8, 13: 8, 14: 4, 15: 12, 17: 4, 19: 12}
_FIXED = {1, 3, 14, 17}        # kinds whose extra data is one record, not vlen records


@dataclass
class _Member:
    name: str
    index: int
    offset: int                # bytes
    type_id: int


@dataclass
class _Struct:
    type_id: int
    size: int
    members: dict[str, _Member] = field(default_factory=dict)


class VmlinuxBtf:
    """Names -> ids of the running kernel's BTF (structs and functions only)."""

    def __init__(self, data: bytes):
        magic, _ver, _flags, hdr_len, type_off, type_len, str_off, _str_len = \
            struct.unpack_from("<HBBIIIII", data, 0)
        if magic != 0xEB9F:
            raise BpfLoadError(f"{VMLINUX_BTF}: not BTF (magic {magic:#x})")
        self._data = data
        self._strs = hdr_len + str_off
        self.structs: dict[str, tuple[int, int]] = {}   # name -> (type id, record offset)
        self.funcs: dict[str, int] = {}
        self.sizes: dict[int, int] = {}
        pos, end, tid = hdr_len + type_off, hdr_len + type_off + type_len, 1
        unpack = struct.unpack_from
        while pos < end:
            name_off, info, size = unpack("<III", data, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            if kind == _KIND_STRUCT and name_off:
                self.structs.setdefault(self._str(name_off), (tid, pos))
            elif kind == _KIND_FUNC:
                self.funcs.setdefault(self._str(name_off), tid)
            extra = _VLEN_SIZE.get(kind, 0)
            pos += 12 + (extra if kind in _FIXED else extra * vlen)
            tid += 1

    def _str(self, off: int) -> str:
        start = self._strs + off
        return self._data[start:self._data.index(b"\0", start)].decode()

    def struct(self, name: str) -> _Struct | None:
        """The running kernel's struct ``name`` from its BTF (id, size, members), or None."""
        hit = self.structs.get(name)
        if hit is None:
            return None
        tid, pos = hit
        _n, info, size = struct.unpack_from("<III", self._data, pos)
        kflag, vlen = info >> 31, info & 0xFFFF
        st = _Struct(tid, size)
        for i in range(vlen):
            m_name, m_type, m_off = struct.unpack_from("<III", self._data, pos + 12 + 12 * i)
            bits = m_off & 0xFFFFFF if kflag else m_off
            name = self._str(m_name) if m_name else ""
            st.members[name] = _Member(name, i, bits // 8, m_type)
        return st


_vmlinux: VmlinuxBtf | None = None


def vmlinux() -> VmlinuxBtf:
    """The running kernel's BTF (parsed once per process)."""
    global _vmlinux
    if _vmlinux is None:
        with open(VMLINUX_BTF, "rb") as f:
            _vmlinux = VmlinuxBtf(f.read())
    return _vmlinux


def has_loop_ops() -> bool:
    """True when the running kernel has Linux 7.1's ``struct io_uring_bpf_ops``."""
    if not os.path.exists(VMLINUX_BTF):
        return False
    return LOOP_OPS_TYPE in vmlinux().structs


def resolve_executor(executor: str) -> str:
    """"kernel", "emulated", or "auto" (the kernel when its BTF has io_uring_bpf_ops)."""
    if executor == "auto":
        return "kernel" if has_loop_ops() else "emulated"
    if executor not in ("kernel", "emulated"):
        raise ValueError(f"executor must be 'kernel', 'emulated' or 'auto', not {executor!r}")
    return executor


# --- syscall wrappers ------------------------------------------------------------------
def _check(ret: int, what: str, log: str = "") -> int:
    if ret < 0:
        raise KernelLoadError(what, -ret, log)
    return ret


def _tiny_btf() -> bytes:
    """A one-type BTF blob (``int``): map creation with btf_vmlinux_value_type_id wants a
    btf_fd, and kernel/bpf/syscall.c only checks that it is a BTF object."""
    types = struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32)
    strs = b"\0int\0"
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strs))
    return hdr + types + strs


def btf_load(blob: bytes) -> int:
    """BPF_BTF_LOAD ``blob`` into the kernel; returns the BTF fd (OSError with the kernel's log).
    """
    buf = ctypes.create_string_buffer(blob, len(blob))
    log = ctypes.create_string_buffer(1 << 16)
    attr = _attr([(0, "Q", ctypes.addressof(buf)), (8, "Q", ctypes.addressof(log)),
                  (16, "I", len(blob)), (20, "I", len(log)), (24, "I", 1)])
    return _check(bpf(BPF_BTF_LOAD, attr), "BPF_BTF_LOAD", log.value.decode(errors="replace"))


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, flags: int = 0,
               name: str = "", btf_fd: int = 0, vmlinux_value_type_id: int = 0,
               map_extra: int = 0) -> int:
    """``BPF_MAP_CREATE``: the map fd (raises :class:`KernelLoadError`).  ``map_extra``
    is the u64 at offset 64 of ``union bpf_attr`` (an arena's user address)."""
    attr = _attr([(0, "I", map_type), (4, "I", key_size), (8, "I", value_size),
                  (12, "I", max_entries), (16, "I", flags), (48, "I", btf_fd),
                  (60, "I", vmlinux_value_type_id), (64, "Q", map_extra)])
    raw = _kernel_name(name)
    ctypes.memmove(ctypes.addressof(attr) + 28, raw, len(raw))
    return _check(bpf(BPF_MAP_CREATE, attr), f"BPF_MAP_CREATE {name or map_type}")


def _kernel_name(name: str) -> bytes:
    # object names: [A-Za-z0-9_.], at most 15 characters
    return "".join(c if c.isalnum() or c in "_." else "_" for c in name)[:15].encode()


def map_update(fd: int, key: bytes, value: bytes, flags: int = 0) -> int:
    """``BPF_MAP_UPDATE_ELEM``: 0 or -errno (not raised: callers compare errnos)."""
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value, len(value))
    attr = _attr([(0, "I", fd), (8, "Q", ctypes.addressof(k)), (16, "Q", ctypes.addressof(v)),
                  (24, "Q", flags)])
    return bpf(BPF_MAP_UPDATE_ELEM, attr)


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """BPF_MAP_LOOKUP_ELEM: the value at ``key`` of kernel map ``fd``, or None."""
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value_size)
    attr = _attr([(0, "I", fd), (8, "Q", ctypes.addressof(k)), (16, "Q", ctypes.addressof(v))])
    return v.raw if bpf(BPF_MAP_LOOKUP_ELEM, attr) == 0 else None


def map_freeze(fd: int) -> None:
    """BPF_MAP_FREEZE: make kernel map ``fd`` read-only for user space."""
    _check(bpf(BPF_MAP_FREEZE, _attr([(0, "I", fd)])), "BPF_MAP_FREEZE")


@dataclass
class ProgBtf:
    """The BTF part of a BPF_PROG_LOAD: the program BTF's fd, the raw ``bpf_func_info``
    records (8 bytes each) and ``bpf_line_info`` records (16 bytes each), instruction
    offsets in slots of the program as loaded."""
    btf_fd: int
    func_info: bytes = b""
    line_info: bytes = b""


def prog_load(prog_type: int, code: bytes, license: str, *, name: str = "",
              expected_attach_type: int = 0, attach_btf_id: int = 0, flags: int = 0,
              fd_array: list[int] | None = None, log_level: int = 1,
              btf: ProgBtf | None = None) -> tuple[int, str]:
    """``BPF_PROG_LOAD``: (fd or -errno, verifier log)."""
    insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(license.encode())
    # a log buffer goes with a log level only: kernel/bpf/log.c bpf_verifier_log_attr_valid
    # refuses a buffer without a level (EINVAL, and no log to say so)
    log = ctypes.create_string_buffer(_LOG_SIZE if log_level else 1)
    fds = (ctypes.c_int32 * max(len(fd_array or []), 1))(*(fd_array or []))
    fields = [(0, "I", prog_type), (4, "I", len(code) // 8), (8, "Q", ctypes.addressof(insns)),
              (16, "Q", ctypes.addressof(lic)), (44, "I", flags),
              (68, "I", expected_attach_type), (108, "I", attach_btf_id),
              (120, "Q", ctypes.addressof(fds) if fd_array else 0)]
    if log_level:
        fields += [(24, "I", log_level), (28, "I", _LOG_SIZE), (32, "Q", ctypes.addressof(log))]
    keep = []
    if btf is not None:
        fields.append((72, "I", btf.btf_fd))
        for blob, size, at in ((btf.func_info, _FUNC_INFO_SIZE, 76),
                               (btf.line_info, _LINE_INFO_SIZE, 92)):
            if blob:
                buf = ctypes.create_string_buffer(blob, len(blob))
                keep.append(buf)
                # rec_size, pointer, count: func_info at 76/80/88, line_info at 92/96/104
                fields += [(at, "I", size), (at + 4, "Q", ctypes.addressof(buf)),
                           (at + 12, "I", len(blob) // size)]
    attr = _attr(fields)
    raw = _kernel_name(name)
    ctypes.memmove(ctypes.addressof(attr) + 48, raw, len(raw))
    ret = bpf(BPF_PROG_LOAD, attr)
    if ret == -errno.ENOSPC and log_level:
        # the log did not fit: the verdict is what matters, load again without it
        ret, _ = prog_load(prog_type, code, license, name=name,
                           expected_attach_type=expected_attach_type,
                           attach_btf_id=attach_btf_id, flags=flags, fd_array=fd_array, log_level=0,
                           btf=btf)
    return ret, log.value.decode(errors="replace")


# --- the object's own BTF, for func_info (what libbpf sends) -------------------------
_FUNC_INFO_SIZE = 8     # struct bpf_func_info { insn_off; type_id; }
_LINE_INFO_SIZE = 16    # struct bpf_line_info { insn_off; file_name_off; line_off; line_col; }
_BTF_HDR = struct.Struct("<HBBIIIII")
_KIND_INT, _KIND_STRUCT, _KIND_FUNC, _KIND_VAR, _KIND_DATASEC, _KIND_DECL_TAG = 1, 4, 12, 14, 15, 17
# bytes after the 12-byte common header: fixed per kind, plus vlen * per-item size
_KIND_EXTRA = {1: (4, 0), 2: (0, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 7: (0, 0),
               8: (0, 0), 9: (0, 0), 10: (0, 0), 11: (0, 0), 12: (0, 0), 13: (0, 8), 14: (4, 0),
               15: (0, 12), 16: (0, 0), 17: (4, 0), 18: (0, 0), 19: (0, 12)}


def sanitize_btf(data: bytes) -> bytes:
    """The object's ``.BTF`` made loadable by BPF_BTF_LOAD, type ids unchanged.

    clang leaves what libbpf fixes before loading: DATASECs without sizes or variable
    offsets (and ``.ksyms`` listing extern functions), extern VARs and FUNCs, which the
    kernel's BTF checks refuse.  Program loading needs none of them (func_info names
    FUNCs, whose prototypes never reach a VAR), so, as libbpf does for kernels without
    DATASEC: every VAR becomes a one-byte INT, every DATASEC an empty anonymous STRUCT.
    An extern FUNC (a kfunc declaration, often with unnamed parameters, which
    btf_func_check refuses) becomes such an INT too, and a DECL_TAG on a member or
    parameter of a replaced type tags the whole type.
    """
    magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = _BTF_HDR.unpack_from(data)
    if magic != 0xEB9F or version != 1:
        raise BpfLoadError(f".BTF: bad magic {magic:#x} or version {version}")
    types = data[hdr_len + type_off:hdr_len + type_off + type_len]
    strings = data[hdr_len + str_off:hdr_len + str_off + str_len]
    kinds = [0]
    out = bytearray()
    pos = 0
    while pos < len(types):
        name_off, info, size_type = struct.unpack_from("<III", types, pos)
        kind, vlen = info >> 24 & 0x1F, info & 0xFFFF
        if kind not in _KIND_EXTRA:
            raise BpfLoadError(f".BTF: type {len(kinds)} has unknown kind {kind}")
        fixed, item = _KIND_EXTRA[kind]
        end = pos + 12 + fixed + vlen * item
        rec = bytearray(types[pos:end])
        if kind == _KIND_VAR or (kind == _KIND_FUNC and vlen > 1):    # vlen 2: BTF_FUNC_EXTERN
            rec = bytearray(struct.pack("<IIII", name_off, _KIND_INT << 24, 1, 8))
            kind = -1
        elif kind == _KIND_DATASEC:
            rec = bytearray(struct.pack("<III", 0, _KIND_STRUCT << 24, 0))
            kind = -1
        elif kind == _KIND_DECL_TAG and struct.unpack_from("<i", rec, 12)[0] >= 0 \
                and size_type < len(kinds) and kinds[size_type] == -1:
            struct.pack_into("<i", rec, 12, -1)   # its member/parameter is gone: tag the type
        kinds.append(kind)
        out += rec
        pos = end
    hdr = _BTF_HDR.pack(magic, version, flags, _BTF_HDR.size, 0, len(out), len(out), len(strings))
    return hdr + bytes(out) + strings


def prog_func_info(obj: Any, prog: Any) -> bytes:
    """``bpf_func_info`` records for one relocated program of ``obj``, as libbpf sends
    them: per function placed in the program its first slot and the id of its BTF FUNC;
    empty when a function has no FUNC of its name (the load then goes without)."""
    out = b""
    for start, name in sorted(prog.program.func_names.items()):
        t = obj.btf.find(name, _KIND_FUNC)
        if t is None:
            return b""
        out += struct.pack("<II", start, t.id)
    return out


def prog_line_info(obj: Any, prog: Any) -> bytes:
    """``bpf_line_info`` records for one relocated program of ``obj``, as libbpf sends
    them after placing subprograms: each placed function's records, moved to where the
    function sits in the program (kernel/bpf/verifier.c check_btf_line wants them strictly
    increasing, inside the program, on an instruction's first slot, with valid string
    offsets, and one exactly at each function's first slot).  Empty when a placed function
    has no record at its start, or its source function cannot be told apart (the load
    then goes without line_info, which only feeds the verifier log)."""
    ext = obj.elf.section(".BTF.ext")
    if ext is None or obj.btf is None:
        return b""
    by_sec = _btf.ext_line_info(ext.data, obj.btf.strings, f"{obj.path}: .BTF.ext")
    funcs: dict[str, list[Any]] = {}
    for sec_funcs in obj._funcs.values():
        for f in sec_funcs:
            funcs.setdefault(f.name, []).append(f)
    out = []
    for base, name in sorted(prog.program.func_names.items()):
        found = funcs.get(name, [])
        if len(found) != 1:
            return b""
        f = found[0]
        recs = sorted((r.insn, r.file_name_off, r.line_off, r.line_col)
                      for r in by_sec.get(obj.elf.sections[f.sec].name, [])
                      if f.start <= r.insn < f.end)
        if not recs or recs[0][0] != f.start:
            return b""
        out += [(base + r[0] - f.start,) + r[1:] for r in recs]
    offs = [r[0] for r in out]
    if any(a >= b for a, b in zip(offs, offs[1:])):
        return b""      # two records for one instruction: check_btf_line would refuse them
    return b"".join(struct.pack("<IIII", *r) for r in out)


def link_create(prog_or_map_fd: int, attach_type: int, target_fd: int = 0, flags: int = 0) -> int:
    """``BPF_LINK_CREATE``: link fd or -errno."""
    attr = _attr([(0, "I", prog_or_map_fd), (4, "I", target_fd), (8, "I", attach_type),
                  (12, "I", flags)])
    return bpf(BPF_LINK_CREATE, attr)


# --- kernel-backed global data ---------------------------------------------------------
class KernelArray:
    """A one-entry kernel array map holding a global-data section, mmapped for Python.

    Stands in for the object's emulated map in its ``GlobalData`` view after a kernel
    load: ``memory()`` is the kernel's value, ``frozen`` mirrors ``.rodata``.
    """

    def __init__(self, name: str, value_size: int, flags: int, initial: bytes):
        self.name = name
        self.type = _maps.MAP_TYPE_ARRAY
        self.key_size, self.value_size, self.max_entries = 4, value_size, 1
        self.map_flags = flags
        self.fd = map_create(_maps.MAP_TYPE_ARRAY, 4, value_size, 1, flags | BPF_F_MMAPABLE, name)
        self.frozen = False
        self._mm: mmap.mmap | None = None
        self._mm_size = (value_size + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
        ret = map_update(self.fd, bytes(4), bytes(initial).ljust(value_size, b"\0")[:value_size])
        _check(ret, f"BPF_MAP_UPDATE_ELEM {name}")
        if flags & BPF_F_RDONLY_PROG:
            map_freeze(self.fd)
            self.frozen = True
            self._mm = mmap.mmap(self.fd, self._mm_size, mmap.MAP_SHARED, mmap.PROT_READ)
        else:
            self._mm = mmap.mmap(self.fd, self._mm_size, mmap.MAP_SHARED,
                                 mmap.PROT_READ | mmap.PROT_WRITE)

    @property
    def closed(self) -> bool:
        """True once the map's fd and mapping were released."""
        return self._mm is None

    def memory(self) -> memoryview:
        """The map's value, mmapped (read-only once frozen)."""
        if self._mm is None:
            raise BpfLoadError(f"kernel map {self.name!r} is closed")
        mv = memoryview(self._mm)[:self.value_size]
        return mv.toreadonly() if self.frozen else mv

    @property
    def value_addr(self) -> int:
        """Refused: kernel map memory has no address our own programs could use."""
        raise BpfLoadError(f"{self.name}: a kernel map's value has no address a BPF program "
                           "of ours could use")

    def close(self) -> None:
        """Unmap the value and close the map fd (idempotent)."""
        if self._mm is not None:
            self._mm.close()
            self._mm = None
            os.close(self.fd)


_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_MAP_FAILED = ctypes.c_void_p(-1).value
_MAP_FIXED_NOREPLACE = 0x100000


class KernelArena:
    """A kernel ``BPF_MAP_TYPE_ARENA`` map, mmapped into this process as libbpf does.

    kernel/bpf/arena.c: the pages live at ``user_vm_start``, which ``map_extra`` fixes at
    creation, or else the first ``mmap()`` picks; the verifier refuses a program whose
    arena has neither (``arena's user address must be set via map_extra or mmap()``).
    The mapping is ``max_entries`` pages, exactly (``arena_map_mmap`` refuses another
    size).  A user-space access to a page no program allocated makes the kernel
    allocate it (``arena_vm_fault``), as in a libbpf process.  Stands in for the
    object's emulated arena after a kernel load: ``memory()`` and ``value_addr`` are
    the kernel's pages, at the address the program's arena pointers hold.
    """

    def __init__(self, name: str, max_entries: int, flags: int, map_extra: int):
        self.name = name
        self.type = _maps.MAP_TYPE_ARENA
        self.key_size = self.value_size = 0
        self.max_entries, self.map_flags, self.map_extra = max_entries, flags, map_extra
        self.frozen = False
        self.fd = map_create(self.type, 0, 0, max_entries, flags, name, map_extra=map_extra)
        self._len = max_entries * _maps.PAGE_SIZE
        self._addr = 0
        self._owner: _Mapping | None = None

    def mmap(self) -> None:
        """Map the arena: at ``map_extra`` when set (never over an existing mapping: our
        emulated arena may still hold that address), else where the kernel picks."""
        where, flags = None, mmap.MAP_SHARED
        if self.map_extra:
            where, flags = self.map_extra, flags | _MAP_FIXED_NOREPLACE
        addr = _libc.mmap(where, self._len, mmap.PROT_READ | mmap.PROT_WRITE, flags, self.fd, 0)
        if addr == _MAP_FAILED or addr is None:
            err = ctypes.get_errno()
            raise KernelLoadError(f"mmap of arena {self.name}", err,
                                  f"{os.strerror(err)} at {where or 0:#x}, {self._len} bytes"
                                  + (" (the address is taken: by a map this object shares "
                                     "through reuse_map(), or a memoryview of its emulated "
                                     "arena still held)" if err == errno.EEXIST else ""))
        if where is not None and addr != where:     # a kernel without FIXED_NOREPLACE
            _libc.munmap(addr, self._len)
            raise KernelLoadError(f"mmap of arena {self.name}", errno.EBUSY,
                                  f"{where:#x} is taken")
        self._addr = addr
        # views of the pages keep the mapping: it goes when the last of them does
        self._owner = _Mapping()
        weakref.finalize(self._owner, _libc.munmap, addr, self._len)

    @property
    def closed(self) -> bool:
        """True once the map's fd was closed."""
        return self.fd < 0

    def _mapped(self) -> int:
        if self._owner is None:
            raise BpfLoadError(f"kernel arena {self.name!r} is not mapped")
        return self._addr

    def memory(self) -> memoryview:
        """The arena's pages (all ``max_entries`` of them), writable."""
        arr = (ctypes.c_char * self._len).from_address(self._mapped())
        arr._owner = self._owner
        return memoryview(arr).cast("B")

    @property
    def value_addr(self) -> int:
        """The arena's user address (``user_vm_start``): what its pointers hold."""
        return self._mapped()

    @property
    def arena_window(self) -> int:
        """The 4 GiB block holding the arena (its pointers' upper 32 bits)."""
        return self._mapped() & ~0xFFFFFFFF

    def arena_alloc_pages(self, page_cnt: int = 1, addr: int = 0) -> int:
        """Refused: user space has no call that allocates a kernel arena's pages (touching
        a page in :meth:`memory` allocates it, as the kernel's ``arena_vm_fault`` does)."""
        raise MapError(errno.EOPNOTSUPP, f"arena {self.name!r} is the kernel's: its programs "
                       "allocate pages (bpf_arena_alloc_pages); user space touches them")

    arena_free_pages = arena_reserve_pages = arena_alloc_pages

    def close(self) -> None:
        """Close the map fd and drop the mapping (idempotent; views still held keep it)."""
        self._owner = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _Mapping:
    """Lifetime token of a KernelArena's mapping (weakref target)."""


# --- loading an object -----------------------------------------------------------------
@dataclass
class KernelProgram:
    """A program loaded into the kernel: its name, fd and the kernel verifier's log."""
    name: str
    fd: int
    log: str


class KernelLink:
    """An attached struct_ops map in the kernel; ``destroy()`` detaches it."""

    engine = "kernel"

    def __init__(self, map_fd: int, link_fd: int | None):
        self.map_fd, self.link_fd = map_fd, link_fd

    def destroy(self) -> None:
        """Close the link and struct_ops map fds: the kernel detaches (idempotent)."""
        if self.link_fd is not None:
            os.close(self.link_fd)
            self.link_fd = None
        if self.map_fd is not None:
            os.close(self.map_fd)
            self.map_fd = None


class KernelState:
    """What one object holds in the kernel: maps, programs, links."""

    def __init__(self) -> None:
        self.map_fds: list[int] = []
        self.owned_fds: list[int] = []
        self.arrays: list[KernelArray] = []
        self.arenas: list[KernelArena] = []
        self.programs: dict[str, KernelProgram] = {}
        self.links: list[KernelLink] = []
        self.btf_fd: int | None = None
        self.prog_btf_fd: int | None = None    # the object's own BTF (func_info)

    def close(self) -> None:
        """Destroy the links, close the programs and maps loaded into the kernel."""
        for link in self.links:
            link.destroy()
        self.links.clear()
        for p in self.programs.values():
            os.close(p.fd)
        self.programs.clear()
        for a in self.arrays:
            a.close()
        self.arrays.clear()
        for arena in self.arenas:
            arena.close()
        self.arenas.clear()
        for fd in self.owned_fds:
            os.close(fd)
        self.owned_fds.clear()
        for attr in ("btf_fd", "prog_btf_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)


def _struct_ops_binding(obj: Any, prog: Any) -> tuple[str, str] | None:
    for st in obj._struct_ops.values():
        for member, p in st.programs.items():
            if p is prog or p == prog.name:
                return st.type_name, member
    return None


def _kernel_code(program: isa.Program, weak_sites: list[tuple[int, str]]) -> bytes:
    """The program's slots with kfunc call immediates set to vmlinux BTF ids."""
    vm = vmlinux()
    weak = {o for o, tag in weak_sites if not tag.startswith("!")}
    out = []
    for o, insn in enumerate(program.insns):
        if insn.is_call and insn.src == isa.PSEUDO_KFUNC_CALL:
            name = program.kfuncs[insn.imm]
            tid = vm.funcs.get(name)
            if tid is None:
                if o not in weak:
                    raise BpfLoadError(f"program {program.name!r}: kfunc {name!r} is not in the "
                                       "running kernel's BTF")
                # libbpf poisons calls to missing __weak kfuncs; r0 = 0 keeps them harmless
                insn = isa.Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 0)
            else:
                insn = isa.Insn(insn.opcode, insn.dst, isa.PSEUDO_KFUNC_CALL, 0, tid)
        out.append(insn)
    return isa.encode(out)


def load_program(obj: Any, prog: Any, map_fds: list[int],
                 prog_btf_fd: int | None = None) -> tuple[int, str]:
    """Load one relocated program of ``obj`` into the kernel: (fd or -errno, log).

    With ``prog_btf_fd`` (the object's BTF in the kernel) the load carries func_info as
    libbpf's does, so global functions are verified on their own, from their BTF
    prototypes, as for a libbpf-loaded object (without it the kernel verifies them in
    their caller's context, which accepts more)."""
    program = prog.program
    ptype = PROG_TYPES.get(program.prog_type)
    if ptype is None:
        raise BpfLoadError(f"program {prog.name!r}: prog type {program.prog_type!r} has no "
                           "kernel loader here")
    attach_type = attach_btf_id = 0
    if program.prog_type == "struct_ops":
        bound = _struct_ops_binding(obj, prog)
        if bound is None:
            raise BpfLoadError(f"program {prog.name!r} is in no struct_ops variable")
        kst = vmlinux().struct(bound[0])
        if kst is None:
            raise BpfLoadError(f"the running kernel has no struct {bound[0]}")
        if bound[1] not in kst.members:
            raise BpfLoadError(f"kernel struct {bound[0]} has no member {bound[1]!r}")
        attach_type, attach_btf_id = kst.members[bound[1]].index, kst.type_id
    code = _kernel_code(program, prog._weak_sites)
    pbtf = None
    if prog_btf_fd is not None:
        pbtf = ProgBtf(prog_btf_fd, prog_func_info(obj, prog), prog_line_info(obj, prog))
    return prog_load(ptype, code, obj.license or "GPL", name=prog.name,
                     expected_attach_type=attach_type, attach_btf_id=attach_btf_id,
                     flags=BPF_F_SLEEPABLE if program.sleepable else 0, fd_array=map_fds,
                     btf=pbtf)


def load(obj: Any) -> KernelState:
    """Create ``obj``'s maps in the kernel, load its autoload programs, point its global
    data views at the kernel maps.  Raises :class:`KernelLoadError` on refusal."""
    st = KernelState()
    arenas: list[tuple[Any, KernelArena]] = []
    with contextlib.ExitStack() as undo:     # a failure closes what was created
        undo.callback(st.close)
        data_names = set(obj.datasecs)
        for m in obj.map_list:
            if m.name in data_names or m.name == ".kconfig":
                initial = bytes(m.memory()[:m.value_size])
                arr = KernelArray(m.name, m.value_size, m.map_flags & BPF_F_RDONLY_PROG, initial)
                st.arrays.append(arr)
                st.map_fds.append(arr.fd)
            elif m.type == _maps.MAP_TYPE_ARENA:
                arena = KernelArena(m.name, m.max_entries, m.map_flags, m.map_extra)
                st.arenas.append(arena)
                st.map_fds.append(arena.fd)
                arenas.append((m, arena))
                if not m.map_extra:
                    arena.mmap()    # the verifier wants user_vm_start: the mmap picks it
            else:
                fd = map_create(m.type, m.key_size, m.value_size, m.max_entries,
                                m.map_flags, m.name)
                st.owned_fds.append(fd)
                st.map_fds.append(fd)
        if obj.btf is not None:
            st.prog_btf_fd = btf_load(sanitize_btf(bytes(obj.elf.section(".BTF").data)))
        for prog in obj.programs.values():
            if not prog.autoload:
                continue
            fd, log = load_program(obj, prog, st.map_fds, st.prog_btf_fd)
            if fd < 0:
                raise KernelLoadError(f"BPF_PROG_LOAD {prog.name}", -fd, log)
            st.programs[prog.name] = KernelProgram(prog.name, fd, log)
        for emulated, arena in arenas:
            _take_arena(obj, emulated, arena)
        undo.pop_all()
    for arr in st.arrays:
        if arr.name in obj.datasecs:
            object.__setattr__(obj.datasecs[arr.name], "_map", arr)
    return st


def _take_arena(obj: Any, emulated: Any, arena: KernelArena) -> None:
    """Put kernel ``arena`` where the object had its emulated arena, as libbpf sets an
    arena up: mmapped (at ``map_extra``, which the emulated one held until now: it is
    released first), and the arena globals (``.addr_space.1``, in the arena's last pages)
    copied in, which makes the kernel allocate those pages.  What the object's arena
    globals hold now (the ELF's initial data, or what Python wrote before ``load()``)
    is what the kernel's programs start from, as with the emulation."""
    idx = obj.map_list.index(emulated)
    spans = []
    for sec_index, base in obj._arena_data_off.items():
        if obj._sec_map.get(sec_index) == idx:
            size = obj.elf.sections[sec_index].size
            spans.append((base, bytes(emulated.memory()[base:base + size])))
    if arena.map_extra:
        if id(emulated) in obj._owned:
            obj._owned.discard(id(emulated))
            emulated.close()        # its pages go with its last memoryview
        arena.mmap()
    obj.map_list[idx] = arena
    obj.maps[emulated.name] = arena
    for gd in obj.datasecs.values():
        if gd.map is emulated:
            object.__setattr__(gd, "_map", arena)
    if id(emulated) in obj._owned:
        obj._owned.discard(id(emulated))
        emulated.close()
    mem = arena.memory()
    for base, data in spans:
        mem[base:base + len(data)] = data


def attach_struct_ops(obj: Any, st_map: Any) -> KernelLink:
    """Register struct_ops variable ``st_map`` of a kernel-loaded ``obj``: a
    BPF_MAP_TYPE_STRUCT_OPS map whose value is the variable (function pointers as
    program fds), then a link for ``.struct_ops.link`` variables.  Raises OSError with
    the kernel's errno when the map update or the link is refused (e.g. the design's
    ``reg`` callback: -EOPNOTSUPP for a ring without SINGLE_ISSUER|DEFER_TASKRUN)."""
    state: KernelState = obj._kernel
    vm = vmlinux()
    kst = vm.struct(st_map.type_name)
    val = vm.struct(f"bpf_struct_ops_{st_map.type_name}")
    if kst is None or val is None:
        raise BpfLoadError(f"the running kernel has no struct_ops type {st_map.type_name}")
    base = val.members["data"].offset
    value = bytearray(val.size)
    for name in st_map.member_names:
        km = kst.members.get(name)
        if km is None:
            raise BpfLoadError(f"kernel struct {st_map.type_name} has no member {name!r}")
        off = base + km.offset
        if st_map.is_func_member(name):
            prog = st_map.programs.get(name)
            if prog is None:
                continue
            pname = prog if isinstance(prog, str) else prog.name
            struct.pack_into("<Q", value, off, state.programs[pname].fd)
        else:
            raw = bytes(st_map.data[st_map.field_offset(name):
                                    st_map.field_offset(name) + st_map.field_size(name)])
            value[off:off + len(raw)] = raw
    if state.btf_fd is None:
        state.btf_fd = btf_load(_tiny_btf())
    map_fd = map_create(BPF_MAP_TYPE_STRUCT_OPS, 4, val.size, 1,
                        BPF_F_LINK if st_map.is_link else 0, st_map.name,
                        btf_fd=state.btf_fd, vmlinux_value_type_id=val.type_id)
    ret = map_update(map_fd, bytes(4), bytes(value))
    if ret < 0:
        os.close(map_fd)
        raise OSError(-ret, f"struct_ops {st_map.name}: map update: {os.strerror(-ret)}")
    link_fd = None
    if st_map.is_link:
        link_fd = link_create(map_fd, BPF_ATTACH_STRUCT_OPS)
        if link_fd < 0:
            os.close(map_fd)
            raise OSError(-link_fd, f"struct_ops {st_map.name}: link: {os.strerror(-link_fd)}")
    link = KernelLink(map_fd, link_fd)
    state.links.append(link)
    return link
