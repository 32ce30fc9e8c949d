"""Integrity log of the stripe target: crc32c of every write, computed without Python bytes.

The checksum runs on the request's pages *by address*: in zero-copy mode the target gets
the address from ``kbuf_table(ring).lookup(tag)`` (the registered kernel buffer), in copy
mode it is the server's own buffer. Two engines:

* ``bpf``: ``crc32c.bpf.c`` compiled by ``uringbpf cc`` (cached by source hash), loaded and
  verified with ``BpfObject`` once per process, run on the JIT (``bpf_engine="interp"``
  for the reference interpreter), one run per 4 KiB. Chosen by ``engine="auto"`` when the
  loader is importable, the program verifies and loads on the wanted engine, and passes a
  self-check against the native implementation.
* ``native``: the fallback, ``kbuf_crc32c`` in ``native/kbuf.c`` called through ctypes.

``engine_reason`` says which engine runs and why. Records are ``(offset, length, crc)``;
:meth:`flush` appends them to the log file and fsyncs it (the target calls it on FLUSH).
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

from uringbpf import Buffer
from uringbpf.designs import kbuf

HERE = Path(__file__).resolve().parent
BPF_CHUNK = 4096          # CHUNK in crc32c.bpf.c: bytes per program run


class _CrcCtx(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64), ("len", ctypes.c_uint32), ("crc", ctypes.c_uint32)]


class IntegrityLog:
    """CRC32C of every write the target acknowledges (crc32c.bpf.c, or native code),
    kept as ``(offset, length, crc)`` records and optionally appended to a file."""
    def __init__(self, path: str | os.PathLike | None = None, engine: str = "auto",
                 bpf_engine: str = "jit"):
        if engine not in ("auto", "bpf", "native"):
            raise ValueError("engine must be auto, bpf or native")
        if bpf_engine not in ("jit", "interp"):
            raise ValueError("bpf_engine must be jit or interp")
        self.path = Path(path) if path else None
        self.records: list[tuple[int, int, int]] = []
        self._unflushed = 0
        self._lock = threading.Lock()
        self._want_engine = bpf_engine
        self.engine, self.engine_reason = "native", "engine=native requested"
        self._prog = None
        if engine != "native":
            try:
                self._load_bpf()
                self.engine, self.engine_reason = "bpf", f"BPF program ({bpf_engine})"
            except Exception as exc:       # loader missing or program refused: say why
                self._prog = None
                if engine == "bpf":
                    raise
                self.engine_reason = f"BPF engine unavailable: {type(exc).__name__}: " \
                                     f"{str(exc).splitlines()[0] if str(exc) else ''}"

    # -- engines
    def _load_bpf(self) -> None:
        self._prog, self._ctx_buf, self._run_lock = _bpf_program(self._want_engine)
        self._ctx = _CrcCtx.from_address(self._ctx_buf.addr)
        sample = os.urandom(4096 + 24)
        buf = Buffer(len(sample))
        buf.view[:] = sample
        got = self._run_bpf(buf.addr, len(sample))
        want = kbuf.crc32c(buf.addr, len(sample))
        if got != want:
            raise RuntimeError(f"BPF crc32c self-check failed ({got:#x} != {want:#x})")

    def _run_bpf(self, addr: int, length: int) -> int:
        """One program run per 4 KiB (CHUNK in crc32c.bpf.c), chaining the crc."""
        with self._run_lock:
            ctx, crc = self._ctx, 0
            for off in range(0, length, BPF_CHUNK):
                ctx.data, ctx.len, ctx.crc = addr + off, min(BPF_CHUNK, length - off), crc
                ret = self._prog(self._ctx_buf.addr, ctypes.sizeof(_CrcCtx))
                if ret != 0:
                    raise RuntimeError(f"crc32c program returned {ret:#x}")
                crc = ctx.crc
            return crc

    def crc(self, addr: int, length: int) -> int:
        """CRC32C of ``length`` bytes at ``addr`` (the BPF program when it can take them)."""
        if self._prog is not None and length % 8 == 0:
            return self._run_bpf(addr, length)
        return kbuf.crc32c(addr, length)

    # -- the log
    def record_write(self, offset: int, addr: int, length: int) -> int:
        """Record a write (its offset, length and the CRC32C of its data); returns the CRC."""
        crc = self.crc(addr, length)
        with self._lock:
            self.records.append((offset, length, crc))
        return crc

    def flush(self) -> None:
        """Append the records since the last flush to the file and fsync it (no file: no-op)."""
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
    """The records of a log file written by :meth:`IntegrityLog.flush`:
    ``(offset, length, crc32c)`` per write."""
    out = []
    for line in Path(path).read_text().splitlines():
        o, n, c = line.split()
        out.append((int(o), int(n), int(c, 16)))
    return out


_loaded: dict = {}
_load_lock = threading.Lock()


def _bpf_program(engine: str):
    """Compile (cached by source hash), load and verify crc32c.bpf.c once per process.

    Returns ``(program, context buffer, run lock)``; verification walks the bounded loops
    and takes a second or two, so every IntegrityLog of the process shares one load.
    """
    with _load_lock:
        if engine in _loaded:
            return _loaded[engine]
        from uringbpf.bpf.cc import compile_cached
        from uringbpf.bpf.memory import Buffer
        from uringbpf.bpf.object import BpfObject
        obj = BpfObject.open(str(compile_cached(HERE / "crc32c.bpf.c")))
        obj.load(engine=engine)
        prog = obj.programs["crc32c_write"]
        if prog.engine != engine:
            raise RuntimeError(f"program runs on the {prog.engine}, not the {engine}")
        # The context lives in a native buffer the run may touch (the interpreter checks
        # every access against the runtime's regions; the JIT trusts the verifier).
        ctx_buf = Buffer(ctypes.sizeof(_CrcCtx), align=8)
        prog.runtime.mem.add_buffer(ctx_buf, True, "crc32c ctx")
        _loaded[engine] = (prog, ctx_buf, threading.Lock())
        _loaded[engine + "-obj"] = obj          # keep maps and code alive
        return _loaded[engine]
