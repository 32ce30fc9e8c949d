"""The verdict cache (bpf/verify_cache.py): a re-load of an unchanged program skips the
verifier, and a change to any input of the verdict verifies again (issue #19, first run).

Re-verification is observed through the cache's counters (``stats()``: a miss is a run of
the verifier), and, where a changed input flips the verdict, through the refusal itself.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import uringbpf  # noqa: F401  (installs the default platform)
from uringbpf.bpf import cc, isa, verifier, verify_cache
from uringbpf.bpf import maps as maps_mod
from uringbpf.bpf.helpers import Helper, Proto, Ret
from uringbpf.bpf.object import BpfObject
from uringbpf.errors import BpfVerifierError, UncacheableError

from test_arena_window import ATOMICS
from test_loader_support import build

SRC = """\
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";
const volatile __u32 limit = 8;
__u64 table[8];

SEC("socket")
int indexed(void *ctx)
{
	__u64 sum = 0;
	for (__u32 i = 0; i < limit; i++)
		sum += table[i];
	if (bpf_ktime_get_ns() == 0)
		sum++;
	if (limit > 100)          /* dead while limit is 8: ja -1 after verification */
		return sum * 3 + table[limit & 7];
	return sum;
}
"""


@pytest.fixture(scope="module")
def rod(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("vcache")
    (d / "rod.bpf.c").write_text(SRC)
    return cc.compile_c(d / "rod.bpf.c", d / "rod.o")


@pytest.fixture(scope="module")
def arena(tmp_path_factory) -> Path:
    """Atomics on __arena globals: verification rewrites them to the PROBE modes."""
    d = tmp_path_factory.mktemp("vcache_arena")
    (d / "arena.bpf.c").write_text(ATOMICS)
    return cc.compile_c(d / "arena.bpf.c", d / "arena.o")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """A private, empty cache directory and zeroed counters for each test."""
    d = tmp_path / "verdicts"
    monkeypatch.setenv(verify_cache.ENV, str(d))
    verify_cache.clear()
    return d


def _load(path, **rodata) -> BpfObject:
    obj = BpfObject.open(path)
    for name, value in rodata.items():
        setattr(obj.rodata, name, value)
    obj.load(engine="interp")
    return obj


def _snapshot(obj: BpfObject) -> dict:
    """What verification leaves behind, per program: the result, the instructions (with
    the ``ja -1`` traps and PROBE modes), the saved dead code, the arena flag."""
    return {name: (dataclasses.asdict(p.verifier_result), list(p.program.insns),
                   dict(p.program.dead_code), p.program.arena_xlated)
            for name, p in obj.programs.items() if p.loaded}


@pytest.mark.parametrize("which", ["rod", "arena", "globals"])
def test_a_reload_takes_the_verdict_and_leaves_the_program_as_verification_does(which, rod,
                                                                               arena):
    path = {"rod": rod, "arena": arena}.get(which) or build(which)
    first = _load(path)
    fresh = _snapshot(first)
    stats = verify_cache.stats()
    assert stats["hits"] == 0 and stats["misses"] == stats["stores"] == len(fresh) > 0
    second = _load(path)
    assert verify_cache.stats()["hits"] == len(fresh)
    assert verify_cache.stats()["misses"] == len(fresh)          # nothing verified again
    assert _snapshot(second) == fresh
    if which == "rod":
        assert fresh["indexed"][2], "the test program should have dead code"
        assert second.programs["indexed"]() == first.programs["indexed"]() == 0
    if which == "arena":
        assert any(p.program.arena_xlated for p in second.programs.values())
    # a cached program verifies again like a fresh one (the rewrites are undone first)
    for p in second.programs.values():
        if p.loaded:
            assert verifier.verify(p.program, platform=second.platform).processed_insns \
                == p.verifier_result.processed_insns
    first.close()
    second.close()


EXAMPLES = sorted(str(p.relative_to(Path(__file__).resolve().parents[2] / "examples"))
                  for p in (Path(__file__).resolve().parents[2] / "examples").glob("*/**/*.bpf.c"))


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_reloads_from_the_cache_as_verified(example):
    """struct_ops loop steps, IORING_OP_BPF ops, request programs, kbuf filters: kfuncs,
    global functions, callbacks, arenas; the replayed state equals the verified one."""
    path = cc.compile_cached(Path(__file__).resolve().parents[2] / "examples" / example)
    first = BpfObject.open(path)
    first.load(engine="interp")
    fresh = _snapshot(first)
    assert verify_cache.stats()["stores"] == len(fresh) > 0
    second = BpfObject.open(path)
    second.load(engine="interp")
    assert verify_cache.stats()["hits"] == len(fresh)
    assert _snapshot(second) == fresh
    first.close()
    second.close()


def test_a_rodata_change_verifies_again_and_can_refuse(rod):
    _load(rod).close()
    with pytest.raises(BpfVerifierError, match="outside of the allowed memory range"):
        _load(rod, limit=9)             # table[8] is out of bounds: never the cached verdict
    assert verify_cache.stats()["misses"] == 2 and verify_cache.stats()["hits"] == 0
    _load(rod, limit=4).close()         # accepted, its own verdict
    _load(rod).close()
    assert verify_cache.stats()["hits"] == 1 and verify_cache.stats()["misses"] == 3


def test_refusals_are_not_stored(rod, cache):
    for _ in range(2):
        with pytest.raises(BpfVerifierError) as info:
            _load(rod, limit=9)
        assert "outside of the allowed memory range" in info.value.log
    assert verify_cache.stats()["stores"] == 0 and verify_cache.stats()["misses"] == 2
    assert not list(cache.glob("*.json"))


# ------------------------------------------------------------ every input of the key --

def _helper_proto_changed(obj, program, monkeypatch):
    real = obj.platform.get_helper

    def get_helper(hid):
        h = real(hid)
        return Helper(dataclasses.replace(h.proto, ret=Ret.VOID), h.impl, hid, h.native)
    monkeypatch.setattr(obj.platform, "get_helper", get_helper)


def _kfunc_proto_changed(obj, program, monkeypatch):
    program.kfuncs.append("bpf_rod_test_kfunc")       # named, never called: in the key
    base = _key(obj, program)
    proto = Proto("bpf_rod_test_kfunc", ())
    monkeypatch.setattr(obj.platform, "get_kfunc",
                        lambda name: Helper(proto, lambda *a: 0) if name == proto.name else None)
    assert _key(obj, program) != base


def _prog_type_changed(obj, program, monkeypatch):
    ptype = obj.platform.prog_type_for(program)
    changed = dataclasses.replace(ptype, buffer_min_size=ptype.buffer_min_size + 8)
    monkeypatch.setattr(obj.platform, "prog_type_for", lambda p: changed)


def _code_changed(obj, program, monkeypatch):
    monkeypatch.setitem(verify_cache._state, "version", "another verifier")


def _insn_field(field):
    def change(obj, program, monkeypatch):
        pc = next(pc for pc, i in enumerate(program.insns) if i.opcode == isa.OP_CALL)
        i = program.insns[pc]
        values = dict(opcode=i.opcode, dst=i.dst, src=i.src, off=i.off, imm=i.imm)
        values[field] += 1
        program.insns[pc] = isa.Insn(**values)
    return change


def _program_attr(name, value):
    def change(obj, program, monkeypatch):
        setattr(program, name, value(getattr(program, name)))
    return change


def _map_attr(name, value):
    def change(obj, program, monkeypatch):
        m = next(m for m in program.maps if not m.frozen)      # table[] (.bss)
        monkeypatch.setattr(m, name, value(getattr(m, name)))
    return change


def _rodata_value(obj, program, monkeypatch):
    """The same .rodata map, frozen with ``limit`` = 9 instead of 8."""
    i, ro = next((i, m) for i, m in enumerate(program.maps) if m.frozen)
    other = maps_mod.Map(ro.name, ro.type, ro.key_size, ro.value_size, ro.max_entries,
                         ro.map_flags, ro.btf_key_type, ro.btf_value_type, ro.map_extra)
    value = bytearray(ro.lookup(0))
    value[0] ^= 1
    other.update(0, bytes(value))
    other.freeze()
    program.maps = list(program.maps)
    program.maps[i] = other


MUTATIONS = {
    **{f"insn.{f}": _insn_field(f) for f in ("opcode", "dst", "src", "off", "imm")},
    "name": _program_attr("name", lambda v: v + "x"),
    "section": _program_attr("section", lambda v: v + "/x"),
    "prog_type": _program_attr("prog_type", lambda v: "syscall"),
    "attach": _program_attr("attach", lambda v: "x"),
    "sleepable": _program_attr("sleepable", lambda v: not v),
    "btf_func_name": _program_attr("btf_func_name", lambda v: v + "x"),
    "kfuncs": _program_attr("kfuncs", lambda v: v + ["bpf_rod_unknown"]),
    "func_names": _program_attr("func_names", lambda v: {**v, 3: "other"}),
    **{f"map.{a}": _map_attr(a, lambda v: v + 1) for a in (
        "type", "key_size", "value_size", "max_entries", "map_flags", "map_extra",
        "btf_key_type", "btf_value_type")},
    "map.name": _map_attr("name", lambda v: v + "x"),
    "map.frozen": _map_attr("frozen", lambda v: not v),
    "rodata value": _rodata_value,
    "helper prototype": _helper_proto_changed,
    "kfunc prototype": _kfunc_proto_changed,
    "program type definition": _prog_type_changed,
    "verifier code": _code_changed,
    "elf digest": lambda obj, program, mp: mp.setattr(obj.elf, "digest", "0" * 64),
}


def _key(obj, program):
    return verify_cache.key(program, obj.platform, obj.elf.digest)


def _opened(path):
    obj = BpfObject.open(path)
    obj.prepare()
    for m in obj.map_list:               # as load() does before verifying
        if m.map_flags & maps_mod.BPF_F_RDONLY_PROG:
            m.freeze()
    return obj


@pytest.mark.parametrize("what", sorted(MUTATIONS))
def test_each_input_of_the_key_verifies_again(what, rod, monkeypatch):
    obj = _opened(rod)
    program = obj.programs["indexed"].program
    verify_cache.verify(program, obj.platform, obj.elf.digest)        # verified and stored
    obj.close()
    obj = _opened(rod)
    program = obj.programs["indexed"].program
    base = _key(obj, program)
    MUTATIONS[what](obj, program, monkeypatch)
    assert _key(obj, program) != base
    before = verify_cache.stats()
    with contextlib.suppress(BpfVerifierError):     # some changes make it unacceptable
        verify_cache.verify(program, obj.platform, obj.elf.digest)
    after = verify_cache.stats()
    assert after["misses"] == before["misses"] + 1 and after["hits"] == before["hits"]
    obj.close()


def test_the_same_inputs_give_the_same_key_in_another_object(rod):
    a, b = _opened(rod), _opened(rod)
    assert _key(a, a.programs["indexed"].program) == _key(b, b.programs["indexed"].program)
    a.close()
    b.close()


def test_the_key_is_the_same_in_processes_with_other_hash_seeds(rod):
    """Sets (prototype flags, program-type groups) are written sorted: a string's hash, and
    so a set's order, changes with PYTHONHASHSEED."""
    code = ("import uringbpf, sys\n"
            "from uringbpf.bpf import verify_cache\n"
            "from uringbpf.bpf.object import BpfObject\n"
            "obj = BpfObject.open(sys.argv[1]); obj.prepare()\n"
            "[m.freeze() for m in obj.map_list if m.map_flags & 0x80]\n"
            "p = obj.programs['indexed'].program\n"
            "print(verify_cache.key(p, obj.platform, obj.elf.digest))\n")
    keys = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", code, str(rod)], env=env, check=True,
                             capture_output=True, text=True).stdout
        keys.add(out.strip())
    assert len(keys) == 1


