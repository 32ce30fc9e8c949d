"""A persistent cache of verifier verdicts: an unchanged program's re-load skips verification.

``BpfObject.load()`` asks :func:`verify` instead of the verifier.  The first load of a
program verifies it as always; when it is accepted, the verdict -- the
:class:`~uringbpf.bpf.verifier.VerifierResult` and what verification did to the program
(dead code turned into ``ja -1``, arena accesses rewritten to the PROBE modes) -- is
written to ``$XDG_CACHE_HOME/uringbpf/verify/`` under a key that hashes everything the
verdict depends on.  A later load whose key is the same (another process, another
``open()`` of the same object) takes the verdict from the file and puts the program in
the state verification would have left it in.

**It does not make a first verification faster**: a new or edited program, a changed
``.rodata`` value, a changed map, a new uringbpf version... all verify in full.

The key hashes:

* the verifier's code: the bytes of every source file of :mod:`uringbpf.bpf` (the
  verifier, the ISA, program types, helpers, maps, BTF...), which core runs
  (``verifier.CORE``) and the Python version;
* the program: every field of every instruction slot (after kfunc resolution and the
  restoration of an earlier verification's rewrites, as the verifier sees it), its name,
  section, type, attach point, sleepable flag, BTF function name, kfunc names, the
  first-instruction -> function-name table, and the digest of the whole ELF file (its
  BTF, func_info and everything else the program came with);
* the answers the verifier gets: the program type the platform resolves (every field
  of it and of its context layout), the prototype of every helper the program calls
  and of every kfunc it names (or their absence);
* each map the program refers to: its class, type, key and value sizes, max_entries,
  flags, map_extra, BTF type ids, whether it is frozen, and a frozen array's contents
  (the verifier reads ``const volatile`` values from them);
* the verification limits (the processed-instruction budget).

Safety: any input that cannot be written down exactly (a prototype holding a callable,
a map of an unknown class, a rewrite of a program field the cache does not know)
makes the program *uncacheable*: it is verified, never looked up.  Only accepted
programs are stored (a refusal re-runs, so its log and message are always the
verifier's).  Only the real verifier is cached: a substituted ``verify`` function always
runs.  Files are written to a temporary name and renamed, carry a SHA-256 of their
contents and their own key, and live in a directory only this user may write (a
verdict read from a file another user planted could let an unsafe program run).
``URINGBPF_VERIFY_CACHE=0`` turns the cache off, ``URINGBPF_VERIFY_CACHE=/some/dir`` puts
it there; :func:`clear` empties it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from . import isa
from . import maps as _maps
from . import verifier as _verifier
from .. import native as _native
from ..errors import ProgTypeError, UncacheableError
from .platform import Platform
from .verifier.api import arena_unrewrite, dead_code_restore, sync_lddw_imm64

__all__ = ["ENV", "enabled", "cache_dir", "source_files", "code_version", "key",
           "verify",
           "stats", "clear"]

#: the environment variable that turns the cache off (``0``, ``off``, ``no``, ``false``) or
#: names its directory (a path: any value with a ``/``)
ENV = "URINGBPF_VERIFY_CACHE"

_MAGIC = "uringbpf-verdict-1"
#: the program fields verification may change; any other change makes the program
#: uncacheable (the cache could not replay it)
_OUTPUTS = ("insns", "dead_code", "arena_xlated")
#: program attributes that are objects the key covers otherwise (maps one by one, the BTF
#: through the ELF digest); verification must leave them the same objects
_OBJECTS = ("maps", "btf")

#: at most this many verdicts are kept: the first store of a process removes the least
#: recently used beyond it (a verifier edit leaves every older verdict unreachable)
MAX_ENTRIES = 4096

_stats = {"hits": 0, "misses": 0, "stores": 0, "uncacheable": 0}
_state: dict[str, Any] = {}


def enabled() -> bool:
    """True unless ``URINGBPF_VERIFY_CACHE`` turns the cache off."""
    return os.environ.get(ENV, "1").lower() not in ("0", "off", "no", "false")


def cache_dir() -> Path | None:
    """The cache directory (created, mode 0700), or None when the cache is off or the
    directory is not safe (not ours, or writable by others)."""
    if not enabled():
        return None
    value = os.environ.get(ENV, "")
    path = Path(value) if os.sep in value else _native.cache_dir() / "verify"
    if _state.get("dir_checked") == path:
        return path
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
    except OSError:
        return None
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        return None
    _state["dir_checked"] = path
    return path


#: modules of uringbpf.bpf that only run or translate verified programs (engines, tools):
#: the verifier imports none of them (tests/bpf/test_load_path_cache.py checks), so an
#: edit to them keeps the cached verdicts
_ENGINE_ONLY = frozenset({"jit.py", "jit_codegen.py", "jit_x86.py", "x86.py", "interp.py",
                          "kernel_exec.py", "run.py", "conformance.py", "cc.py", "asm.py",
                          "disasm.py", "engines.py"})


def source_files() -> list[Path]:
    """The files :func:`code_version` hashes: every ``.py``/``.pxd`` of :mod:`uringbpf.bpf`
    but the engines' (:data:`_ENGINE_ONLY`), and :mod:`uringbpf.errors` and
    :mod:`uringbpf.native`, which the verifier imports."""
    root = Path(__file__).resolve().parent
    files = []
    # os.walk, not Path.rglob: a third of the time (every load pays this once, #19)
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        files += [Path(folder, n) for n in names if n.endswith((".py", ".pxd"))
                  and not (folder == str(root) and n in _ENGINE_ONLY)]
    return sorted(files) + [root.parent / "errors.py", root.parent / "native" / "__init__.py"]


def code_version() -> str:
    """Hash of what decides a verdict besides the key's inputs: :func:`source_files`
    (read once per process), the verifier core that runs and the Python version."""
    version = _state.get("version")
    if version is None:
        h = hashlib.sha256()
        package = Path(__file__).resolve().parents[1]
        for path in source_files():
            h.update(str(path.relative_to(package)).encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
        h.update(repr((_verifier.CORE, sys.version_info[:3], sys.implementation.name)).encode())
        version = _state["version"] = h.hexdigest()
    return version


# ----------------------------------------------------------------------- the key --

def _canon(value: Any) -> Any:
    """``value`` as plain JSON data, the same in every process (sets sorted, enums and
    dataclasses named); UncacheableError for anything else (callables, arbitrary objects)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return ["float", value.hex()]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["bytes", bytes(value).hex()]
    if isinstance(value, enum.Enum):
        return ["enum", type(value).__qualname__, _canon(value.value)]
    if isinstance(value, isa.Insn):
        return ["insn", _insn(value)]
    if isinstance(value, (list, tuple)):       # tagged like the others: never mistaken for one
        # an instruction (most of a program's state) straight to its form, as above
        return ["list", [["insn", _insn(v)] if type(v) is isa.Insn else _canon(v)
                         for v in value]]
    if isinstance(value, (set, frozenset)):
        return ["set", sorted(json.dumps(_canon(v), sort_keys=True) for v in value)]
    if isinstance(value, dict):
        return ["dict", sorted([json.dumps(_canon(k), sort_keys=True), _canon(v)]
                               for k, v in value.items())]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return ["dc", f"{cls.__module__}.{cls.__qualname__}",
                [[f.name, _canon(getattr(value, f.name))] for f in dataclasses.fields(value)]]
    raise UncacheableError(f"cannot key a {type(value).__qualname__}")


