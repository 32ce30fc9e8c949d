"""`uringbpf verify`, the verify() API (statistics, logs) and program-type lookup."""

from __future__ import annotations

import pathlib

import pytest

import corpus_lib
from uringbpf.bpf import isa, progtypes, verifier

corpus_lib.register_test_env()
REPO = pathlib.Path(__file__).resolve().parents[3]

SOURCE = r"""
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("socket")
int checked(unsigned char *data, unsigned long len)
{
	unsigned int sum = 0;
	if (len < 16)
		return 0;
	for (int i = 0; i < 16; i++)
		sum += data[i];
	return sum;
}

SEC("socket")
int unchecked(unsigned char *data, unsigned long len)
{
	return data[8];
}
"""


@pytest.fixture(scope="module")
def objfile(tmp_path_factory):
    from uringbpf.bpf import cc
    d = tmp_path_factory.mktemp("vobj")
    src = d / "progs.bpf.c"
    src.write_text(SOURCE)
    return str(cc.compile_c(src, d / "progs.bpf.o"))


def test_verify_object_reports_rejection_with_kernel_style_log(objfile):
    from uringbpf.bpf.object import BpfObject
    obj = BpfObject.open(objfile)
    verdicts = {v.name: v for v in verifier.verify_object(obj)}
    assert verdicts["checked"].ok and verdicts["checked"].result.prog_type == "socket_filter"
    bad = verdicts["unchecked"]
    assert not bad.ok and "invalid bpf_context access" in bad.error.message
    # the offending instruction: "N: (71) r0 = *(u8 *)(r1 +8)" and the register state
    assert "(71)" in bad.log and "R1=ctx(off=0)" in bad.log
    assert "processed" in bad.log
    # the error names the object and the program, as libbpf does
    assert "prog 'unchecked'" in str(bad.error)


def test_verify_object_program_filter_and_log_level(objfile):
    from uringbpf.bpf.object import BpfObject
    obj = BpfObject.open(objfile)
    verdicts = verifier.verify_object(obj, programs=["checked"], log_level=2)
    assert [v.name for v in verdicts] == ["checked"]
    assert "R2=scalar(" in verdicts[0].log            # register state after instructions
    assert "processed" in verdicts[0].log and "peak_states" in verdicts[0].log
    with pytest.raises(KeyError):
        verifier.verify_object(obj, programs=["nosuch"])


def test_verify_api_stats_and_error_log():
    prog = corpus_lib.load_corpus()
    by_name = {c.name: c for c in prog}
    res = verifier.verify(by_name["loop_count_to_100"].program())
    assert res.processed_insns > 300          # the loop was followed, not summarised
    assert res.total_states > 0 and res.peak_states > 0
    assert res.prog_type == "socket_filter"
    assert "processed" in res.stats_line()
    res = verifier.verify(by_name["stack_lowest_slot_ok"].program())
    assert res.max_stack == 512 and res.stack_depths[0] == 512
    with pytest.raises(verifier.BpfVerifierError) as info:
        verifier.verify(by_name["map_lookup_not_null_checked"].program(), log_level=1)
    err = info.value
    assert err.message == "R0 invalid mem access 'map_value_or_null'"
    assert err.pc == 6
    assert "6: (79) r0 = *(u64 *)(r0 " in err.log
    assert "R0=map_value_or_null(off=0,ks=4,vs=8" in err.log
    assert "call" in err.log                  # log level 1 traces the path


def test_budget_is_enforced():
    by_name = {c.name: c for c in corpus_lib.load_corpus()}
    with pytest.raises(verifier.BpfVerifierError, match="too large"):
        verifier.verify(by_name["loop_count_to_100"].program(), max_insns=100)


