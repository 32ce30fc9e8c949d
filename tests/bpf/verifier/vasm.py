"""A small kernel-syntax assembler for the verifier corpus (test-only).

One instruction per line, ``label:`` lines, ``#`` or ``;`` comments::

    r1 = 5            w1 += w2          r0 = -r0         r1 = (s8)r2
    r1 = be16 r1      r1 = bswap64 r1   r1 = 0x1234 ll   r1 = map[0] ll
    r1 = map_value[0] + 8 ll            r1 = func cb ll
    r1 = *(u32 *)(r10 - 8)              r1 = *(s16 *)(r2 + 0)
    *(u64 *)(r10 - 8) = r1              *(u8 *)(r10 - 1) = 7
    lock *(u64 *)(r1 + 0) += r2         lock fetch_add *(u64 *)(r1 + 0) r2
    lock xchg *(u64 *)(r1 + 0) r2       lock cmpxchg *(u64 *)(r1 + 0) r2
    if r1 s> r2 goto out                if w1 == 3 goto +2
    goto loop         gotol loop        exit              may_goto out
    call 1            call map_lookup_elem     call kfunc NAME     call local LABEL
    .raw 0x07 1 0 0 5                   (opcode dst src off imm)
"""

from __future__ import annotations

import re

from uringbpf.bpf import isa

_ALU = {"+=": isa.ADD, "-=": isa.SUB, "*=": isa.MUL, "/=": isa.DIV, "|=": isa.OR, "&=": isa.AND,
        "<<=": isa.LSH, ">>=": isa.RSH, "%=": isa.MOD, "^=": isa.XOR, "s>>=": isa.ARSH,
        "s/=": isa.DIV, "s%=": isa.MOD}
_JMP = {"==": isa.JEQ, "!=": isa.JNE, ">": isa.JGT, ">=": isa.JGE, "<": isa.JLT, "<=": isa.JLE,
        "s>": isa.JSGT, "s>=": isa.JSGE, "s<": isa.JSLT, "s<=": isa.JSLE, "&": isa.JSET}
_SIZE = {"u8": isa.B, "u16": isa.H, "u32": isa.W, "u64": isa.DW,
         "s8": isa.B, "s16": isa.H, "s32": isa.W}
_ATOMIC = {"+=": isa.ATOMIC_ADD, "|=": isa.ATOMIC_OR, "&=": isa.ATOMIC_AND, "^=": isa.ATOMIC_XOR}
_ATOMIC_NAMED = {"fetch_add": isa.ATOMIC_ADD | isa.FETCH, "fetch_or": isa.ATOMIC_OR | isa.FETCH,
                 "fetch_and": isa.ATOMIC_AND | isa.FETCH, "fetch_xor": isa.ATOMIC_XOR | isa.FETCH,
                 "xchg": isa.XCHG, "cmpxchg": isa.CMPXCHG, "add": isa.ATOMIC_ADD}

REG = r"([rw])(\d+)"
MEM = r"\*\((u8|u16|u32|u64|s8|s16|s32) \*\)\(r(\d+)\s*([+-])\s*(\w+)\)"


class AsmError(ValueError):
    pass


def _int(text: str) -> int:
    return int(text, 0)


def _reg(text: str) -> tuple[str, int]:
    m = re.fullmatch(REG, text.strip())
    if not m:
        raise AsmError(f"not a register: {text!r}")
    return m.group(1), int(m.group(2))


def assemble(text: str, helper_names: dict[str, int] | None = None):
    """Return (insns, kfuncs)."""
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if line:
            lines.append(line)
    # first pass: slot indexes of labels
    labels: dict[str, int] = {}
    pc = 0
    for line in lines:
        if line.endswith(":") and re.fullmatch(r"[\w.]+:", line):
            labels[line[:-1]] = pc
            continue
        pc += 2 if line.endswith(" ll") else 1
    insns: list[isa.Insn] = []
    kfuncs: list[str] = []

    def target(tok: str, at: int) -> int:
        if re.fullmatch(r"[+-]\d+", tok):
            return int(tok)
        if tok not in labels:
            raise AsmError(f"unknown label {tok!r}")
        return labels[tok] - at - 1

    for line in lines:
        if line.endswith(":") and re.fullmatch(r"[\w.]+:", line):
            continue
        at = len(insns)
        try:
            insns.extend(_one(line, at, target, kfuncs, helper_names or {}))
        except AsmError:
            raise
        except Exception as exc:  # pragma: no cover - message for corpus authors
            raise AsmError(f"cannot assemble {line!r}: {exc}") from exc
    return insns, kfuncs