def _insn(insn: isa.Insn) -> list[int]:
    return [insn.opcode, insn.dst, insn.src, insn.off, insn.imm, insn.imm64]


def _map_key(m: Any) -> list:
    if type(m) is not _maps.Map:
        raise UncacheableError(f"map of class {type(m).__qualname__}")
    row = [m.name, m.type, m.key_size, m.value_size, m.max_entries, m.map_flags, m.map_extra,
           m.btf_key_type, m.btf_value_type, bool(m.frozen)]
    if m.frozen and m.type in (_maps.MAP_TYPE_ARRAY, _maps.MAP_TYPE_PERCPU_ARRAY):
        row.append(hashlib.sha256(m.memory()).hexdigest())   # const values the verifier reads
    elif m.frozen:
        raise UncacheableError(f"frozen map {m.name!r} of type {m.type}")
    return row


def _program_state(program: isa.Program) -> dict[str, Any]:
    """Every attribute of ``program`` as plain data, except :data:`_OBJECTS`."""
    return {name: _canon(value) for name, value in sorted(vars(program).items())
            if name not in _OBJECTS}


def key(program: isa.Program, platform: Platform, elf_digest: str,
        max_insns: int = _verifier.MAX_INSNS_PROCESSED, state: dict | None = None) -> str:
    """The cache key of ``program`` as the verifier would see it now (call after the
    earlier verification's rewrites were undone); UncacheableError when an input cannot be
    written down exactly.  ``elf_digest`` is the SHA-256 of the ELF file it came from;
    ``state`` is :func:`_program_state` of the program when the caller has it already."""
    if not elf_digest:
        raise UncacheableError("no ELF digest")
    try:        # the program type as the verifier resolves it
        ptype = platform.prog_type_for(program)
    except ProgTypeError:
        raise UncacheableError("no program type") from None      # verify() refuses it
    helpers = sorted({i.imm for i in program.insns
                      if i.opcode == isa.OP_CALL and i.src == 0})
    parts = {
        "version": code_version(),
        "elf": elf_digest,
        "program": _program_state(program) if state is None else state,
        "prog_type": _canon(ptype),
        "helpers": [[h, _canon(_proto(platform.get_helper(h)))] for h in helpers],
        "kfuncs": [[n, _canon(_proto(platform.get_kfunc(n)))] for n in program.kfuncs],
        "maps": [_map_key(m) for m in program.maps],
        "max_insns": max_insns,
    }
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def _proto(helper: Any) -> Any:
    return None if helper is None else helper.proto