def test_canonical_forms_do_not_collide():
    def canon(value):           # as the key hashes it
        return json.dumps(verify_cache._canon(value), sort_keys=True)

    insn = isa.Insn(0xB7, 0, 0, 0, 1)
    pairs = [([], {}), (["dict", []], {}), ([0xB7, 0, 0, 0, 1, 0], insn), ("ab", b"ab"),
             ([1], {1}), ((1, 2), [[1], 2]), (True, 1), (None, [])]
    for a, b in pairs:
        assert canon(a) != canon(b), (a, b)
    assert canon(frozenset({"b", "a"})) == canon(frozenset({"a", "b"}))


# ------------------------------------------------------------------------- safety --

def test_a_damaged_entry_is_verified_again_and_rewritten(rod, cache):
    _load(rod).close()
    (entry,) = cache.glob("*.json")
    text = entry.read_text()
    body = json.loads(text.rpartition("\n")[0])
    body["result"]["processed_insns"] += 1               # valid JSON, wrong digest
    entry.write_text(json.dumps(body) + "\n" + text.rpartition("\n")[2])
    obj = _load(rod)
    assert verify_cache.stats()["hits"] == 0 and verify_cache.stats()["misses"] == 2
    assert entry.read_text() == text                    # the verifier's own verdict again
    obj.close()
    entry.write_text(text[: len(text) // 2])            # truncated
    _load(rod).close()
    assert verify_cache.stats()["hits"] == 0 and verify_cache.stats()["misses"] == 3


def test_an_entry_under_another_key_is_not_taken(rod, cache):
    _load(rod).close()
    (entry,) = cache.glob("*.json")
    other = cache / ("0" * 64 + ".json")
    other.write_text(entry.read_text())                 # a verdict renamed to another key
    assert verify_cache._read("0" * 64) is None


def test_a_directory_others_can_write_is_not_used(rod, cache):
    os.chmod(cache, 0o777)
    verify_cache._state.pop("dir_checked", None)
    assert verify_cache.cache_dir() is None
    _load(rod).close()
    _load(rod).close()
    assert verify_cache.stats()["misses"] == 0 and not list(cache.glob("*.json"))


def test_the_environment_turns_it_off(rod, cache, monkeypatch):
    monkeypatch.setenv(verify_cache.ENV, "0")
    _load(rod).close()
    _load(rod).close()
    assert verify_cache.stats()["stores"] == 0 and not list(cache.glob("*.json"))


def test_a_substituted_verifier_always_runs(rod):
    obj = _opened(rod)
    program = obj.programs["indexed"].program
    verify_cache.verify(program, obj.platform, obj.elf.digest)
    calls = []
    assert verify_cache.verify(program, obj.platform, obj.elf.digest,
                               lambda p, platform: calls.append(p) or "mine") == "mine"
    assert calls == [program] and verify_cache.stats()["hits"] == 0
    obj.close()


def test_a_map_of_another_class_is_not_cached(rod):
    class OtherMap(maps_mod.Map):
        pass

    obj = _opened(rod)
    program = obj.programs["indexed"].program
    i, m = next((i, m) for i, m in enumerate(program.maps) if not m.frozen)     # .bss
    other = OtherMap(m.name, m.type, m.key_size, m.value_size, m.max_entries, m.map_flags)
    program.maps = list(program.maps)           # not the object's own list
    program.maps[i] = other
    with pytest.raises(UncacheableError):
        _key(obj, program)
    verify_cache.verify(program, obj.platform, obj.elf.digest)
    verify_cache.verify(program, obj.platform, obj.elf.digest)
    assert verify_cache.stats()["uncacheable"] == 2 and verify_cache.stats()["stores"] == 0
    other.close()
    obj.close()


def test_a_verification_that_changes_another_field_is_not_stored(rod, monkeypatch):
    real = verifier.verify

    def verify(program, platform):
        result = real(program, platform=platform)
        program.sleepable = not program.sleepable       # an output the cache cannot replay
        return result
    monkeypatch.setattr(verifier, "verify", verify)      # the one verify_cache caches
    obj = _opened(rod)
    verify_cache.verify(obj.programs["indexed"].program, obj.platform, obj.elf.digest, verify)
    assert verify_cache.stats()["uncacheable"] == 1 and verify_cache.stats()["stores"] == 0
    obj.close()


@pytest.mark.parametrize("value", [("a", "tuple"), {"a", "set"}])
def test_a_result_json_cannot_carry_exactly_is_not_stored(rod, monkeypatch, value):
    real = verifier.verify

    def verify(program, platform):
        result = real(program, platform=platform)
        result.prog_type = value        # would read back as a list, or not at all
        return result
    monkeypatch.setattr(verifier, "verify", verify)
    obj = _opened(rod)
    assert verify_cache.verify(obj.programs["indexed"].program, obj.platform, obj.elf.digest,
                               verify).prog_type == value
    assert verify_cache.stats()["uncacheable"] == 1 and verify_cache.stats()["stores"] == 0
    obj.close()


def test_the_least_recently_used_verdicts_go_beyond_the_limit(rod, cache, monkeypatch):
    _load(rod).close()                                  # stored, then used again below
    (mine,) = cache.glob("*.json")
    old = []
    for i in range(4):
        f = cache / f"{i:064x}.json"
        f.write_text("x")
        os.utime(f, ns=(10**18 + i, 10**18 + i))        # older than anything written now
        old.append(f)
    os.utime(mine, ns=(1, 1))                           # the oldest of all...
    _load(rod).close()                                  # ...until this hit touches it
    assert verify_cache.stats()["hits"] == 1 and mine.stat().st_mtime_ns > 10**18 + 3
    monkeypatch.setattr(verify_cache, "MAX_ENTRIES", 3)
    monkeypatch.setitem(verify_cache._state, "pruned", False)
    _load(rod, limit=4).close()                         # a store: prunes once
    left = set(cache.glob("*.json"))
    assert len(left) == 3 and mine in left and old[3] in left
    assert not left & set(old[:3])


def _module_imports(path: Path, module: str) -> set[str]:
    """The modules ``path`` (module ``module``) imports, by any import statement."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = module.split(".")[:-node.level] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out |= {mod} | {f"{mod}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_the_code_version_covers_every_module_the_verifier_imports():
    bpf = Path(verify_cache.__file__).resolve().parent
    hashed = {p.resolve() for p in verify_cache.source_files()}
    todo = [p for p in (bpf / "verifier").glob("*.py")]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        assert path in hashed, f"{path} decides verdicts but is not in the code version"
        parts = path.relative_to(bpf.parent.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if parts[-1] == "__init__":
            module += ".__init__"           # its relative imports start at the package
        for name in _module_imports(path, module):
            if not name.startswith("uringbpf."):
                continue
            rel = Path(*name.split(".")[1:])
            for cand in (bpf.parent / rel.with_suffix(".py"), bpf.parent / rel / "__init__.py"):
                if cand.exists():
                    todo.append(cand.resolve())
