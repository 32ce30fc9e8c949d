"""The BPF C compiler driver: ``uringbpf cc file.bpf.c -o file.bpf.o``.

Why a driver: programs must build on machines with no BPF toolchain and no kernel headers.
We prefer a system ``clang`` when it can target BPF *at the requested cpu version* (Debian's
clang-14 stops at v3), and otherwise use the ``ziglang`` pip package, whose bundled clang
(``zig cc -target bpfel-freestanding``) knows v4.  Either way the include path is our own
``include/`` directory (libbpf- and liburing-compatible headers) plus the compiler's builtin
headers (``stddef.h``, ``stdint.h``...), and never ``/usr/include`` (``-nostdlibinc``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

INCLUDE_DIR = Path(__file__).resolve().parent.parent / "include"
CPU_VERSIONS = ("v1", "v2", "v3", "v4")


class CompileError(RuntimeError):
    """The C compiler rejected the program, or no BPF-capable compiler exists."""


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
    try:
        import ziglang  # noqa: F401
    except ImportError:
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
            return list(cmd)
    raise CompileError(
        f"no compiler can build BPF for -mcpu={cpu}: install clang (>= 18 for v4) or the "
        "'ziglang' package (pip install 'uringbpf[cc]')")


def compile_c(src_path: str | os.PathLike, out_path: str | os.PathLike, cpu: str = "v3",
              include_dirs: Iterable[str | os.PathLike] = (), defines: Sequence[str] = (),
              extra_flags: Sequence[str] = (), compiler: str | None = None) -> Path:
    """Compile one BPF C file into an ELF object (``-O2 -g``, BTF included).

    Returns the output path; raises :class:`CompileError` with the compiler's messages.
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
    full = cmd + flags + incs + defs + list(extra_flags) + ["-c", str(src), "-o", str(out)]
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise CompileError(f"{src}: compiler timed out") from None
    if proc.returncode != 0:
        raise CompileError(f"compiling {src} failed ({' '.join(full)}):\n{proc.stdout}{proc.stderr}")
    return out


def compile_cached(src_path: str | os.PathLike, cpu: str = "v3",
                   defines: Sequence[str] = ()) -> Path:
    """``compile_c`` into the user cache, reused while nothing that shapes the object changed.

    The key covers the source, every header beside it and in our include/ tree, the cpu,
    the defines and the compiler command (clang and zig emit different objects), so an
    edited header rebuilds every example that may include it. The object is written under
    a temporary name and renamed, so concurrent processes never read half a file.
    """
    import hashlib

    from .. import native
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


def main_cc(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="uringbpf cc", description="compile BPF C to an ELF object")
    ap.add_argument("source")
    ap.add_argument("-o", dest="output", help="output object (default: source with .o)")
    ap.add_argument("--cpu", "-mcpu", default="v3", choices=CPU_VERSIONS)
    ap.add_argument("-I", dest="includes", action="append", default=[])
    ap.add_argument("-D", dest="defines", action="append", default=[])
    ap.add_argument("--compiler", choices=("clang", "zig"), default=None)
    args = ap.parse_args(argv)
    out = args.output or str(Path(args.source).with_suffix(".o"))
    try:
        compile_c(args.source, out, cpu=args.cpu, include_dirs=args.includes,
                  defines=args.defines, compiler=args.compiler)
    except CompileError as exc:
        print(f"uringbpf cc: {exc}", file=sys.stderr)
        return 1
    return 0


def main_include_dir(argv: list[str]) -> int:
    print(INCLUDE_DIR)
    return 0


main = main_cc
