"""bpf/kernel_exec on the host kernel: the parts that do not need Linux 7.1+.

The loop design in a 7.2 kernel is covered by tests/kernel (``make kernel-test``); here
a socket filter goes through the same executor (maps, global data, BPF_PROG_LOAD) into
the host kernel and runs on real 127.0.0.1 UDP traffic.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import textwrap

import pytest

from uringbpf import BpfObject
from uringbpf.errors import BpfLoadError
from uringbpf.bpf import btf as btfmod
from uringbpf.bpf import cc, kernel_exec

SO_ATTACH_BPF = 50

FILTER_C = textwrap.dedent("""\
    #include <linux/types.h>
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>

    char LICENSE[] SEC("license") = "GPL";

    const volatile __u32 keep = 1;     /* .rodata: 0 drops every packet */
    __u64 packets;                     /* .bss */
    __u64 bias = 1000;                 /* .data */

    struct {
        __uint(type, BPF_MAP_TYPE_ARRAY);
        __uint(max_entries, 1);
        __type(key, __u32);
        __type(value, __u64);
    } seen SEC(".maps");

    SEC("socket")
    int count(struct __sk_buff *skb)
    {
        __u32 k = 0;
        __u64 *v = bpf_map_lookup_elem(&seen, &k);

        if (v)
            __sync_fetch_and_add(v, 1);
        packets++;
        bias++;
        return keep ? skb->len : 0;
    }
    """)

BAD_C = textwrap.dedent("""\
    #include <linux/types.h>
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>

    char LICENSE[] SEC("license") = "GPL";

    SEC("socket")
    int oob(struct __sk_buff *skb)
    {
        /* socket filters may not read skb->data: "invalid bpf_context access" */
        return *(volatile int *)(long)skb->data;
    }
    """)


GLOBAL_C = textwrap.dedent("""\
    #include <linux/types.h>
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>

    char LICENSE[] SEC("license") = "GPL";
    __u64 calls;
    const volatile __u32 add = 1;

    /* global: verified on its own, from its BTF prototype (func_info) */
    __noinline int scale(int x)
    {
        calls++;
        return x * 2 + add;
    }

    static __noinline int twice(int x) { return x + x; }

    __noinline int len_of(struct __sk_buff *skb)
    {
        return skb ? skb->len : 0;
    }

    SEC("socket")
    int count(struct __sk_buff *skb)
    {
        return scale(twice(len_of(skb))) > 0 ? skb->len : 0;
    }
    """)

# A global function may be called with NULL for a pointer argument (its prototype says
# nothing more): reading through it unchecked is refused -- only when the loader sends
# func_info; without it the kernel verifies the call in its caller's context and accepts.
GLOBAL_NULL_C = textwrap.dedent("""\
    #include <linux/types.h>
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>

    char LICENSE[] SEC("license") = "GPL";
    __u32 word = 7;

    __noinline int read_word(__u32 *p)
    {
        return *p;
    }

    SEC("socket")
    int count(struct __sk_buff *skb)
    {
        return read_word(&word);
    }
    """)


# SEC("?name"): not loaded by default (libbpf); .BTF.ext names the section with its "?"
LAZY_C = textwrap.dedent("""\
    #include <linux/types.h>
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>

    char LICENSE[] SEC("license") = "GPL";

    static __noinline int twice(int x) { return x + x; }

    SEC("?socket")
    int lazy(struct __sk_buff *skb)
    {
        return twice(skb->len) ? skb->len : 0;
    }
    """)


def _kernel_bpf_usable() -> str | None:
    try:
        fd = kernel_exec.map_create(2, 4, 8, 1)
    except kernel_exec.KernelLoadError as exc:
        return f"BPF_MAP_CREATE: {exc}"
    os.close(fd)
    return None


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    why = _kernel_bpf_usable()
    if why is not None:
        pytest.skip(f"bpf(2) unusable here: {why}")
    d = tmp_path_factory.mktemp("kexec")
    out = {}
    for name, src in (("filter", FILTER_C), ("bad", BAD_C), ("global", GLOBAL_C),
                      ("global_null", GLOBAL_NULL_C), ("lazy", LAZY_C)):
        c = d / f"{name}.bpf.c"
        c.write_text(src)
        out[name] = cc.compile_cached(c)
    return out


def _udp_pair():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.5)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return rx, tx


def _echo_through(obj, prog: str, payload: bytes) -> bytes:
    """Attach kernel program ``prog`` of ``obj`` to a fresh 127.0.0.1 UDP socket, send it
    ``payload`` and return what the socket receives."""
    rx, tx = _udp_pair()
    try:
        rx.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, obj._kernel.programs[prog].fd)
        tx.sendto(payload, rx.getsockname())
        return rx.recv(64)
    finally:
        rx.close()
        tx.close()


@pytest.mark.parametrize("keep", [1, 0])
def test_socket_filter_runs_in_kernel(objects, keep):
    obj = BpfObject.open(objects["filter"])
    rx, tx = _udp_pair()
    try:
        obj.rodata.keep = keep
        obj.load("interp", executor="kernel")
        assert obj.executor == "kernel"
        prog = obj.programs["count"]
        fd = obj._kernel.programs["count"].fd
        rx.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, fd)
        for i in range(3):
            tx.sendto(b"x" * (i + 1), rx.getsockname())
        got = []
        for _ in range(3 if keep else 1):
            try:
                got.append(rx.recv(64))
            except socket.timeout:
                break
        assert got == ([b"x", b"xx", b"xxx"] if keep else [])
        # the program's globals are the kernel's memory
        assert obj.bss.packets == 3
        assert obj.data.bias == 1003
        # a BTF map: read back through the syscall
        seen_fd = obj._kernel.map_fds[obj.map_list.index(obj.maps["seen"])]
        assert struct.unpack("<Q", kernel_exec.map_lookup(seen_fd, bytes(4), 8))[0] == 3
        with pytest.raises(Exception, match="kernel"):
            prog()
        with pytest.raises(Exception):
            obj.rodata.keep = 1            # frozen in the kernel
    finally:
        rx.close()
        tx.close()
        obj.close()


def test_kernel_refusal_carries_errno_and_log(objects):
    obj = BpfObject.open(objects["bad"])
    try:
        with pytest.raises(kernel_exec.KernelLoadError) as info:
            obj.load("interp", executor="kernel")
        assert info.value.errno == errno.EACCES
        assert "processed" in info.value.log or "invalid" in info.value.log
        # line_info went with the load: the log names the source line it refuses
        assert "; return *(volatile int *)(long)skb->data; @ bad.bpf.c:11" in info.value.log
        assert not obj.loaded
    finally:
        obj.close()


def test_executor_names():
    assert kernel_exec.resolve_executor("emulated") == "emulated"
    assert kernel_exec.resolve_executor("kernel") == "kernel"
    assert kernel_exec.resolve_executor("auto") == ("kernel" if kernel_exec.has_loop_ops() else "emulated")
    with pytest.raises(ValueError):
        kernel_exec.resolve_executor("fast")


def _btf(types: bytes, strs: bytes) -> bytes:
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strs))
    return hdr + types + strs


def test_vmlinux_btf_scan_finds_struct_members_and_funcs():
    # strings: 1 "int", 5 "ops", 9 "step", 14 "ring_fd", 22 "priv", 27 "kf"
    strs = b"\0int\0ops\0step\0ring_fd\0priv\0kf\0"
    types = b""
    types += struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32)                # [1] int
    types += struct.pack("<III", 0, 2 << 24, 1)                                 # [2] ptr -> int
    types += struct.pack("<III", 5, (4 << 24) | 3, 24)                          # [3] struct ops
    types += struct.pack("<III", 9, 2, 0) + struct.pack("<III", 14, 1, 64) + struct.pack("<III", 22, 2, 128)
    types += struct.pack("<III", 0, (13 << 24) | 1, 1) + struct.pack("<II", 0, 1)  # [4] proto(int)
    types += struct.pack("<III", 27, 12 << 24, 4)                               # [5] func kf
    vm = kernel_exec.VmlinuxBtf(_btf(types, strs))
    st = vm.struct("ops")
    assert st.type_id == 3 and st.size == 24
    assert [(m.name, m.index, m.offset) for m in st.members.values()] == \
        [("step", 0, 0), ("ring_fd", 1, 8), ("priv", 2, 16)]
    assert vm.funcs == {"kf": 5}
    assert vm.struct("nope") is None


def test_tiny_btf_is_accepted_by_the_kernel():
    if _kernel_bpf_usable() is not None:
        pytest.skip("bpf(2) unusable here")
    fd = kernel_exec.btf_load(kernel_exec._tiny_btf())
    assert fd >= 0
    os.close(fd)


def test_global_functions_go_with_func_info(objects):
    """The object's BTF is uploaded and each program carries func_info, as libbpf sends
    it: the kernel then verifies global functions from their prototypes."""
    obj = BpfObject.open(objects["global"])
    rx, tx = _udp_pair()
    try:
        func_info = kernel_exec.prog_func_info(obj, obj.programs["count"])
        recs = [struct.unpack_from("<II", func_info, i) for i in range(0, len(func_info), 8)]
        assert [o for o, _ in recs] == sorted(obj.programs["count"].program.func_names)
        assert [obj.btf[t].name for _, t in recs] == ["count", "len_of", "twice", "scale"]
        obj.load("interp", executor="kernel")
        log = obj._kernel.programs["count"].log
        assert "('scale') is safe for any args that match its prototype" in log
        rx.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, obj._kernel.programs["count"].fd)
        tx.sendto(b"abc", rx.getsockname())
        assert rx.recv(64) == b"abc"
        assert obj.bss.calls == 1
    finally:
        rx.close()
        tx.close()
        obj.close()


def test_global_function_verdict_matches_the_emulation(objects):
    """An unchecked read through a global function's pointer argument: refused by the
    kernel (with func_info) and by our verifier alike."""
    kobj = BpfObject.open(objects["global_null"])
    eobj = BpfObject.open(objects["global_null"])
    try:
        with pytest.raises(kernel_exec.KernelLoadError) as info:
            kobj.load("interp", executor="kernel")
        assert info.value.errno == errno.EACCES and "read_word" in info.value.log
        with pytest.raises(Exception, match="(?i)null|invalid|mem"):
            eobj.load("interp")
    finally:
        kobj.close()
        eobj.close()


def test_sanitized_btf_keeps_ids_and_loads(objects):
    """.bss/.data/.rodata DATASECs and their VARs become kernel-loadable stand-ins; FUNC
    ids stay where func_info points."""
    obj = BpfObject.open(objects["global"])
    try:
        raw = bytes(obj.elf.section(".BTF").data)
        clean = kernel_exec.sanitize_btf(raw)
        before, after = btfmod.Btf.parse(raw), btfmod.Btf.parse(clean)
        assert len(before.types) == len(after.types)
        assert any(t.kind == btfmod.KIND_DATASEC for t in before.types[1:])
        assert not any(t.kind in (btfmod.KIND_DATASEC, btfmod.KIND_VAR) for t in after.types[1:])
        assert after.find("scale", btfmod.KIND_FUNC).id == before.find("scale", btfmod.KIND_FUNC).id
        fd = kernel_exec.btf_load(clean)
        os.close(fd)
        with pytest.raises(kernel_exec.KernelLoadError):
            kernel_exec.btf_load(raw)       # what clang wrote is not loadable as is
    finally:
        obj.close()


def _line_records(blob: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack_from("<IIII", blob, i) for i in range(0, len(blob), 16)]


def test_line_info_follows_the_placed_functions(objects):
    """line_info as check_btf_line wants it: strictly increasing, inside the program, on
    first slots only, one record at every function's first slot (subprograms sit where
    our loader placed them, not where they were in .text), string offsets into .BTF."""
    obj = BpfObject.open(objects["global"])
    try:
        prog = obj.programs["count"]
        insns = prog.program.insns
        recs = _line_records(kernel_exec.prog_line_info(obj, prog))
        offs = [r[0] for r in recs]
        assert offs == sorted(set(offs)) and offs[0] == 0 and offs[-1] < len(insns)
        assert set(prog.program.func_names) <= set(offs)
        assert all(insns[o].opcode for o in offs)          # never an lddw's second slot
        strs = obj.btf.strings
        for _o, file_off, line_off, line_col in recs:
            assert strs[file_off:].split(b"\0", 1)[0].endswith(b"global.bpf.c")
            assert line_off < len(strs) and line_col >> 10 > 0
        # each function's records moved with it: every record of a function's slots is a
        # line of that function's body in the source
        src = GLOBAL_C.splitlines()
        names = prog.program.func_names
        defs = sorted((n + 1, name) for n, text in enumerate(src) for name in names.values()
                      if not text[:1].isspace() and f" {name}(" in text)

        def enclosing(line: int) -> str:
            return [name for n, name in defs if n <= line][-1]

        starts = sorted(names)
        for o, _f, _l, line_col in recs:
            owner = names[[st for st in starts if st <= o][-1]]
            assert enclosing(line_col >> 10) == owner, (o, owner, src[(line_col >> 10) - 1])
    finally:
        obj.close()


@pytest.mark.parametrize("name", ["filter", "global"])
def test_load_whose_log_overflows_goes_again_without_a_log(objects, monkeypatch, name):
    """A level-1 log that outgrows its buffer at any point of the verification makes the
    kernel answer ENOSPC after a successful verification (bpf_vlog_finalize); the load is
    repeated without a log, and with no log buffer: a buffer without a log level is
    EINVAL with an empty log (bpf_verifier_log_attr_valid), which is how 7.2 seemed to
    refuse examples/loop/cksum.bpf.c once line_info made its log peak past 1 MiB."""
    monkeypatch.setattr(kernel_exec, "_LOG_SIZE", 256)
    obj = BpfObject.open(objects[name])
    try:
        obj.load("interp", executor="kernel")
        assert _echo_through(obj, "count", b"abcd") == b"abcd"
    finally:
        obj.close()


def test_line_info_of_a_program_in_a_question_mark_section(objects):
    """A SEC("?socket") program (autoload off) and its subprogram get their line_info:
    the records are filed under the section's full name, "?" included."""
    obj = BpfObject.open(objects["lazy"])
    try:
        prog = obj.programs["lazy"]
        assert not prog.autoload
        offs = [r[0] for r in _line_records(kernel_exec.prog_line_info(obj, prog))]
        assert set(prog.program.func_names) <= set(offs) and offs == sorted(set(offs))
        prog.autoload = True
        obj.load("interp", executor="kernel")
        assert _echo_through(obj, "lazy", b"xyz") == b"xyz"
    finally:
        obj.close()


def test_btf_ext_line_info_parser_refuses_malformed_sections(objects):
    """bpf/btf.ext_line_info (kernel_exec's line_info and lang's source map read it):
    the object's own section parses; truncated, foreign or overlong ones raise."""
    obj = BpfObject.open(objects["global"])
    try:
        ext = bytes(obj.elf.section(".BTF.ext").data)
        strs = obj.btf.strings
        lines = btfmod.ext_line_info(ext, strs)
        assert set(lines) == {"socket", ".text"} and all(lines.values())
        assert lines["socket"][0].insn == 0 and lines["socket"][0].line > 0
        hdr_len, line_off = struct.unpack_from("<I", ext, 4)[0], struct.unpack_from("<I", ext, 16)[0]
        count_at = hdr_len + line_off + 4 + 4          # the first section's record count
        too_many = bytearray(ext)
        struct.pack_into("<I", too_many, count_at, 1 << 20)
        for bad, what in ((ext[:10], "truncated"), (b"\0\0" + ext[2:], "magic"),
                          (bytes(too_many), "out of bounds")):
            with pytest.raises(BpfLoadError, match=what):
                btfmod.ext_line_info(bad, strs)
    finally:
        obj.close()