def _one(line, at, target, kfuncs, helper_names):
    m = re.fullmatch(r"\.raw\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", line)
    if m:
        op, d, s, off, imm = (_int(x) for x in m.groups())
        return [isa.Insn(op, d, s, off, imm)]
    if line == "exit":
        return [isa.Insn(isa.OP_EXIT)]
    m = re.fullmatch(r"may_goto\s+(\S+)", line)
    if m:
        return [isa.Insn(isa.OP_MAY_GOTO, off=target(m.group(1), at))]
    m = re.fullmatch(r"(goto|gotol)\s+(\S+)", line)
    if m:
        off = target(m.group(2), at)
        if m.group(1) == "gotol":
            return [isa.Insn(isa.OP_JA32, imm=off)]
        return [isa.Insn(isa.OP_JA, off=off)]
    m = re.fullmatch(r"call\s+(kfunc|local)?\s*(\S+)", line)
    if m:
        kind, name = m.groups()
        if kind == "kfunc":
            if name not in kfuncs:
                kfuncs.append(name)
            return [isa.Insn(isa.OP_CALL, src=isa.PSEUDO_KFUNC_CALL, imm=kfuncs.index(name))]
        if kind == "local":
            return [isa.Insn(isa.OP_CALL, src=isa.PSEUDO_CALL, imm=target(name, at))]
        if re.fullmatch(r"-?\d+|0x[0-9a-fA-F]+", name):
            return [isa.Insn(isa.OP_CALL, imm=_int(name))]
        if name not in helper_names:
            raise AsmError(f"unknown helper {name!r}")
        return [isa.Insn(isa.OP_CALL, imm=helper_names[name])]
    m = re.fullmatch(r"if\s+" + REG + r"\s+(\S+)\s+(\S+)\s+goto\s+(\S+)", line)
    if m:
        kind, dst, op, rhs, tgt = m.groups()
        cls = isa.JMP if kind == "r" else isa.JMP32
        off = target(tgt, at)
        if re.fullmatch(REG, rhs):
            return [isa.Insn(cls | _JMP[op] | isa.X, int(dst), _reg(rhs)[1], off, 0)]
        return [isa.Insn(cls | _JMP[op] | isa.K, int(dst), 0, off, isa.to_s32(_int(rhs)))]
    m = re.fullmatch(r"lock\s+(?:(\w+)\s+)?" + MEM + r"\s*(\S*)\s+r(\d+)", line)
    if m:
        name, sz, base, sign, off, opsym, src = m.groups()
        code = _ATOMIC_NAMED[name] if name else _ATOMIC[opsym]
        off = _int(off) * (-1 if sign == "-" else 1)
        return [isa.Insn(isa.STX | isa.ATOMIC | _SIZE[sz], int(base), int(src), off, code)]
    m = re.fullmatch(MEM + r"\s*=\s*(\S+)", line)
    if m:
        sz, base, sign, off, rhs = m.groups()
        off = _int(off) * (-1 if sign == "-" else 1)
        if re.fullmatch(REG, rhs):
            return [isa.Insn(isa.STX | isa.MEM | _SIZE[sz], int(base), _reg(rhs)[1], off, 0)]
        return [isa.Insn(isa.ST | isa.MEM | _SIZE[sz], int(base), 0, off, isa.to_s32(_int(rhs)))]
    m = re.fullmatch(REG + r"\s*=\s*" + MEM, line)
    if m:
        _, dst, sz, base, sign, off = m.groups()
        off = _int(off) * (-1 if sign == "-" else 1)
        mode = isa.MEMSX if sz.startswith("s") else isa.MEM
        return [isa.Insn(isa.LDX | mode | _SIZE[sz], int(dst), int(base), off, 0)]
    m = re.fullmatch(r"r(\d+)\s*=\s*(.+)\s+ll", line)
    if m:
        dst, rhs = int(m.group(1)), m.group(2).strip()
        mm = re.fullmatch(r"map\[(\d+)\]", rhs)
        if mm:
            return isa.lddw_pair(dst, int(mm.group(1)), isa.PSEUDO_MAP_IDX)
        mm = re.fullmatch(r"map_value\[(\d+)\](?:\s*\+\s*(\S+))?", rhs)
        if mm:
            pair = isa.lddw_pair(dst, int(mm.group(1)) | ((_int(mm.group(2) or "0") & isa.U32) << 32),
                                 isa.PSEUDO_MAP_IDX_VALUE)
            return pair
        mm = re.fullmatch(r"func\s+(\S+)", rhs)
        if mm:
            off = target(mm.group(1), at)
            return isa.lddw_pair(dst, off & isa.U32, isa.PSEUDO_FUNC)
        return isa.lddw_pair(dst, _int(rhs))
    m = re.fullmatch(REG + r"\s*=\s*-\s*" + REG, line)
    if m:
        kind, dst = m.group(1), int(m.group(2))
        cls = isa.ALU64 if kind == "r" else isa.ALU
        return [isa.Insn(cls | isa.NEG, dst)]
    m = re.fullmatch(REG + r"\s*=\s*(be|le|bswap)(16|32|64)\s+" + REG, line)
    if m:
        kind, dst, what, bits = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
        if what == "bswap":
            return [isa.Insn(isa.ALU64 | isa.END, dst, 0, 0, bits)]
        src = isa.TO_BE if what == "be" else isa.TO_LE
        return [isa.Insn(isa.ALU | isa.END | src, dst, 0, 0, bits)]
    m = re.fullmatch(REG + r"\s*=\s*\(s(8|16|32)\)\s*" + REG, line)
    if m:
        kind, dst, bits, _, src = m.groups()
        cls = isa.ALU64 if kind == "r" else isa.ALU
        return [isa.Insn(cls | isa.MOV | isa.X, int(dst), int(src), int(bits), 0)]
    m = re.fullmatch(REG + r"\s*(=|\+=|-=|\*=|/=|\|=|&=|<<=|>>=|%=|\^=|s>>=|s/=|s%=)\s*(\S+)", line)
    if m:
        kind, dst, op, rhs = m.groups()
        cls = isa.ALU64 if kind == "r" else isa.ALU
        code = isa.MOV if op == "=" else _ALU[op]
        off = 1 if op in ("s/=", "s%=") else 0
        if re.fullmatch(REG, rhs):
            return [isa.Insn(cls | code | isa.X, int(dst), _reg(rhs)[1], off, 0)]
        return [isa.Insn(cls | code | isa.K, int(dst), 0, off, isa.to_s32(_int(rhs)))]
    raise AsmError(f"cannot assemble {line!r}")
