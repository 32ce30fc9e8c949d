"""Instruction text for verifier logs (kernel/LLVM style: ``r1 = *(u32 *)(r2 +4)``).

The verifier prefers ``bpf/disasm.py`` when it provides a one-instruction formatter;
this module is the fallback so logs never depend on another module being present.
"""

from __future__ import annotations

from . import isa

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


def _fallback(insn: isa.Insn, pc: int | None = None) -> str:
    cls, op = insn.cls, insn.op
    if insn.opcode == 0:
        return "(lddw second slot)"
    if cls in (isa.ALU, isa.ALU64):
        r = "r" if cls == isa.ALU64 else "w"
        dst = f"{r}{insn.dst}"
        src = f"{r}{insn.src}" if insn.source == isa.X else str(insn.imm)
        if op == isa.NEG:
            return f"{dst} = -{dst}"
        if op == isa.END:
            if cls == isa.ALU64:
                return f"{dst} = bswap{insn.imm} {dst}"
            kind = "be" if insn.source == isa.TO_BE else "le"
            return f"{dst} = {kind}{insn.imm} {dst}"
        if op == isa.MOV and insn.off and insn.source == isa.X:
            return f"{dst} = (s{insn.off}){r}{insn.src}"
        if op in (isa.DIV, isa.MOD) and insn.off == 1:
            return f"{dst} s{_ALU_SYM[op]} {src}"
        return f"{dst} {_ALU_SYM.get(op, '?=')} {src}"
    if cls == isa.LD:
        if insn.is_lddw:
            kinds = {isa.PSEUDO_MAP_IDX: "map[{}]", isa.PSEUDO_MAP_IDX_VALUE: "map_value[{}]",
                     isa.PSEUDO_FUNC: "func[{}]", isa.PSEUDO_MAP_FD: "map_fd[{}]"}
            if insn.src in kinds:
                return f"r{insn.dst} = {kinds[insn.src].format(insn.imm)} ll"
            return f"r{insn.dst} = {insn.imm64:#x} ll"
        return f"ld_{'abs' if insn.mode == isa.ABS else 'ind'} {insn.imm}"
    if cls == isa.LDX:
        sz = (_SSZ if insn.mode == isa.MEMSX else _SZ)[insn.size]
        return f"r{insn.dst} = *({sz} *)(r{insn.src} {insn.off:+d})"
    if cls == isa.ST:
        return f"*({_SZ[insn.size]} *)(r{insn.dst} {insn.off:+d}) = {insn.imm}"
    if cls == isa.STX:
        if insn.mode == isa.ATOMIC:
            sz = _SZ[insn.size]
            names = {isa.XCHG: "xchg", isa.CMPXCHG: "cmpxchg"}
            name = names.get(insn.imm) or ("fetch_" if insn.imm & isa.FETCH else "") + \
                isa.ALU_OP_NAMES.get(insn.imm & 0xF0, "?")
            return f"lock *({sz} *)(r{insn.dst} {insn.off:+d}) {name} r{insn.src}"
        return f"*({_SZ[insn.size]} *)(r{insn.dst} {insn.off:+d}) = r{insn.src}"
    if cls in (isa.JMP, isa.JMP32):
        if insn.is_exit:
            return "exit"
        if insn.is_call:
            if insn.src == isa.PSEUDO_CALL:
                return f"call pc{insn.imm:+d}"
            if insn.src == isa.PSEUDO_KFUNC_CALL:
                return f"call kfunc#{insn.imm}"
            return f"call #{insn.imm}"
        if op == isa.JA:
            return f"goto pc{insn.jump_offset():+d}"
        r = "r" if cls == isa.JMP else "w"
        src = f"{r}{insn.src}" if insn.source == isa.X else str(insn.imm)
        return f"if {r}{insn.dst} {_JMP_SYM.get(op, '?')} {src} goto pc{insn.off:+d}"
    return f"unknown opcode {insn.opcode:#04x}"


def _from_disasm_module():
    try:
        from . import disasm  # type: ignore[attr-defined]
    except Exception:
        return None
    for name in ("format_insn", "disasm_insn", "insn_to_str", "format_instruction"):
        fn = getattr(disasm, name, None)
        if callable(fn):
            return fn
    return None


_external = None
_looked = False


def insn_text(insn: isa.Insn, pc: int | None = None) -> str:
    global _external, _looked
    if not _looked:
        _looked = True
        _external = _from_disasm_module()
    if _external is not None:
        try:
            text = _external(insn)
            if isinstance(text, str) and text:
                return text
        except Exception:
            pass
    return _fallback(insn, pc)
