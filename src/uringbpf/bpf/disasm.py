"""Disassembler: instruction slots to text, kernel/llvm-objdump style or uBPF style.

The kernel style is what ``bpftool prog dump xlated`` and ``llvm-objdump -d`` print
(``r0 = *(u32 *)(r1 + 4)``, ``if w1 s< 5 goto +2``, ``lock *(u64 *)(r10 - 8) += r1``),
because that is what people compare against when a program misbehaves.  Everything we
print assembles back with :func:`uringbpf.bpf.asm.assemble` to the same bytes; pseudo
64-bit immediates use the spellings documented there (``map_idx(0)``...).

The command ``uringbpf disasm`` (:mod:`uringbpf.tools.disasm`) prints these listings for
raw bytecode, hex text or the programs of an ELF object.
"""

from __future__ import annotations


from . import helpers, isa
from .isa import Insn

__all__ = ["format_insn", "disassemble"]

_ALU_SYM = {isa.ADD: "+", isa.SUB: "-", isa.MUL: "*", isa.DIV: "/", isa.OR: "|", isa.AND: "&",
            isa.LSH: "<<", isa.RSH: ">>", isa.MOD: "%", isa.XOR: "^", isa.ARSH: "s>>"}
_JCC_SYM = {isa.JEQ: "==", isa.JGT: ">", isa.JGE: ">=", isa.JSET: "&", isa.JNE: "!=",
            isa.JSGT: "s>", isa.JSGE: "s>=", isa.JLT: "<", isa.JLE: "<=", isa.JSLT: "s<",
            isa.JSLE: "s<="}
_ATOMIC_SYM = {isa.ATOMIC_ADD: "+", isa.ATOMIC_OR: "|", isa.ATOMIC_AND: "&", isa.ATOMIC_XOR: "^"}
_ATOMIC_NAME = {isa.ATOMIC_ADD: "add", isa.ATOMIC_OR: "or", isa.ATOMIC_AND: "and",
                isa.ATOMIC_XOR: "xor"}
_PSEUDO_NAME = {isa.PSEUDO_MAP_FD: "map_fd", isa.PSEUDO_MAP_VALUE: "map_value",
                isa.PSEUDO_BTF_ID: "btf_id", isa.PSEUDO_FUNC: "func",
                isa.PSEUDO_MAP_IDX: "map_idx", isa.PSEUDO_MAP_IDX_VALUE: "map_idx_value"}
_BITS = {isa.B: 8, isa.H: 16, isa.W: 32, isa.DW: 64}


def _signed(v: int) -> str:
    return f"+{v}" if v >= 0 else str(v)


def _imm_text(imm: int, is32: bool) -> str:
    """Immediates as signed decimal; large 32-bit-op values in hex (how they read)."""
    if is32 and not -65536 < imm < 65536:
        return f"{imm & isa.U32:#x}"
    return str(imm)


def _addr(reg: int, off: int) -> str:
    return f"(r{reg} + {off})" if off >= 0 else f"(r{reg} - {-off})"


def _ubpf_mem(reg: int, off: int) -> str:
    if off == 0:
        return f"[%r{reg}]"
    return f"[%r{reg}+{off}]" if off > 0 else f"[%r{reg}-{-off}]"


def _helper_name(helper_id: int) -> str | None:
    """Name of an already registered helper (no provider imports from here)."""
    h = helpers.HELPERS.get(helper_id)
    return h.name if h is not None else None


def _pseudo_imm(insn: Insn, second_imm: int) -> str:
    first = isa.to_s32(insn.imm64 & isa.U32)
    name = _PSEUDO_NAME[insn.src]
    if insn.src == isa.PSEUDO_FUNC:
        return f"func({_signed(first)})"
    if insn.src in (isa.PSEUDO_MAP_VALUE, isa.PSEUDO_MAP_IDX_VALUE):
        return f"{name}({first}){_signed(second_imm)}"
    return f"{name}({first})"


