"""Load programs into the real kernel verifier with bpf(2) (test-only, needs root).

Just enough of the syscall for the cross-check: create maps, load a socket filter with a
log buffer, and turn our relocated lddw forms back into map-fd forms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

from uringbpf.bpf import isa

ENOSPC = 28

SYS_bpf = 321  # x86_64
BPF_MAP_CREATE = 0
BPF_PROG_LOAD = 5
BPF_PROG_TYPE_SOCKET_FILTER = 1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr: bytearray) -> int:
    buf = (ctypes.c_char * len(attr)).from_buffer(attr)
    ret = _libc.syscall(ctypes.c_long(SYS_bpf), ctypes.c_long(cmd), buf, ctypes.c_uint(len(attr)))
    if ret < 0:
        return -ctypes.get_errno()
    return ret


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, flags: int = 0) -> int:
    attr = bytearray(128)
    for i, v in enumerate((map_type, key_size, value_size, max_entries, flags)):
        attr[4 * i:4 * i + 4] = v.to_bytes(4, "little")
    return _bpf(BPF_MAP_CREATE, attr)


def prog_load(insns: list[isa.Insn], prog_type: int = BPF_PROG_TYPE_SOCKET_FILTER,
              log_size: int = 1 << 20, log_level: int = 1) -> tuple[int, str]:
    """Return (fd or -errno, verifier log).  ``log_level`` 2: every state (at level 1 an
    accepted program's log is its statistics line only)."""
    code = isa.encode(insns)
    code_buf = ctypes.create_string_buffer(code, len(code))
    license = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(log_size)
    attr = bytearray(144)
    attr[0:4] = prog_type.to_bytes(4, "little")
    attr[4:8] = (len(code) // 8).to_bytes(4, "little")
    attr[8:16] = ctypes.addressof(code_buf).to_bytes(8, "little")
    attr[16:24] = ctypes.addressof(license).to_bytes(8, "little")
    attr[24:28] = log_level.to_bytes(4, "little")
    attr[28:32] = log_size.to_bytes(4, "little")
    attr[32:40] = ctypes.addressof(log).to_bytes(8, "little")
    fd = _bpf(BPF_PROG_LOAD, attr)
    text = log.value.decode(errors="replace")
    if fd == -ENOSPC:
        # the log did not fit (long explorations): the verdict without a log, and the
        # kernel's rotating log's tail for the reason
        attr[24:40] = bytes(16)
        fd = _bpf(BPF_PROG_LOAD, attr)
    if fd >= 0:
        os.close(fd)
    return fd, text


def prog_load_with_maps(insns: list[isa.Insn], maps, log_level: int = 1) -> tuple[int, str]:
    """:func:`prog_load` of a program whose ``map[i]`` are the objects ``maps`` (their
    type, key_size, value_size and max_entries): each made in the kernel, the program's
    map references bound to them (:func:`kernel_form`), all closed after the load."""
    fds = []
    try:
        for m in maps:
            fd = map_create(m.type, m.key_size, m.value_size, m.max_entries)
            assert fd >= 0, f"BPF_MAP_CREATE failed: errno {-fd}"
            fds.append(fd)
        return prog_load(kernel_form(insns, fds), log_level=log_level)
    finally:
        for fd in fds:
            os.close(fd)


def available() -> str | None:
    """None if bpf(2) can create maps and load programs here, else why not."""
    fd = map_create(2, 4, 8, 1)
    if fd < 0:
        return f"BPF_MAP_CREATE failed with errno {-fd}"
    os.close(fd)
    ok, log = prog_load([isa.Insn(isa.ALU64 | isa.MOV, 0, 0, 0, 0), isa.Insn(isa.OP_EXIT)])
    if ok < 0:
        return f"BPF_PROG_LOAD of a trivial program failed with errno {-ok}: {log[:200]}"
    return None


def load_case(case) -> tuple[int, str]:
    """Load one corpus case (corpus_lib.Case) as a socket filter with fresh kernel maps of
    its map specs: (fd or -errno, verifier log).  The maps and the program are closed."""
    fds = [map_create(m.type, m.key_size, m.value_size, m.max_entries, m.map_flags)
           for m in case.maps]
    try:
        return prog_load(kernel_form(case.program().insns, fds))
    finally:
        for f in fds:
            if f >= 0:
                os.close(f)


def kernel_form(insns: list[isa.Insn], map_fds: list[int]) -> list[isa.Insn]:
    """Our PSEUDO_MAP_IDX[_VALUE] lddw forms back to the kernel's map-fd forms."""
    out: list[isa.Insn] = []
    skip = False
    for insn in insns:
        if skip:
            skip = False
            continue
        if insn.is_lddw and insn.src in (isa.PSEUDO_MAP_IDX, isa.PSEUDO_MAP_IDX_VALUE):
            idx = insn.imm64 & isa.U32
            fd = map_fds[idx]
            if insn.src == isa.PSEUDO_MAP_IDX:
                out.extend(isa.lddw_pair(insn.dst, fd, isa.PSEUDO_MAP_FD))
            else:
                off = insn.imm64 >> 32
                out.extend(isa.lddw_pair(insn.dst, fd | (off << 32), isa.PSEUDO_MAP_VALUE))
            skip = True
            continue
        out.append(isa.Insn(insn.opcode, insn.dst, insn.src, insn.off, insn.imm, insn.imm64))
    return out
