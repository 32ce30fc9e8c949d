"""The ELF/BTF loader: compile real C with `uringbpf cc`, open, relocate, load, run."""

from __future__ import annotations

import ctypes
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from uringbpf.bpf import btf as btfmod
from uringbpf.bpf import cc, elf, helpers, isa, progtypes, struct_ops
from uringbpf.bpf.elf import BpfLoadError
from uringbpf.bpf.object import BpfObject
from uringbpf.uring import uapi

from test_loader_support import PROGS, build, build_bytes

ENGINES = ("interp", "jit")
PY = sys.executable


def opened(name, **kw):
    return BpfObject.open(build(name, **kw))


# --- the compiler driver -------------------------------------------------------------

def test_cc_cli_builds_an_object_and_prints_include_dir(tmp_path):
    out = tmp_path / "g.o"
    proc = subprocess.run([PY, "-m", "uringbpf", "cc", str(PROGS / "globals.bpf.c"), "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:4] == b"\x7fELF"
    proc = subprocess.run([PY, "-m", "uringbpf", "include-dir"], capture_output=True, text=True)
    inc = Path(proc.stdout.strip())
    for header in ("bpf/bpf_helpers.h", "bpf/bpf_tracing.h", "bpf/bpf_core_read.h", "linux/types.h",
                   "linux/errno.h", "linux/bpf.h", "liburing/io_uring.h", "io_uring/bpf_ops.h"):
        assert (inc / header).is_file(), header


def test_cc_reports_compile_errors(tmp_path):
    bad = tmp_path / "bad.bpf.c"
    bad.write_text("int f(void) { return undeclared_thing; }\n")
    proc = subprocess.run([PY, "-m", "uringbpf", "cc", str(bad), "-o", str(tmp_path / "b.o")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "undeclared_thing" in proc.stderr
    with pytest.raises(cc.CompileError, match="undeclared_thing"):
        cc.compile_c(bad, tmp_path / "b.o")
    with pytest.raises(cc.CompileError, match="no such file"):
        cc.compile_c(tmp_path / "missing.c", tmp_path / "m.o")
    with pytest.raises(cc.CompileError, match="unknown BPF cpu"):
        cc.find_compiler("v9")


def test_headers_need_no_system_headers(tmp_path):
    # with no system include path at all, only our include/ and the compiler's builtins
    src = tmp_path / "inc.bpf.c"
    src.write_text('#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n'
                   '#include <liburing/io_uring.h>\n#include <io_uring/bpf_ops.h>\n'
                   '#include <io_uring/bpf_requests.h>\n#include <io_uring/bpf_ext.h>\n'
                   '#include <bpf/bpf_arena.h>\n#include <bpf/bpf_core_read.h>\n'
                   '#include <bpf/bpf_endian.h>\n#include <linux/io_uring.h>\n'
                   '#include <liburing/io_uring/query.h>\n'
                   'SEC("syscall") int p(void *c) { return IORING_OP_NOP; }\n')
    cc.compile_c(src, tmp_path / "inc.o", extra_flags=["-nostdinc", "-isystem",
                                                         str(cc.include_dir())])
    obj = BpfObject.open(tmp_path / "inc.o")
    assert list(obj.programs) == ["p"]
    obj.close()
    # the 7.0 filter context reuses the 2021 RFC's struct name, so it is compiled apart
    src.write_text('#include <bpf/bpf_helpers.h>\n#include <liburing/io_uring/bpf_filter.h>\n'
                   'SEC("syscall") int p(void *c) { return sizeof(struct io_uring_bpf_ctx); }\n')
    cc.compile_c(src, tmp_path / "inc.o", extra_flags=["-nostdinc"])


def test_cpu_v4_object_has_v4_instructions():
    obj = opened("v4", cpu="v4")
    insns = obj.programs["sdiv"].program.insns
    assert max(isa.cpu_version_needed(i) for i in insns) == 4
    for engine in ENGINES:
        o = opened("v4", cpu="v4")
        o.load(engine=engine)
        assert o.programs["sdiv"]() == 33  # -100 / -3, truncating
        o.close()
    obj.close()


def test_uapi_header_layout_matches_python_uapi():
    obj = opened("uapi")
    ro = obj.rodata
    assert ro.sqe_size == ctypes.sizeof(uapi.Sqe) == 64
    assert ro.cqe_size == ctypes.sizeof(uapi.Cqe)
    assert ro.params_size == ctypes.sizeof(uapi.IoUringParams)
    assert ro.off_user_data == uapi.Sqe.user_data.offset
    assert ro.off_buf_index == uapi.Sqe.buf_index.offset
    assert ro.off_personality == uapi.Sqe.personality.offset
    assert ro.off_file_index == uapi.Sqe.file_index.offset
    assert ro.off_addr3 == uapi.Sqe.addr3.offset
    assert ro.off_cmd == uapi.SQE_CMD_OFFSET
    assert ro.off_cq_off == uapi.IoUringParams.cq_off.offset
    assert ro.op_uring_cmd128 == uapi.IORING_OP_URING_CMD128
    assert ro.setup_sq_rewind == uapi.IORING_SETUP_SQ_REWIND
    assert ro.reg_bpf_filter == uapi.IORING_REGISTER_BPF_FILTER
    assert ro.filter_ctx_size == 40
    assert ro.loop_ops_size == 24    # loop_step, ring_fd, void *priv (7.1 layout)
    prog = obj.programs["nops_loop_step"]
    assert prog.program.kfuncs == ["bpf_io_uring_get_region", "bpf_io_uring_submit_sqes"]
    assert prog.program.attach == "io_uring_bpf_ops.loop_step"
    assert prog.program.sleepable and prog.program.prog_type == "struct_ops"
    st = obj.struct_ops.nops_ops
    assert st.type_name == "io_uring_bpf_ops" and st.is_link
    assert st.loop_step is prog
    obj.close()


# --- programs, relocation, global data ----------------------------------------------

def test_programs_sections_and_subprograms():
    obj = opened("globals")
    assert set(obj.programs) == {"compute", "count_key", "weak_kfunc", "kversion", "printer",
                                 "optional"}
    assert {p.section for p in obj.programs.values()} == {"syscall", "socket"}
    # SEC("?syscall"): not loaded unless asked for
    assert not obj.programs["optional"].autoload and obj.programs["compute"].autoload
    assert obj.programs["printer"].program.prog_type == "socket_filter"
    # compute calls mul_scale (static) and global_add (global) in .text: both appended
    insns = obj.programs["compute"].program.insns
    n_main = next(i for i, ins in enumerate(insns) if ins.is_exit) + 1
    calls = [(pc, ins) for pc, ins in enumerate(insns) if ins.is_call and ins.src == isa.PSEUDO_CALL]
    assert len(calls) == 2
    targets = {pc + ins.imm + 1 for pc, ins in calls}
    assert all(n_main <= t < len(insns) for t in targets) and len(targets) == 2
    assert obj.license == "GPL"
    obj.close()


def test_map_and_global_data_relocations():
    obj = opened("globals")
    insns = obj.programs["count_key"].program.insns
    map_loads = [i for i in insns if i.is_lddw and i.src == isa.PSEUDO_MAP_IDX]
    assert {obj.map_list[i.imm].name for i in map_loads} == {"counts"}
    value_loads = [(pc, i) for pc, i in enumerate(insns) if i.is_lddw and i.src == isa.PSEUDO_MAP_IDX_VALUE]
    assert value_loads
    for pc, i in value_loads:
        assert insns[pc + 1].imm == i.imm64 >> 32   # offset in the second slot
    bss = obj.maps[".bss"]
    last_seen_off = obj.bss._vars["last_seen"][0]
    assert any(obj.map_list[i.imm] is bss and insns[pc + 1].imm == last_seen_off for pc, i in value_loads)
    strings = obj.maps[".rodata.str1.1"]
    assert b"ubpf\0" in bytes(strings.memory())
    assert obj.datasec(".data.custom").custom_data == 77
    obj.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_run_globals_program(engine):
    obj = opened("globals")
    assert obj.rodata.scale == 3 and obj.rodata.negative == -5 and obj.rodata.greeting == b"hi"
    assert obj.data.counter == 100 and obj.bss.last_seen == 0
    obj.rodata.scale = 5
    obj.rodata.greeting = b"Zed"
    obj.datasec(".data.custom").custom_data = 1
    obj.load(engine=engine)
    progs = obj.programs
    assert all(p.engine in ENGINES for p in progs.values() if p.autoload)
    assert progs["compute"]() == 7 * 5 - 5 + 1
    assert obj.bss.last_seen == 35 and obj.data.counter == 101
    assert progs["count_key"]() == 1 and progs["count_key"]() == 2
    assert obj.maps["counts"].lookup_int(35) == 2
    assert progs["printer"]() == ord("Z")
    assert obj.printk == ["value=5 name=ubpf"]
    assert obj.maps["slots"].lookup_int(2) == 0x1234
    assert progs["weak_kfunc"]() == 42          # unresolved __weak kfunc: exists() false, call = 0
    major = int(os.uname().release.split(".")[0])
    assert progs["kversion"]() == major
    assert not progs["optional"].loaded
    obj.close()


def test_rodata_frozen_after_load():
    obj = opened("globals")
    obj.load(engine="interp")
    with pytest.raises(BpfLoadError, match="read-only"):
        obj.rodata.scale = 9
    assert obj.rodata.scale == 3
    rt = obj.programs["compute"].runtime
    addr = obj.rodata.address_of("scale")
    assert rt.mem.find(addr, 4) is not None and not rt.mem.find(addr, 4).writable
    assert obj.maps[".rodata"].memory().readonly
    obj.bss.last_seen = 5                       # .bss stays writable
    assert obj.bss.last_seen == 5
    obj.close()


def test_skeleton_errors():
    obj = opened("globals")
    with pytest.raises(AttributeError, match="no variable 'nope'"):
        obj.bss.nope
    with pytest.raises(ValueError, match="do not fit"):
        obj.rodata.greeting = b"far too long"
    with pytest.raises(BpfLoadError, match="not loaded"):
        obj.programs["compute"]()
    with pytest.raises(AttributeError):
        obj.datasec(".data.none")
    obj.close()


# --- kfuncs --------------------------------------------------------------------------

def _mul(rt, r1, r2, r3, r4, r5):
    return (r1 * r2) & isa.U64


if "ubpf_test_kfunc_mul" not in helpers.KFUNCS:
    helpers.kfunc("ubpf_test_kfunc_mul", (helpers.Arg.SCALAR, helpers.Arg.SCALAR))(_mul)


@pytest.mark.parametrize("engine", ENGINES)
def test_registered_kfunc(engine):
    obj = opened("kfuncs")
    prog = obj.programs["use_kfunc"]
    assert prog.program.kfuncs == ["ubpf_test_kfunc_mul"]
    assert any(i.is_call and i.src == isa.PSEUDO_KFUNC_CALL and i.imm == 0 for i in prog.program.insns)
    obj.load(engine=engine)
    assert prog() == 42
    obj.close()


def test_missing_kfunc_is_a_load_error():
    obj = BpfObject.open(build("kfuncs", defines=("MISSING",)))
    with pytest.raises(BpfLoadError, match=r"use_kfunc.*ubpf_test_kfunc_missing.*not registered"):
        obj.load(engine="interp")
    obj.close()


# --- struct_ops ----------------------------------------------------------------------

class _TestLink:
    def __init__(self, obj, st):
        self.obj, self.st, self.destroyed = obj, st, False

    def destroy(self):
        self.destroyed = True


def _register_test_ops_progtypes() -> None:
    """The verifier needs a program type for each member of the test-only struct_ops type
    (a design registers its own; this test plays the design).  Idempotent."""
    ctx = progtypes.Layout("ubpf_test_ctx", 16, (progtypes.Field("a", 0, 8, read=True, write=False),
                                                 progtypes.Field("b", 8, 8, read=True, write=False)))
    progtypes.register_struct_ops_member("ubpf_test_ops", "combine",
                                         [progtypes.ValueKind.struct(ctx), progtypes.ValueKind.scalar()])
    progtypes.register_struct_ops_member("ubpf_test_ops", "other", [progtypes.ValueKind.scalar()])


@pytest.mark.parametrize("engine", ENGINES)
def test_struct_ops_object(engine):
    attached = []

    def attach(obj, st):
        link = _TestLink(obj, st)
        attached.append(link)
        return link

    _register_test_ops_progtypes()
    struct_ops.register("ubpf_test_ops", attach)
    try:
        obj = opened("ops")
        st = obj.struct_ops.test_ops
        assert st.type_name == "ubpf_test_ops" and st.is_link
        assert st.ring_fd == 17 and st.cookie == 0x1122334455667788
        assert st.combine is obj.programs["combine"] and st.other is obj.programs["other"]
        assert obj.programs["combine"].program.attach == "ubpf_test_ops.combine"
        assert not obj.programs["combine"].sleepable and obj.programs["other"].sleepable
        st.ring_fd = 99
        assert st.ring_fd == 99 and struct.unpack_from("<I", st.data, st.field_offset("ring_fd"))[0] == 99
        with pytest.raises(AttributeError, match="no member"):
            st.set("nonexistent", 1)
        with pytest.raises(BpfLoadError, match="load"):
            obj.attach_struct_ops("test_ops")
        obj.load(engine=engine)
        with pytest.raises(BpfLoadError, match="after load"):
            st.ring_fd = 1
        # struct_ops calling convention: r1 -> array of u64 arguments
        pair = (ctypes.c_uint64 * 2)(10, 20)
        args = (ctypes.c_uint64 * 2)(ctypes.addressof(pair), 4)
        one = (ctypes.c_uint64 * 1)(5)
        for prog in obj.programs.values():
            for buf, name in ((pair, "pair"), (args, "args"), (one, "one")):
                prog.runtime.mem.add(ctypes.addressof(buf), ctypes.sizeof(buf), True, name)
        assert obj.programs["combine"](ctypes.addressof(args)) == 30 + 8
        assert obj.programs["other"](ctypes.addressof(one)) == 4
        assert obj.bss.calls == 2
        link = obj.attach_struct_ops("test_ops")
        assert attached == [link] and link.st is st and link.obj is obj
        with pytest.raises(BpfLoadError, match="no struct_ops map"):
            obj.attach_struct_ops("nope")
        obj.close()
        assert link.destroyed
    finally:
        struct_ops.unregister("ubpf_test_ops")


def test_struct_ops_unregistered_type():
    _register_test_ops_progtypes()
    obj = opened("ops")
    obj.load(engine="interp")
    with pytest.raises(BpfLoadError, match="no design of platform 'default' provides struct_ops type 'ubpf_test_ops'"):
        obj.attach_struct_ops("test_ops")
    obj.close()


# --- engines and the verifier hook --------------------------------------------------

def test_entry_address_runs_the_program_natively():
    for engine in ENGINES:
        obj = opened("globals")
        obj.load(engine=engine)
        prog = obj.programs["compute"]
        fn = ctypes.CFUNCTYPE(ctypes.c_uint64, *[ctypes.c_uint64] * 5)(prog.entry_address)
        assert fn(0, 0, 0, 0, 0) == 7 * 3 - 5 + 77
        obj.close()


def test_verifier_is_called_and_its_error_propagates(monkeypatch):
    import types

    from uringbpf.bpf import object as object_mod
    from uringbpf.errors import BpfVerifierError

    seen = []

    def verify(program, platform):
        assert platform is obj.platform
        seen.append(program.name)
        if program.name == "printer":
            raise BpfVerifierError("printer rejected", "0: (85) call 6\nprinter rejected\n")
        return "ok"

    monkeypatch.setattr(object_mod, "_verifier", types.SimpleNamespace(verify=verify))
    obj = opened("globals")
    obj.programs["printer"].autoload = False
    obj.load(engine="interp")
    assert sorted(seen) == sorted(n for n in obj.programs if n not in ("printer", "optional"))
    assert obj.programs["compute"].verifier_result == "ok"
    obj.close()
    obj = opened("globals")
    # libbpf names the object and the program: "prog 'printer': BPF program load failed"
    with pytest.raises(BpfVerifierError) as info:
        obj.load(engine="interp")
    assert info.value.program == "printer" and info.value.object_path == str(obj.path)
    first = str(info.value).splitlines()[0]
    assert first == f"{obj.path}: prog 'printer': BPF program load failed: printer rejected"
    obj.close()


# --- malformed input ----------------------------------------------------------------

def test_not_elf_and_wrong_machine(tmp_path):
    bad = tmp_path / "x.o"
    bad.write_bytes(b"definitely not an ELF file")
    with pytest.raises(BpfLoadError, match="not an ELF"):
        BpfObject.open(bad)
    with pytest.raises(BpfLoadError, match="cannot read"):
        BpfObject.open(tmp_path / "missing.o")
    src = tmp_path / "host.c"
    src.write_text("int f(void) { return 1; }\n")
    host = tmp_path / "host.o"
    subprocess.run(["cc", "-c", str(src), "-o", str(host)], check=True)
    with pytest.raises(BpfLoadError, match="not BPF"):
        BpfObject.open(host)


def test_truncated_objects_always_give_load_errors():
    data = build_bytes("globals")
    for cut in sorted({1, 3, 10, 63, 64, 100, len(data) // 3, len(data) // 2, len(data) - 100,
                       len(data) - 1}):
        with pytest.raises(BpfLoadError) as info:
            BpfObject.from_bytes(data[:cut], f"cut{cut}")
        assert f"cut{cut}" in str(info.value)


def _rel_entries(data: bytes, ef: elf.ElfFile, sec_name: str):
    rel = ef.section(sec_name)
    return [(rel.offset + i * 16) for i in range(rel.size // 16)]


def test_unknown_relocation_type_names_section_and_insn():
    data = bytearray(build_bytes("globals"))
    ef = elf.parse(bytes(data))
    off = _rel_entries(data, ef, ".relsyscall")[0]
    r_offset, r_info = struct.unpack_from("<QQ", data, off)
    struct.pack_into("<QQ", data, off, r_offset, (r_info & ~0xFFFFFFFF) | 7)
    with pytest.raises(BpfLoadError, match=rf"syscall: unsupported relocation type 7 at insn {r_offset // 8}"):
        BpfObject.from_bytes(bytes(data), "patched.o")


def test_relocation_on_a_plain_instruction():
    data = bytearray(build_bytes("globals"))
    ef = elf.parse(bytes(data))
    text = ef.section("syscall")
    insns = isa.decode(text.data)
    plain = next(pc for pc, i in enumerate(insns) if i.opcode == isa.OP_EXIT)
    offs = [o for o in _rel_entries(data, ef, ".relsyscall")
            if struct.unpack_from("<QQ", data, o)[1] & 0xFFFFFFFF == elf.R_BPF_64_64]
    _, r_info = struct.unpack_from("<QQ", data, offs[0])
    struct.pack_into("<QQ", data, offs[0], plain * 8, r_info)
    with pytest.raises(BpfLoadError, match="neither lddw nor call"):
        BpfObject.from_bytes(bytes(data), "patched.o")


def test_corrupt_btf():
    data = bytearray(build_bytes("globals"))
    ef = elf.parse(bytes(data))
    btf_sec = ef.section(".BTF")
    struct.pack_into("<H", data, btf_sec.offset, 0x1234)
    with pytest.raises(BpfLoadError, match="bad BTF magic"):
        BpfObject.from_bytes(bytes(data), "badbtf.o")
    with pytest.raises(BpfLoadError, match="truncated"):
        btfmod.Btf.parse(btf_sec.data[:40])


def test_random_corruption_never_escapes_as_another_exception():
    data = build_bytes("rings")
    rng = random.Random(1234)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(150):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(buf))
            buf[pos] = rng.randrange(256)
        try:
            obj = BpfObject.from_bytes(bytes(buf), "fuzz.o")
        except BpfLoadError:
            outcomes["error"] += 1
            continue
        outcomes["ok"] += 1
        obj.close()
    assert outcomes["ok"] + outcomes["error"] == 150


def test_btf_decodes_maps_vars_and_funcs():
    ef = elf.parse(build_bytes("globals"))
    b = btfmod.Btf.parse(ef.section(".BTF").data)
    counts = b.find("counts", btfmod.KIND_VAR)
    st = b.resolve(counts.ref)
    assert [m.name for m in st.members] == ["type", "max_entries", "key", "value"]
    assert b.size_of(b.resolve(st.members[2].type).ref) == 4
    func = b.find("compute", btfmod.KIND_FUNC)
    proto = b[func.ref]
    assert proto.kind == btfmod.KIND_FUNC_PROTO and len(proto.params) == 1
    sec = b.find(".rodata", btfmod.KIND_DATASEC)
    names = {b[v.type].name for v in sec.vars}
    assert {"scale", "negative", "greeting"} <= names
    assert b.type_name(b.find("greeting", btfmod.KIND_VAR).ref).endswith("[8]")


def test_legacy_maps_section_with_short_records_loads(tmp_path):
    """libbpf 0.x read records shorter than struct bpf_map_def with the rest zero (#14;
    full records: tests/bpf/test_loader_fidelity.py)."""
    src = tmp_path / "legacy.bpf.c"
    src.write_text('#include <bpf/bpf_helpers.h>\n'
                   'struct old_map_def { unsigned int type, key_size, value_size, max_entries; };\n'
                   'struct old_map_def legacy SEC("maps") = { 2, 4, 4, 1 };\n'
                   'SEC("syscall") int p(void *c) { return 0; }\n')
    cc.compile_c(src, tmp_path / "legacy.o")
    with BpfObject.open(tmp_path / "legacy.o") as obj:
        m = obj.maps["legacy"]
        assert (m.type, m.key_size, m.value_size, m.max_entries, m.map_flags) == (2, 4, 4, 1, 0)


def test_close_frees_maps_and_autoload():
    from uringbpf.bpf import maps as mapsmod
    with BpfObject.open(build("globals")) as obj:
        obj.programs["printer"].autoload = False
        obj.load(engine="interp")
        assert not obj.programs["printer"].loaded and obj.programs["compute"].loaded
        addrs = [m.addr for m in obj.map_list]
        assert all(mapsmod.map_at(a) is not None for a in addrs)
    assert obj.closed and all(mapsmod.map_at(a) is None for a in addrs)
    with pytest.raises(BpfLoadError, match="closed"):
        obj.load()
    # a map nobody holds is freed by the garbage collector
    m = mapsmod.Map("tmp", mapsmod.MAP_TYPE_ARRAY, 4, 4, 1)
    addr = m.addr
    del m
    import gc
    gc.collect()
    assert mapsmod.map_at(addr) is None


ASM_OBJECT = """
	.text
	.globl	add_two
add_two:
	r0 = r1
	r0 += 2
	exit
	.section	"syscall","ax",@progbits
	.globl	prog_a
prog_a:
	r1 = 5
	call add_two
	exit
	.globl	prog_b
prog_b:
	r1 = 40
	call add_two
	exit
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_hand_written_assembly_object(tmp_path, engine):
    # labels without .type/.size: programs end where the next label starts
    src = tmp_path / "a.s"
    src.write_text(ASM_OBJECT)
    out = tmp_path / "a.o"
    subprocess.run(cc.find_compiler("v3") + ["-c", str(src), "-o", str(out)], check=True)
    obj = BpfObject.open(out)
    assert list(obj.programs) == ["prog_a", "prog_b"]
    assert all(len(p.program.insns) == 6 for p in obj.programs.values())
    obj.load(engine=engine)
    assert obj.programs["prog_a"]() == 7 and obj.programs["prog_b"]() == 42
    obj.close()


def test_load_runs_the_real_verifier(tmp_path):
    from uringbpf.bpf import verifier
    obj = opened("globals")
    obj.load(engine="interp")                      # verify=True by default: these programs pass
    assert obj.programs["compute"]() == 7 * 3 - 5 + 77
    obj.close()
    src = tmp_path / "unsafe.bpf.c"
    src.write_text('#include <linux/types.h>\n#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
                   'struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);\n'
                   '  __type(key, __u32); __type(value, __u64); } m SEC(".maps");\n'
                   'SEC("syscall") int unsafe(void *ctx) {\n'
                   '  __u32 k = bpf_get_prandom_u32(); /* not a known key: may be NULL */\n'
                   '  __u64 *v = bpf_map_lookup_elem(&m, &k);\n'
                   '  return (int)*v; /* no NULL check */ }\n')
    cc.compile_c(src, tmp_path / "unsafe.o")
    obj = BpfObject.open(tmp_path / "unsafe.o")
    with pytest.raises(verifier.BpfVerifierError):
        obj.load(engine="interp")
    assert not obj.programs["unsafe"].loaded
    obj.close()


def test_prepare_resolves_kfuncs_without_loading():
    obj = opened("globals")
    programs = obj.prepare()
    assert {p.name for p in programs} == set(obj.programs) - {"optional"}
    weak = obj.programs["weak_kfunc"].program
    # the calls to the missing __weak kfunc are now `r0 = 0`
    assert not any(i.is_call and i.src == isa.PSEUDO_KFUNC_CALL for i in weak.insns)
    assert obj.prepare() and not obj.loaded
    obj.close()
    obj = BpfObject.open(build("kfuncs", defines=("MISSING",)))
    with pytest.raises(BpfLoadError, match="ubpf_test_kfunc_missing"):
        obj.prepare()
    obj.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_reuse_map_shares_a_map_between_objects(engine):
    a = opened("globals")
    b = opened("globals")
    b.reuse_map("counts", a.maps["counts"])
    with pytest.raises(BpfLoadError, match="type differs"):
        b.reuse_map("slots", a.maps["counts"])     # hash of 64 vs array of 4
    a.load(engine=engine)
    b.load(engine=engine)
    for obj in (a, b):
        obj.programs["compute"]()                    # last_seen = 21 in each object's .bss
    assert a.programs["count_key"]() == 1
    assert b.programs["count_key"]() == 2              # same hash map
    assert a.maps["counts"] is b.maps["counts"] and a.maps["counts"].lookup_int(21) == 2
    with pytest.raises(BpfLoadError, match="before load"):
        b.reuse_map("counts", a.maps["counts"])
    b.close()
    assert not a.maps["counts"].closed                # b does not own it
    assert a.programs["count_key"]() == 3
    a.close()
    assert a.maps["counts"].closed


def test_docs_example_runs(tmp_path, capsys):
    import re
    doc = (Path(__file__).resolve().parents[2] / "docs" / "loader.md").read_text()
    c_src = re.search(r"```c\n(.*?)```", doc, re.S).group(1)
    py_src = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    (tmp_path / "count.bpf.c").write_text(c_src)
    proc = subprocess.run([PY, "-m", "uringbpf", "cc", str(tmp_path / "count.bpf.c"), "-o",
                           str(tmp_path / "count.bpf.o")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    exec(compile(py_src.replace('"count.bpf.o"', repr(str(tmp_path / "count.bpf.o"))),
                 "loader.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "10" and out[1] == "6"
    assert out[2] == repr([(5).to_bytes(8, "little"), (10).to_bytes(8, "little")])
    assert out[3] == "['total=5', 'total=10']"


# --- issue #13 items 9 and 12: maps outlive nothing they are used by; nothing runs unverified

def test_closing_a_map_a_loaded_program_uses_raises():
    """A loaded program holds its maps (the kernel's reference): closing one raises EBUSY
    instead of freeing memory the program still writes into."""
    import errno

    from uringbpf.errors import MapError
    obj = opened("globals")
    m = obj.maps["counts"]
    obj.load(engine="interp")
    with pytest.raises(MapError) as info:
        m.close()
    assert info.value.errno == errno.EBUSY and not m.closed
    obj.close()                       # releases the hold, then closes the maps it owns
    assert m.closed


def test_unloaded_object_maps_close_freely():
    obj = opened("globals")
    obj.maps["counts"].close()       # nothing loaded holds it
    assert obj.maps["counts"].closed
    obj.close()


def test_a_broken_verifier_import_fails_loudly():
    """Verification used to be skipped when importing the verifier failed (#13 item 12)."""
    code = ("import sys; sys.modules['uringbpf.bpf.verifier'] = None\n"
            "try:\n    import uringbpf.bpf.object\nexcept ImportError:\n    print('raised')\n"
            "else:\n    print('imported')\n")
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "raised"


def test_jit_failure_raises_unless_fallback_is_asked_for(monkeypatch, caplog):
    """No silent JIT -> interpreter fallback (#13 item 12): it raises; strict_engine=False
    falls back and says so on the uringbpf logger."""
    from uringbpf.bpf import jit as jit_mod
    from uringbpf.errors import JitError

    def broken(program, runtime, checked=False, tier=None):
        raise JitError("cannot compile this", 0)

    monkeypatch.setattr(jit_mod, "compile", broken)
    obj = opened("globals")
    with pytest.raises(JitError, match="cannot compile this"):
        obj.load(engine="jit")
    obj.close()
    obj = opened("globals")
    with caplog.at_level("WARNING", logger="uringbpf"):
        obj.load(engine="jit", strict_engine=False)
    assert obj.programs["compute"].engine == "interp"
    assert isinstance(obj.programs["compute"].jit_error, JitError)
    assert any("runs on the interpreter" in r.getMessage() for r in caplog.records)
    obj.close()


def test_close_while_the_llvm_code_is_pending(monkeypatch):
    """Closing an object whose programs still wait for LLVM's code (the JIT's auto tier):
    the background switch must not read the released maps (it raised MapError in its
    thread), and a function still held afterwards refuses to run."""
    import threading

    from uringbpf.bpf import jit as jit_mod
    from uringbpf.bpf.memory import BpfRuntimeError

    monkeypatch.setenv("URINGBPF_JIT_CACHE", "0")
    failures = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    jit_mod.tiering_wait()
    jit_mod.cache_clear()                # an earlier test's LLVM code would come at once
    obj = opened("globals")
    with jit_mod._llvm_lock:             # the background compile waits for the close
        obj.load(engine="jit", jit_tier="tiered")
        fn = obj.programs["compute"].jit
        assert fn.tier == "direct"
        obj.close()
    jit_mod.tiering_wait()
    assert failures == []
    assert fn.tier == "direct"           # never switched: it was closed first
    with pytest.raises(BpfRuntimeError, match="closed"):
        fn()


def test_unverified_programs_get_checked_jit_code():
    obj = opened("globals")
    obj.load(engine="jit", verify=False)
    assert obj.programs["compute"].jit.checked and obj.programs["compute"].verifier_result is None
    obj.close()
    obj = opened("globals")
    obj.load(engine="jit")
    assert not obj.programs["compute"].jit.checked
    obj.close()