def test_prog_type_for_sections_and_struct_ops():
    mk = lambda section, attach="": isa.Program("p", [isa.Insn(isa.OP_EXIT)], section=section, attach=attach)
    assert progtypes.prog_type_for(mk("socket")).name == "socket_filter"
    assert progtypes.prog_type_for(mk("socket/x")).name == "socket_filter"
    assert progtypes.prog_type_for(mk("syscall")).name == "syscall"
    pt = progtypes.prog_type_for(mk("struct_ops/anything", "uringbpf_test_ops.test_loop"))
    assert pt.name == "test_loop" and pt.ret_range == (0, 1)
    assert progtypes.prog_type_for(mk("struct_ops.s/test_loop_s")).name == "test_loop_s"
    with pytest.raises(progtypes.ProgTypeError):
        progtypes.prog_type_for(mk("struct_ops/nobody_registered_this"))
    with pytest.raises(progtypes.ProgTypeError):
        progtypes.prog_type_for(mk("kprobe/do_sys_open"))
    with pytest.raises(verifier.BpfVerifierError, match="no struct_ops member"):
        verifier.verify(mk("struct_ops/nobody_registered_this"))


def test_register_section_type_overrides_and_sleepable():
    pt = progtypes.ProgType("unit_sleepy", ctx="none", sleepable=True)
    progtypes.register_section_type("unit_sleepy", pt)
    prog = isa.Program("p", [isa.Insn(isa.ALU64 | isa.MOV, 0, 0, 0, 0), isa.Insn(isa.OP_EXIT)],
                       section="unit_sleepy/x")
    assert progtypes.prog_type_for(prog) is pt
    assert progtypes.is_sleepable(prog, pt)
    assert verifier.verify(prog).prog_type == "unit_sleepy"
    # r1 holds nothing in a "none" context program
    prog.insns[0] = isa.Insn(isa.ALU64 | isa.MOV | isa.X, 0, 1)
    with pytest.raises(verifier.BpfVerifierError, match="R1 !read_ok"):
        verifier.verify(prog)


def _example_sources():
    return sorted((REPO / "examples").glob("*/**/*.bpf.c"))  # */: examples/<design> are symlinks


@pytest.mark.parametrize("src", _example_sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_examples_verify(src, tmp_path):
    """Every BPF program the designs ship passes (no false rejects), verified as
    ``load()`` and libbpf do (``.rodata`` frozen: its values are constants)."""
    from uringbpf.bpf import cc
    from uringbpf.bpf.object import BpfObject
    out = cc.compile_c(src, tmp_path / (src.stem + ".o"))
    obj = BpfObject.open(str(out))
    verdicts = verifier.verify_object(obj)
    assert verdicts
    for v in verdicts:
        assert v.ok, f"{v.name}: {v.error}"
        assert v.result.processed_insns > 0


def test_log_diffs_against_the_kernels_syntax():
    """#16: the log uses the kernel's instruction syntax and layout."""
    src = """
r6 = r1
r1 = r10
r1 += -8
r2 = 0
r3 = 4
call kfunc bpf_iter_num_new
r1 = r10
r1 += -8
call kfunc bpf_iter_num_next
if r0 == 0 goto out
r7 = *(u32 *)(r0 + 0)
r1 = r10
r1 += -8
call kfunc bpf_iter_num_destroy
r0 = *(u8 *)(r6 + 8)
exit
out:
r1 = r10
r1 += -8
call kfunc bpf_iter_num_destroy
r0 = 0
exit
"""
    case = corpus_lib.Case("t", "reject", "", "socket_filter", [], src)
    with pytest.raises(verifier.BpfVerifierError) as info:
        verifier.verify(case.program(), log_level=1)
    log = info.value.log
    lines = log.splitlines()
    assert not lines[0].startswith("from ")            # no "from branch to 0:" first line
    assert "call bpf_iter_num_new#" in log and "kfunc#" not in log   # kfuncs by name
    assert "if r0 == 0x0 goto pc+" in log                # hex immediates, pc-relative
    assert "r7 = *(u32 *)(r0 +0)" in log                 # (reg +off)
    assert "from 8 to 9: R0=mem(off=0,sz=4)" in log       # the active path of next(), kernel-style
    bad = [ln for ln in lines if ln.endswith("r0 = *(u8 *)(r6 +8)")]
    assert len(bad) == 1, log                            # the rejected insn printed once
    # the error message follows the rejected instruction
    at = lines.index(bad[0])
    assert lines[at + 1].startswith("R6(r=")              # our buffer's hint, then
    assert lines[at + 2].startswith("invalid bpf_context access")   # the kernel's message
