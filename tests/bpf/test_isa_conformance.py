"""Our bpf_conformance-format tests (tests/bpf/data) through the plugin, in-process and as a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from uringbpf.bpf import conformance, isa

sys.path.insert(0, str(Path(__file__).parent))
import conformance_runner  # noqa: E402

DATA = Path(__file__).parent / "data"
FILES = sorted(DATA.glob("*.data"))
PLUGIN = [sys.executable, "-m", "uringbpf", "conformance-plugin"]

# A sample that exercises memory arguments, errors, calls, atomics and v4 opcodes.
SUBPROCESS_SAMPLE = [
    "ldxw-mem.data", "mem-write-back.data", "r1-r2-context.data", "no-mem-r1-zero.data",
    "err-load-null.data", "err-jump-out.data", "err-fall-off.data", "call-local-own-stack.data",
    "callx-helper.data", "helper-unwind-stop.data", "atomic-cmpxchg32-hit.data",
    "sdiv64-intmin-neg1.data", "movsx1664.data", "bswap32-uncond.data", "ja32-far.data",
    "jsle32-matrix.data",
]


def test_enough_data_files_cover_every_group():
    assert len(FILES) >= 100
    groups = set()
    versions = set()
    for f in FILES:
        t = conformance.parse_data_file(f)
        insns = t.program()
        groups |= conformance.required_groups(insns)
        versions.add(conformance.required_cpu_version(insns))
    assert {"base32", "base64", "atomic32", "atomic64", "divmul32", "divmul64", "callx"} <= groups
    assert versions == {1, 2, 3, 4}


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_data_file_in_process(path):
    outcome = conformance_runner.run_file(path)
    assert outcome.status == "PASS", outcome.message


@pytest.mark.parametrize("name", SUBPROCESS_SAMPLE)
def test_data_file_through_plugin_process(name):
    outcome = conformance_runner.run_file(DATA / name, plugin=PLUGIN)
    assert outcome.status == "PASS", outcome.message


def _plugin(args, stdin):
    return subprocess.run(PLUGIN + args, input=stdin, capture_output=True, text=True, timeout=60)


def test_plugin_protocol_memory_and_output_format():
    # mov r0, r2 ; ldxb r3, [r1+1] ; lsh r0, 8 ; or r0, r3 ; exit  -- as the runner sends it
    code = (isa.Insn(isa.ALU64 | isa.MOV | isa.X, 0, 2).encode()
            + isa.Insn(isa.LDX | isa.MEM | isa.B, 3, 1, 1).encode()
            + isa.Insn(isa.ALU64 | isa.LSH, 0, imm=8).encode()
            + isa.Insn(isa.ALU64 | isa.OR | isa.X, 0, 3).encode()
            + isa.Insn(isa.OP_EXIT).encode())
    runner_style = "".join(f"{b:02x}  " for b in code)  # upstream writes "%02x" + two spaces
    mem = "".join(f"{b:02x}  " for b in b"\x10\xab\x00")
    proc = _plugin([mem], runner_style + "\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "3ab\n"   # hex without 0x, like ubpf_plugin


def test_plugin_program_option_and_errors():
    code = " ".join(f"{b:02x}" for b in isa.encode([isa.Insn(isa.ALU64 | isa.MOV, 0, imm=-1),
                                                   isa.Insn(isa.OP_EXIT)]))
    proc = _plugin(["--program", code], "")
    assert proc.returncode == 0 and proc.stdout.strip() == "ffffffffffffffff"
    usage = _plugin(["--help"], "")
    assert usage.returncode == 0 and "conformance-plugin" in usage.stdout
    bad = _plugin(["--bogus"], code + "\n")
    assert bad.returncode == 2 and "unrecognized arguments: --bogus" in bad.stderr
    empty = _plugin([], "\n")
    assert empty.returncode != 0 and "empty program" in empty.stdout
    ragged = _plugin([], "95 00 00\n")
    assert ragged.returncode != 0 and "not a multiple of 8" in ragged.stdout


def test_plugin_jit_option_reports_clearly():
    code = " ".join(f"{b:02x}" for b in isa.encode([isa.Insn(isa.ALU64 | isa.MOV, 0, imm=7),
                                                   isa.Insn(isa.OP_EXIT)]))
    proc = _plugin(["--jit"], code + "\n")
    try:
        import uringbpf.bpf.jit  # noqa: F401
    except ImportError:
        assert proc.returncode != 0 and "JIT" in proc.stdout
    else:
        assert proc.returncode == 0 and proc.stdout.strip() == "7", proc.stdout


def test_parser_follows_upstream_rules(tmp_path):
    f = tmp_path / "t.data"
    f.write_text("# comment\n-- asm\nmov %r0, 1 # trailing\nexit\n-- result\n0x5\n-- result\n7\n")
    t = conformance.parse_data_file(f)
    assert t.result == 7 and t.error is None and "trailing" not in t.asm
    f.write_text("-- map\nx 1 2 3\n-- asm\nexit\n-- result\n1\n")
    assert conformance.parse_data_file(f).skip.startswith("unknown directive")
    f.write_text("-- raw\n0x00000001000000b7\n0x0000000000000095\n-- result\n0x1\n")
    t = conformance.parse_data_file(f)
    assert [i.opcode for i in t.program()] == [0xB7, 0x95]
    assert conformance_runner.run_file(f).status == "PASS"
    f.write_text("-- asm\nexit\n")
    assert conformance_runner.run_file(f).status == "SKIP"


def test_runner_skips_by_cpu_version_and_group(tmp_path):
    f = tmp_path / "v4.data"
    f.write_text("-- asm\nmov %r0, 9\nsdiv %r0, 3\nexit\n-- result\n0x3\n")
    assert conformance_runner.run_file(f, cpu_version=3).status == "SKIP"
    assert conformance_runner.run_file(f, cpu_version=4).status == "PASS"
    g = tmp_path / "callx.data"
    g.write_text("-- asm\nmov %r1, 1\nmov %r2, 5\ncall %r2\nexit\n-- result\n0x1\n")
    assert conformance_runner.run_file(g, groups=set(isa.DEFAULT_GROUPS)).status == "SKIP"
    assert conformance_runner.run_file(g).status == "PASS"


def test_judge_compares_like_upstream():
    t = conformance.DataTest("x", result=0, error="boom")
    assert conformance.judge(t, 1, "boom  \r\nmore", "")[0]
    assert conformance.judge(t, 1, "", "boom\n")[0]
    assert not conformance.judge(t, 1, "other", "")[0]
    assert conformance.judge(t, 0, "0\n", "")[0]          # upstream accepts the expected value
    ok = conformance.DataTest("y", result=0x10)
    assert conformance.judge(ok, 0, "10\n", "")[0]
    assert not conformance.judge(ok, 0, "11\n", "")[0]
    assert not conformance.judge(ok, 1, "failed", "")[0]
    assert not conformance.judge(ok, 0, "zz", "")[0]


def test_runner_main_over_directory(capsys):
    rc = conformance_runner.main([str(DATA), "--include-regex", "^alu64-add"])
    out = capsys.readouterr().out
    assert rc == 0 and "2 passed, 0 failed" in out


ELF_SOURCE = r"""
unsigned long long entry(unsigned char *mem, unsigned long long len)
{
	unsigned long long acc = len << 8;
	for (unsigned long long i = 0; i < len && i < 8; i++)
		acc += mem[i];
	return acc;
}
"""


def test_plugin_elf_option_with_a_compiled_object(tmp_path):
    """--elf: the runner's ELF carries one function in .text; ours comes from uringbpf cc."""
    from uringbpf import tools as cli

    src = tmp_path / "sum.c"
    src.write_text(ELF_SOURCE)
    obj = tmp_path / "sum.o"
    assert cli.main(["cc", str(src), "-o", str(obj)]) == 0
    elf_hex = " ".join(f"{b:02x}" for b in obj.read_bytes())
    proc = _plugin(["05 06 07", "--elf"], elf_hex + "\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert int(proc.stdout, 16) == (3 << 8) + 5 + 6 + 7
    rc, out = conformance.execute(b"\x7fELF garbage", b"", is_elf=True)
    assert rc == 1 and out.strip()