# ----------------------------------------------------------------------- storage --

def _read(k: str) -> dict | None:
    d = cache_dir()
    if d is None:
        return None
    try:
        text = (d / f"{k}.json").read_text()
    except (OSError, UnicodeDecodeError):
        return None
    body, _, digest = text.rpartition("\n")
    if hashlib.sha256(body.encode()).hexdigest() != digest:
        return None                 # truncated or damaged: verify again
    try:
        entry = json.loads(body)
    except ValueError:
        return None
    if not isinstance(entry, dict) or entry.get("magic") != _MAGIC or entry.get("key") != k:
        return None
    with contextlib.suppress(OSError):      # recently used: kept by _prune
        os.utime(d / f"{k}.json")
    return entry


def _prune(d: Path) -> None:
    """Keep the :data:`MAX_ENTRIES` most recently used verdicts (files touched on a hit)."""
    try:
        entries = [(e.stat().st_mtime_ns, e.path) for e in os.scandir(d)
                   if e.name.endswith(".json")]
    except OSError:
        return
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort()
    for _, path in entries[:len(entries) - MAX_ENTRIES]:
        with contextlib.suppress(FileNotFoundError):    # another process removed it
            os.unlink(path)


def _write(k: str, entry: dict) -> None:
    d = cache_dir()
    if d is None:
        return
    body = json.dumps({**entry, "magic": _MAGIC, "key": k}, separators=(",", ":"))
    text = body + "\n" + hashlib.sha256(body.encode()).hexdigest()
    try:
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
        with contextlib.ExitStack() as undo:
            undo.callback(os.unlink, tmp)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, d / f"{k}.json")    # atomic: a reader sees all or nothing
            undo.pop_all()
        _stats["stores"] += 1
    except OSError:
        return              # a full or read-only disk only costs the next verification
    if not _state.get("pruned"):            # once per process: a directory scan
        _state["pruned"] = True
        _prune(d)


