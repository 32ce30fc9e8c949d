"""Instruction text of the verifier log, as the kernel prints it (kernel/bpf/disasm.c).

``insn_text`` is the one formatter the verifier uses, so a log diffs cleanly against the
kernel's: ``r0 = *(u8 *)(r1 +8)``, ``if r0 == 0x0 goto pc+3``, ``goto pc+140``,
``call bpf_map_lookup_elem#1``, ``call bpf_iter_num_new#0`` (kfuncs by name),
``r1 = atomic64_fetch_add((u64 *)(r10 -8), r1)``.  (``bpf/disasm.py`` is the LLVM-style
disassembler of ``uringbpf disasm``; this is the log's own, fixed syntax.)
"""

from __future__ import annotations

from typing import Callable

from .. import isa

_ALU_SYM = {
    isa.ADD: "+=", isa.SUB: "-=", isa.MUL: "*=", isa.DIV: "/=", isa.OR: "|=", isa.AND: "&=",
    isa.LSH: "<<=", isa.RSH: ">>=", isa.MOD: "%=", isa.XOR: "^=", isa.MOV: "=", isa.ARSH: "s>>=",
}
_JMP_SYM = {
    isa.JEQ: "==", isa.JGT: ">", isa.JGE: ">=", isa.JSET: "&", isa.JNE: "!=", isa.JSGT: "s>",
    isa.JSGE: "s>=", isa.JLT: "<", isa.JLE: "<=", isa.JSLT: "s<", isa.JSLE: "s<=",
}
_SZ = {isa.B: "u8", isa.H: "u16", isa.W: "u32", isa.DW: "u64"}
_SSZ = {isa.B: "s8", isa.H: "s16", isa.W: "s32", isa.DW: "s64"}
_ATOMIC_OP = {isa.ATOMIC_ADD: "add", isa.ATOMIC_OR: "or", isa.ATOMIC_AND: "and",
              isa.ATOMIC_XOR: "xor"}


def _mem(reg: int, off: int) -> str:
    return f"(r{reg} {off:+d})"


def insn_text(insn: isa.Insn, pc: int | None = None, kfunc_name: Callable[[int], str] | None = None,
              helper_name: Callable[[int], str | None] | None = None) -> str:
    """One instruction in the kernel's log syntax.  ``kfunc_name(imm)`` and
    ``helper_name(id)`` give call targets their names (``call NAME#ID``)."""
    cls, op = insn.cls, insn.op
    if insn.opcode == 0:
        return "(lddw second slot)"
    if cls in (isa.ALU, isa.ALU64):
        r = "r" if cls == isa.ALU64 else "w"
        dst = f"{r}{insn.dst}"
        if op == isa.NEG:
            return f"{dst} = -{dst}"
        if op == isa.END:
            if cls == isa.ALU64:
                return f"r{insn.dst} = bswap{insn.imm} r{insn.dst}"
            kind = "be" if insn.source == isa.TO_BE else "le"
            return f"r{insn.dst} = {kind}{insn.imm} r{insn.dst}"
        src = f"{r}{insn.src}" if insn.source == isa.X else str(isa.to_s32(insn.imm & isa.U32))
        if isa.is_addr_space_cast(insn):   # the kernel's print_bpf_insn spelling
            return f"{dst} = addr_space_cast(r{insn.src}, {(insn.imm & 0xFFFFFFFF) >> 16}, {insn.imm & 0xFFFF})"
        if op == isa.MOV and insn.off and insn.source == isa.X:
            return f"{dst} = (s{insn.off}){r}{insn.src}"
        if op in (isa.DIV, isa.MOD) and insn.off == 1:
            return f"{dst} s{_ALU_SYM[op]} {src}"
        return f"{dst} {_ALU_SYM.get(op, '?=')} {src}"
    if cls == isa.LD:
        if insn.is_lddw:
            if insn.src == isa.PSEUDO_MAP_IDX:
                return f"r{insn.dst} = map[id:{insn.imm}]"
            if insn.src == isa.PSEUDO_MAP_IDX_VALUE:
                off = (insn.imm64 >> 32) & isa.U32
                return f"r{insn.dst} = map[id:{insn.imm}][0]+{off}"
            if insn.src == isa.PSEUDO_FUNC:
                return f"r{insn.dst} = func pc{insn.imm:+d}"
            return f"r{insn.dst} = {insn.imm64:#x}"
        return f"r0 = *({_SZ[insn.size]} *)skb[{insn.imm}]"
    if cls == isa.LDX:
        sz = (_SSZ if insn.mode == isa.MEMSX else _SZ)[insn.size]
        return f"r{insn.dst} = *({sz} *){_mem(insn.src, insn.off)}"
    if cls == isa.ST:
        return f"*({_SZ[insn.size]} *){_mem(insn.dst, insn.off)} = {insn.imm}"
    if cls == isa.STX:
        if insn.mode != isa.ATOMIC:
            return f"*({_SZ[insn.size]} *){_mem(insn.dst, insn.off)} = r{insn.src}"
        sz, a = _SZ[insn.size], _mem(insn.dst, insn.off)
        bits = "64" if insn.size == isa.DW else ""
        r = "r" if insn.size == isa.DW else "w"
        if insn.imm == isa.LOAD_ACQ:
            return f"{r}{insn.dst} = load_acquire(({sz} *){_mem(insn.src, insn.off)})"
        if insn.imm == isa.STORE_REL:
            return f"store_release(({sz} *){a}, {r}{insn.src})"
        if insn.imm == isa.XCHG:
            return f"{r}{insn.src} = atomic{bits}_xchg(({sz} *){a}, {r}{insn.src})"
        if insn.imm == isa.CMPXCHG:
            return f"r0 = atomic{bits}_cmpxchg(({sz} *){a}, r0, {r}{insn.src})"
        if insn.imm not in isa.ATOMIC_OPS:
            return f"BUG_{insn.opcode:02x}"     # kernel/bpf/disasm.c: an unknown atomic op
        name = _ATOMIC_OP.get(insn.imm & ~isa.FETCH, "?")
        if insn.imm & isa.FETCH:
            return f"{r}{insn.src} = atomic{bits}_fetch_{name}(({sz} *){a}, {r}{insn.src})"
        return f"lock *({sz} *){a} {_ALU_SYM[insn.imm & ~isa.FETCH]} {r}{insn.src}"
    if insn.is_exit:
        return "exit"
    if insn.is_call:
        if insn.src == isa.PSEUDO_CALL:
            return f"call pc{insn.imm:+d}"
        if insn.src == isa.PSEUDO_KFUNC_CALL:
            name = kfunc_name(insn.imm) if kfunc_name is not None else None
            return f"call {name or 'kfunc'}#{insn.imm}"
        name = helper_name(insn.imm) if helper_name is not None else None
        return f"call {name or 'unknown'}#{insn.imm}"
    if op == isa.JA:
        return f"goto pc{insn.jump_offset():+d}"
    if insn.is_may_goto:
        return f"may_goto pc{insn.off:+d}"   # kernel/bpf/disasm.c's spelling
    r = "r" if cls == isa.JMP else "w"
    src = f"{r}{insn.src}" if insn.source == isa.X else f"{insn.imm & isa.U32:#x}"
    return f"if {r}{insn.dst} {_JMP_SYM.get(op, '?')} {src} goto pc{insn.off:+d}"