def format_insn(insn: Insn, style: str = "kernel") -> str:
    """One instruction as text (``style`` is ``"kernel"`` or ``"ubpf"``).  An arena access
    the verifier rewrote (PROBE_MEM32) reads as the load/store the program wrote."""
    insn = isa.plain_access(insn)
    if style == "ubpf":
        return _format_ubpf(insn)
    if style != "kernel":
        raise ValueError(f"unknown style {style!r}")
    reason = isa.invalid_reason(insn)
    if reason is not None:
        return f"<invalid: {reason}>"
    cls, op, opcode = insn.cls, insn.op, insn.opcode
    if cls in (isa.ALU, isa.ALU64):
        is32 = cls == isa.ALU
        p = "w" if is32 else "r"
        d = f"{p}{insn.dst}"
        if op == isa.END:
            if cls == isa.ALU64:
                kind = "bswap"
            else:
                kind = "be" if insn.source == isa.TO_BE else "le"
            return f"r{insn.dst} = {kind}{insn.imm} r{insn.dst}"
        if op == isa.NEG:
            return f"{d} = -{d}"
        src = f"{p}{insn.src}" if insn.source == isa.X else _imm_text(insn.imm, is32)
        if op == isa.MOV:
            if isa.is_addr_space_cast(insn):     # the kernel's print_bpf_insn spelling
                imm = insn.imm & isa.U32
                return f"{d} = addr_space_cast(r{insn.src}, {imm >> 16}, {imm & 0xFFFF})"
            if insn.off:
                return f"{d} = (s{insn.off}){p}{insn.src}"
            return f"{d} = {src}"
        sym = _ALU_SYM[op]
        if op in (isa.DIV, isa.MOD) and insn.off == 1:
            sym = "s" + sym
        return f"{d} {sym}= {src}"
    if cls in (isa.JMP, isa.JMP32):
        if opcode == isa.OP_EXIT:
            return "exit"
        if opcode == isa.OP_CALL:
            if insn.src == isa.PSEUDO_CALL:
                return f"call pc{_signed(insn.imm)}"
            if insn.src == isa.PSEUDO_KFUNC_CALL:
                return f"call kfunc#{insn.imm}"
            name = _helper_name(insn.imm)
            return f"call {name}#{insn.imm}" if name else f"call {insn.imm}"
        if opcode == isa.OP_CALL | isa.X:
            return f"callx r{insn.dst}"
        if opcode == isa.OP_JA:
            return f"goto {_signed(insn.off)}"
        if opcode == isa.OP_JA32:
            return f"gotol {_signed(insn.imm)}"
        if opcode == isa.OP_MAY_GOTO:
            # llvm-objdump's spelling (the kernel log's is "may_goto pc+N")
            return f"may_goto {_signed(insn.off)}"
        is32 = cls == isa.JMP32
        p = "w" if is32 else "r"
        src = f"{p}{insn.src}" if insn.source == isa.X else _imm_text(insn.imm, is32)
        return f"if {p}{insn.dst} {_JCC_SYM[op]} {src} goto {_signed(insn.off)}"
    if cls == isa.LD:
        if insn.is_lddw:
            second = isa.to_s32(insn.imm64 >> 32)
            if insn.src:
                return f"r{insn.dst} = {_pseudo_imm(insn, second)} ll"
            v = insn.imm64
            return f"r{insn.dst} = {v:#x} ll" if v > 0xFFFF else f"r{insn.dst} = {v} ll"
        bits = _BITS[insn.size]
        if insn.mode == isa.ABS:
            return f"r0 = *(u{bits} *)skb[{insn.imm}]"
        off = insn.imm
        inner = f"r{insn.src} + {off}" if off >= 0 else f"r{insn.src} - {-off}"
        return f"r0 = *(u{bits} *)skb[{inner}]"
    bits = _BITS[insn.size]
    if cls == isa.LDX:
        kind = "s" if insn.mode == isa.MEMSX else "u"
        return f"r{insn.dst} = *({kind}{bits} *){_addr(insn.src, insn.off)}"
    if cls == isa.ST:
        return f"*(u{bits} *){_addr(insn.dst, insn.off)} = {insn.imm}"
    if insn.mode == isa.MEM:
        return f"*(u{bits} *){_addr(insn.dst, insn.off)} = r{insn.src}"
    if insn.imm in isa.ATOMIC_LOAD_STORE:
        return _acquire_release(insn)
    # atomics
    p = "w" if insn.size == isa.W else "r"
    s = f"{p}{insn.src}"
    a = _addr(insn.dst, insn.off)
    plain = a[1:-1]
    if insn.imm == isa.XCHG:
        fn = "xchg32_32" if insn.size == isa.W else "xchg_64"
        return f"{s} = {fn}({plain}, {s})"
    if insn.imm == isa.CMPXCHG:
        fn = "cmpxchg32_32" if insn.size == isa.W else "cmpxchg_64"
        return f"{p}0 = {fn}({plain}, {p}0, {s})"
    base = insn.imm & ~isa.FETCH
    if insn.imm & isa.FETCH:
        return f"{s} = atomic_fetch_{_ATOMIC_NAME[base]}((u{bits} *){a}, {s})"
    return f"lock *(u{bits} *){a} {_ATOMIC_SYM[base]}= {s}"


