"""The BPF C compiler driver: ``uringbpf cc file.bpf.c -o file.bpf.o``.

Why a driver: programs must build on machines with no BPF toolchain and no kernel headers.
We prefer a system ``clang`` when it can target BPF *at the requested cpu version* (Debian's
clang-14 stops at v3), and otherwise use the ``ziglang`` pip package, whose bundled clang
(``zig cc -target bpfel-freestanding``) knows v4.  Either way the include path is our own
``include/`` directory (libbpf- and liburing-compatible headers) plus the compiler's builtin
headers (``stddef.h``, ``stdint.h``...), and never ``/usr/include`` (``-nostdlibinc``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

log = logging.getLogger(__name__)

INCLUDE_DIR = Path(__file__).resolve().parent.parent / "include"
CPU_VERSIONS = ("v1", "v2", "v3", "v4")


from ..errors import CompileError  # noqa: E402,F401  (defined in uringbpf.errors)
from .. import native


def include_dir() -> Path:
    """Directory of uringbpf's self-contained BPF C headers."""
    return INCLUDE_DIR


def _probe(cmd: list[str], cpu: str) -> bool:
    """Can ``cmd`` compile a trivial BPF object for ``cpu``? (cheap, run once per cpu)."""
    with tempfile.TemporaryDirectory(prefix="uringbpf-cc-") as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text("int f(int x) { return x + 1; }\n")
        try:
            proc = subprocess.run(cmd + [f"-mcpu={cpu}", "-O2", "-c", str(src), "-o",
                                         str(Path(tmp) / "probe.o")],
                                  capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return proc.returncode == 0 and (Path(tmp) / "probe.o").exists()


@lru_cache(maxsize=None)
def _clang_cmd(cpu: str) -> tuple[str, ...] | None:
    override = os.environ.get("URINGBPF_CLANG")
    candidates = [override] if override else ["clang", "clang-19", "clang-18", "clang-17",
                                               "clang-16", "clang-15", "clang-14"]
    for name in candidates:
        path = shutil.which(name) if name else None
        if path:
            cmd = [path, "-target", "bpf"]
            if _probe(cmd, cpu):
                return tuple(cmd)
    return None


@lru_cache(maxsize=None)
def _zig_cmd(cpu: str) -> tuple[str, ...] | None:
    # ziglang is the optional `uringbpf[cc]` extra, not one of our modules: absent is normal.
    if importlib.util.find_spec("ziglang") is None:
        return None
    cmd = [sys.executable, "-m", "ziglang", "cc", "-target", "bpfel-freestanding"]
    return tuple(cmd) if _probe(cmd, cpu) else None


def find_compiler(cpu: str = "v3", prefer: str | None = None) -> list[str]:
    """The compiler command (without flags) able to emit BPF for ``cpu``.

    ``prefer`` is "clang" or "zig" to force one (the environment variable
    ``URINGBPF_CC`` does the same).  Raises :class:`CompileError` when none works.
    """
    if cpu not in CPU_VERSIONS:
        raise CompileError(f"unknown BPF cpu version {cpu!r} (use one of {', '.join(CPU_VERSIONS)})")
    prefer = prefer or os.environ.get("URINGBPF_CC") or None
    order = {"clang": (_clang_cmd,), "zig": (_zig_cmd,)}.get(prefer or "", (_clang_cmd, _zig_cmd))
    for finder in order:
        cmd = finder(cpu)
        if cmd:
            _log_choice(cmd, cpu)
            return list(cmd)
    raise CompileError(
        f"no compiler can build BPF for -mcpu={cpu}: install clang (>= 18 for v4) or the "
        "'ziglang' package (pip install 'uringbpf[cc]')")


_reported: set[tuple[str, ...]] = set()


def _log_choice(cmd: tuple[str, ...], cpu: str) -> None:
    """Say once per process which compiler builds BPF (the choice changes the objects)."""
    if cmd in _reported:
        return
    _reported.add(cmd)
    if "ziglang" in cmd:
        log.info("compiling BPF C (-mcpu=%s) with the clang of the ziglang package "
                 "(no system clang can target BPF %s)", cpu, cpu)
    else:
        log.info("compiling BPF C (-mcpu=%s) with %s", cpu, cmd[0])


def compile_c(src_path: str | os.PathLike, out_path: str | os.PathLike, cpu: str = "v3",
              include_dirs: Iterable[str | os.PathLike] = (), defines: Sequence[str] = (),
              extra_flags: Sequence[str] = (), compiler: str | None = None) -> Path:
    """Compile one BPF C file into an ELF object (``-O2 -g``, BTF included).

    The source is compiled as C whatever its suffix (``-x c``: without it a compiler
    driver takes an unknown suffix for linker input, compiles nothing and succeeds).
    Returns the output path; raises :class:`CompileError` with the compiler's messages,
    or when the compiler succeeded without writing the object.
    """
    src = Path(src_path)
    out = Path(out_path)
    if not src.exists():
        raise CompileError(f"{src}: no such file")
    cmd = find_compiler(cpu, compiler)
    flags = [f"-mcpu={cpu}", "-O2", "-g", "-nostdlibinc", "-fno-stack-protector",
             "-D__BPF_TRACING__", "-D__UBPF__=1", "-Wno-unused-command-line-argument"]
    incs: list[str] = []
    for d in include_dirs:
        incs += ["-I", str(d)]
    incs += ["-I", str(INCLUDE_DIR)]
    defs = [f"-D{d}" for d in defines]
    out.parent.mkdir(parents=True, exist_ok=True)
    full = cmd + flags + incs + defs + list(extra_flags) + ["-x", "c", "-c", str(src), "-o", str(out)]
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise CompileError(f"{src}: compiler timed out") from None
    if proc.returncode != 0:
        raise CompileError(f"{src}: compilation failed:\n{proc.stdout}{proc.stderr}".rstrip())
    if not out.is_file():
        raise CompileError(f"{src}: the compiler wrote no object ({' '.join(full)})")
    return out


def compile_cached(src_path: str | os.PathLike, cpu: str = "v3",
                   defines: Sequence[str] = ()) -> Path:
    """``compile_c`` into the user cache, reused while nothing that shapes the object changed.

    The key covers the source, every header beside it and in our include/ tree, the cpu,
    the defines and the compiler command (clang and zig emit different objects), so an
    edited header rebuilds every example that may include it. The object is written under
    a temporary name and renamed, so concurrent processes never read half a file.
    """
    src = Path(src_path)
    if not src.exists():
        raise CompileError(f"{src}: no such file")
    digest = hashlib.sha256(src.read_bytes())
    for header in sorted(src.parent.glob("*.h")) + sorted(INCLUDE_DIR.rglob("*.h")):
        digest.update(str(header.name).encode())
        digest.update(header.read_bytes())
    digest.update(" ".join([cpu, *defines, *find_compiler(cpu)]).encode())
    out = native.cache_dir() / f"{src.stem}-{digest.hexdigest()[:16]}.o"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        compile_c(src, tmp, cpu=cpu, defines=defines)
        os.replace(tmp, out)
    return out