def _result_data(result: Any) -> dict:
    out = {}
    for f in dataclasses.fields(result):
        v = getattr(result, f.name)
        out[f.name] = ["pairs", sorted(v.items())] if isinstance(v, dict) else v
    return out


def _result_from(data: dict) -> Any:
    kw = {name: dict(tuple(p) for p in v[1]) if isinstance(v, list) and v[:1] == ["pairs"]
          else v for name, v in data.items()}
    return _verifier.VerifierResult(**kw)


def _apply(program: isa.Program, state: dict) -> None:
    program.insns[:] = [isa.Insn(*t) for t in state["insns"]]
    program.dead_code = {pc: isa.Insn(*t) for pc, t in state["dead_code"]}
    program.arena_xlated = state["arena_xlated"]


def _outputs(program: isa.Program) -> dict:
    return {"insns": [_insn(i) for i in program.insns],
            "dead_code": sorted([pc, _insn(i)] for pc, i in program.dead_code.items()),
            "arena_xlated": bool(program.arena_xlated)}


# --------------------------------------------------------------------- the entry --

def verify(program: isa.Program, platform: Platform, elf_digest: str,
           verify_fn: Callable[..., Any] | None = None) -> Any:
    """``verify_fn(program, platform=platform)`` (default: the verifier's
    :func:`~uringbpf.bpf.verifier.verify`), or its earlier verdict on the same inputs.

    Returns the :class:`~uringbpf.bpf.verifier.VerifierResult` and leaves ``program`` as
    the verification leaves it; raises what the verifier raises (refusals are never
    cached).  See the module doc for the key.
    """
    if verify_fn is None:
        verify_fn = _verifier.verify
    if verify_fn is not _verifier.verify or cache_dir() is None:
        return verify_fn(program, platform=platform)
    # the program as the verifier sees it: earlier rewrites undone (verify() does the same)
    dead_code_restore(program)
    arena_unrewrite(program)
    sync_lddw_imm64(program)
    try:
        before = _program_state(program)
        k = key(program, platform, elf_digest, state=before)
        objects = {name: getattr(program, name, None) for name in _OBJECTS}
    except UncacheableError:
        _stats["uncacheable"] += 1
        return verify_fn(program, platform=platform)
    entry = _read(k)
    if entry is not None:
        _apply(program, entry["state"])
        _stats["hits"] += 1
        return _result_from(entry["result"])
    _stats["misses"] += 1
    result = verify_fn(program, platform=platform)
    try:
        after = _program_state(program)
    except UncacheableError:
        _stats["uncacheable"] += 1
        return result
    changed = {n for n in set(before) | set(after) if before.get(n) != after.get(n)}
    same_objects = all(getattr(program, n, None) is o for n, o in objects.items())
    data = _result_data(result)
    # stored only if it reads back as the very result (a field JSON cannot carry exactly,
    # a tuple or a set, would come back as something else or not at all)
    try:
        replayable = _result_from(json.loads(json.dumps(data))) == result
    except (TypeError, ValueError):
        replayable = False
    if changed <= set(_OUTPUTS) and same_objects and replayable:
        _write(k, {"result": data, "state": _outputs(program)})
    else:
        _stats["uncacheable"] += 1      # verification changed something we cannot replay
    return result


def stats() -> dict[str, Any]:
    """Counters of this process: hits, misses (verified, then stored when cacheable),
    stores, uncacheable programs; and the directory (empty when off)."""
    return {**_stats, "dir": str(cache_dir() or "")}


def clear() -> None:
    """Delete every cached verdict (and reset the counters)."""
    for name in _stats:
        _stats[name] = 0
    d = cache_dir()
    if d is not None:
        for f in d.glob("*.json"):
            f.unlink(missing_ok=True)
