"""Opening an object (issue #19, first run): relocation gives each program its own
instruction slots, also for the subprograms programs share, and symbols are found per
section (no scan of the whole symbol table per function)."""

from __future__ import annotations

from uringbpf.bpf import isa
from uringbpf.bpf.object import BpfObject

from test_loader_support import build


def test_programs_do_not_share_instruction_slots():
    obj = BpfObject.open(build("globals"))
    seen: dict[int, str] = {}
    for name, prog in obj.programs.items():
        for insn in prog.program.insns:
            assert seen.setdefault(id(insn), name) == name, "slot shared between programs"
    for code in obj._code.values():           # nor with the decoded sections
        assert not {id(i) for i in code} & set(seen)
    # a program's rewrite (kfunc resolution, verification) leaves the others as they were
    first, second = list(obj.programs.values())[:2]
    before = [isa.Insn(i.opcode, i.dst, i.src, i.off, i.imm, i.imm64)
              for i in second.program.insns]
    for insn in first.program.insns:
        insn.imm ^= 1
    assert second.program.insns == before
    obj.close()


def test_relocated_slots_keep_every_field():
    obj = BpfObject.open(build("globals"))
    for prog in obj.programs.values():
        # relocation only writes imm/src/imm64 of relocated slots: opcode, dst and off are the
        # decoded section's, slot for slot, for the program's own function
        sec = next(i for i, fs in obj._funcs.items() if any(x.name == prog.name for x in fs))
        fn = next(x for x in obj._funcs[sec] if x.name == prog.name)
        code = obj._code[sec][fn.start:fn.end]
        mine = prog.program.insns[:len(code)]
        assert [(i.opcode, i.dst, i.off) for i in mine] == [(i.opcode, i.dst, i.off) for i in code]
    obj.close()
