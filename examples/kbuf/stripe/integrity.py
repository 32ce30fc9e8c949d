"""Integrity log of the stripe target: crc32c of every write, computed without Python bytes.

The checksum runs on the request's pages *by address*: in zero-copy mode the target gets
the address from ``kbuf_table(ring).lookup(tag)`` (the registered kernel buffer), in copy
mode it is the server's own buffer. Two engines:

* ``bpf``: ``crc32c.bpf.c`` compiled by ``uringbpf cc`` and run through ``BpfObject`` (the
  JIT; the interpreter is far too slow for 1 MiB of bit-by-bit crc). Chosen automatically
  when the loader is importable, the program loads, runs JIT-compiled, and passes a
  self-check against the native implementation.
* ``native``: the fallback, ``kbuf_crc32c`` in ``native/kbuf.c`` called through ctypes.

``engine_reason`` says why the fallback was chosen. Records are ``(offset, length, crc)``;
:meth:`flush` appends them to the log file and fsyncs it (the target calls it on FLUSH).
"""

from __future__ import annotations

import ctypes
import os
import tempfile
import threading
from pathlib import Path

from uringbpf.designs import kbuf

HERE = Path(__file__).resolve().parent


class _CrcCtx(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64), ("len", ctypes.c_uint32), ("crc", ctypes.c_uint32)]


class IntegrityLog:
    def __init__(self, path: str | os.PathLike | None = None, engine: str = "auto"):
        if engine not in ("auto", "bpf", "native"):
            raise ValueError("engine must be auto, bpf or native")
        self.path = Path(path) if path else None
        self.records: list[tuple[int, int, int]] = []
        self._unflushed = 0
        self._lock = threading.Lock()
        self.engine, self.engine_reason = "native", "engine=native requested"
        self._prog = None
        if engine != "native":
            try:
                self._prog = self._load_bpf()
                self.engine, self.engine_reason = "bpf", "BPF program (JIT)"
            except Exception as exc:       # loader missing or program refused: say why
                if engine == "bpf":
                    raise
                self.engine_reason = f"BPF engine unavailable: {type(exc).__name__}: {exc}"

    # -- engines
    def _load_bpf(self):
        from uringbpf.bpf.cc import compile_c          # noqa: F401  (the loader's driver)
        from uringbpf.bpf.object import BpfObject
        out = Path(tempfile.gettempdir()) / f"uringbpf-stripe-crc32c-{os.getuid()}.bpf.o"
        compile_c(HERE / "crc32c.bpf.c", out)
        obj = BpfObject.open(str(out))
        obj.load()
        progs = getattr(obj, "programs", None)
        prog = progs["crc32c_write"] if isinstance(progs, dict) else obj.program("crc32c_write")
        if getattr(prog, "engine", "jit") != "jit":
            raise RuntimeError(f"program runs on the {prog.engine}; need the JIT for speed")
        self._obj = obj
        sample = os.urandom(4096 + 17)
        buf = ctypes.create_string_buffer(sample, len(sample))
        got = self._run_bpf(prog, ctypes.addressof(buf), len(sample))
        want = kbuf.crc32c(ctypes.addressof(buf), len(sample))
        if got != want:
            raise RuntimeError(f"BPF crc32c self-check failed ({got:#x} != {want:#x})")
        return prog

    @staticmethod
    def _run_bpf(prog, addr: int, length: int) -> int:
        ctx = _CrcCtx(addr, length, 0)
        ret = prog(ctypes.addressof(ctx))
        if ret != 0:
            raise RuntimeError(f"crc32c program returned {ret}")
        return ctx.crc

    def crc(self, addr: int, length: int) -> int:
        if self._prog is not None:
            return self._run_bpf(self._prog, addr, length)
        return kbuf.crc32c(addr, length)

    # -- the log
    def record_write(self, offset: int, addr: int, length: int) -> int:
        crc = self.crc(addr, length)
        with self._lock:
            self.records.append((offset, length, crc))
        return crc

    def flush(self) -> None:
        if self.path is None:
            return
        with self._lock:
            new = self.records[self._unflushed:]
            self._unflushed = len(self.records)
        if not new:
            return
        with open(self.path, "a") as f:
            f.writelines(f"{o} {n} {c:08x}\n" for o, n, c in new)
            f.flush()
            os.fsync(f.fileno())


def read_log(path: str | os.PathLike) -> list[tuple[int, int, int]]:
    out = []
    for line in Path(path).read_text().splitlines():
        o, n, c = line.split()
        out.append((int(o), int(n), int(c, 16)))
    return out