def _format_ubpf(insn: Insn) -> str:
    reason = isa.invalid_reason(insn)
    if reason is not None:
        return f"<invalid: {reason}>"
    cls, op, opcode = insn.cls, insn.op, insn.opcode
    if cls in (isa.ALU, isa.ALU64):
        suffix = "32" if cls == isa.ALU else ""
        if op == isa.END:
            if cls == isa.ALU64:
                return f"bswap{insn.imm} %r{insn.dst}"
            return f"{'be' if insn.source == isa.TO_BE else 'le'}{insn.imm} %r{insn.dst}"
        if op == isa.NEG:
            return f"neg{suffix} %r{insn.dst}"
        if isa.is_addr_space_cast(insn):
            imm = insn.imm & isa.U32
            return f"addr_space_cast %r{insn.dst}, %r{insn.src}, {imm >> 16}, {imm & 0xFFFF}"
        if op == isa.MOV and insn.off:
            return f"movsx{insn.off}{'32' if cls == isa.ALU else '64'} %r{insn.dst}, %r{insn.src}"
        name = isa.ALU_OP_NAMES[op]
        if op in (isa.DIV, isa.MOD) and insn.off == 1:
            name = "s" + name
        src = f"%r{insn.src}" if insn.source == isa.X else str(insn.imm)
        return f"{name}{suffix} %r{insn.dst}, {src}"
    if cls in (isa.JMP, isa.JMP32):
        if opcode == isa.OP_EXIT:
            return "exit"
        if opcode == isa.OP_CALL:
            if insn.src == isa.PSEUDO_CALL:
                return f"call local {_signed(insn.imm)}"
            if insn.src == isa.PSEUDO_KFUNC_CALL:
                return f"call runtime {insn.imm}"
            return f"call {insn.imm}"
        if opcode == isa.OP_CALL | isa.X:
            return f"call %r{insn.dst}"
        if opcode == isa.OP_JA:
            return f"ja {_signed(insn.off)}"
        if opcode == isa.OP_JA32:
            return f"ja32 {_signed(insn.imm)}"
        if opcode == isa.OP_MAY_GOTO:
            return f"may_goto {_signed(insn.off)}"
        suffix = "32" if cls == isa.JMP32 else ""
        src = f"%r{insn.src}" if insn.source == isa.X else str(insn.imm)
        return f"{isa.JMP_OP_NAMES[op]}{suffix} %r{insn.dst}, {src}, {_signed(insn.off)}"
    sz = isa.SIZE_SUFFIX[insn.size]
    if cls == isa.LD:
        if insn.is_lddw:
            if insn.src:
                return f"lddw %r{insn.dst}, {_pseudo_imm(insn, isa.to_s32(insn.imm64 >> 32))}"
            return f"lddw %r{insn.dst}, {insn.imm64:#x}"
        if insn.mode == isa.ABS:
            return f"ldabs{sz} {insn.imm}"
        return f"ldind{sz} %r{insn.src}, {insn.imm}"
    if cls == isa.LDX:
        s = "s" if insn.mode == isa.MEMSX else ""
        return f"ldx{s}{sz} %r{insn.dst}, {_ubpf_mem(insn.src, insn.off)}"
    if cls == isa.ST:
        return f"st{sz} {_ubpf_mem(insn.dst, insn.off)}, {insn.imm}"
    if insn.mode == isa.MEM:
        return f"stx{sz} {_ubpf_mem(insn.dst, insn.off)}, %r{insn.src}"
    if insn.imm in isa.ATOMIC_LOAD_STORE:
        # uBPF has no mnemonic for these: the LLVM spelling, which assemble() reads too
        return _acquire_release(insn)
    suffix = "32" if insn.size == isa.W else ""
    mem = _ubpf_mem(insn.dst, insn.off)
    if insn.imm == isa.XCHG:
        return f"lock xchg{suffix} {mem}, %r{insn.src}"
    if insn.imm == isa.CMPXCHG:
        return f"lock cmpxchg{suffix} {mem}, %r{insn.src}"
    fetch = "fetch " if insn.imm & isa.FETCH else ""
    return f"lock {fetch}{_ATOMIC_NAME[insn.imm & ~isa.FETCH]}{suffix} {mem}, %r{insn.src}"


def disassemble(insns: list[Insn], style: str = "kernel", show_pc: bool = True,
                show_bytes: bool = False) -> str:
    """A listing of ``insns`` (lddw placeholder slots are skipped, pcs stay slot indexes)."""
    lines = []
    skip = False
    for pc, insn in enumerate(insns):
        if skip:
            skip = False
            continue
        skip = insn.is_lddw
        text = format_insn(insn, style)
        prefix = ""
        if show_pc:
            prefix = f"{pc:6d}: "
        if show_bytes:
            raw = insn.encode()
            prefix += " ".join(f"{b:02x}" for b in raw[:8]) + "  "
            if len(raw) > 8:
                text += "  ; " + " ".join(f"{b:02x}" for b in raw[8:])
        lines.append(prefix + text)
    return "\n".join(lines) + ("\n" if lines else "")


def _acquire_release(insn: isa.Insn) -> str:
    """Load-acquire / store-release as LLVM spells them (the register is ``w`` below 64
    bits): ``w0 = load_acquire((u8 *)(r1 + 0))``, ``store_release((u64 *)(r1 + 8), r2)``."""
    p = "r" if insn.size == isa.DW else "w"
    bits = _BITS[insn.size]
    if insn.imm == isa.LOAD_ACQ:
        return f"{p}{insn.dst} = load_acquire((u{bits} *){_addr(insn.src, insn.off)})"
    return f"store_release((u{bits} *){_addr(insn.dst, insn.off)}, {p}{insn.src})"
