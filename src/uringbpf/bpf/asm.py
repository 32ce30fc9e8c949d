"""Assembler for eBPF text: the uBPF / bpf_conformance dialect and the kernel dialect.

Two spellings are accepted, line by line, so the output of :mod:`uringbpf.bpf.disasm`
(kernel / llvm-objdump style) assembles back to the same bytes and the ``-- asm``
sections of bpf_conformance ``.data`` files assemble as that suite's own assembler does:

uBPF dialect (``%r`` may be written without ``%``)::

    mov %r0, 1              add32 %r1, %r2         movsx1664 %r0, %r1
    ldxw %r0, [%r1+4]       stxdw [%r10-8], %r1    stw [%r10-4], 7
    ldxsb %r0, [%r1]        lddw %r0, 0x1122334455667788
    jeq %r1, 0, +2          jslt32 %r1, %r2, label ja32 +5   may_goto +3
    lock fetch add [%r1], %r2               lock cmpxchg32 [%r1+8], %r3
    le16 %r0  be32 %r0  bswap64 %r0  call 5  call local fn  call runtime 3  call %r2
    ldabsw 4  ldindh %r2, 8  exit

Kernel dialect (what ``bpftool``/``llvm-objdump`` print)::

    r0 = 1   w1 += w2   r0 = (s16)r1   r0 = *(u32 *)(r1 + 4)   *(u64 *)(r10 - 8) = r1
    if r1 == 0 goto +2   gotol +5   r1 = 0x1122334455667788 ll   r1 = be16 r1
    may_goto +3   may_goto pc+3   may_goto label
    lock *(u64 *)(r1 + 0) += r2   r2 = atomic_fetch_and((u32 *)(r1 + 0), w2)
    r0 = cmpxchg_64(r1 + 0, r0, r2)   call bpf_map_lookup_elem#1   call pc+3   callx r2

Pseudo 64-bit immediates (both dialects): ``map_fd(N)``, ``map_value(N)+OFF``,
``btf_id(N)``, ``func(+N|label)``, ``map_idx(N)``, ``map_idx_value(N)+OFF``.

Jump targets are ``+N``/``-N`` (slots after the next instruction), a bare number, or a
label (``name:`` on its own line or before an instruction); the first ``exit`` also
defines the label ``exit``, as in bpf_conformance.
"""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass

from . import isa
from .isa import Insn

__all__ = ["AsmError", "assemble", "assemble_bytes"]


from ..errors import AsmError  # noqa: E402,F401  (defined in uringbpf.errors)


# ---------------------------------------------------------------------------------------
# Operand parsing


def parse_int(text: str) -> int:
    """Decimal or ``0x`` hex, optional sign; ``_`` separators allowed."""
    t = text.strip().replace("_", "")
    if not t:
        raise ValueError("empty number")
    neg = t.startswith("-")
    if t[0] in "+-":
        t = t[1:]
    value = int(t, 16) if t.lower().startswith("0x") else int(t, 10)
    return -value if neg else value


# bpf_conformance's own assembler reads every 32-bit immediate with ``stoull`` and keeps
# the low 32 bits, so a few upstream ``.data`` files spell an immediate wider than 32
# bits (``0xffffffffffffff80`` meaning -128).  ``assemble(..., truncate_wide_imm=True)``
# reproduces that for the conformance runner; everywhere else a wide immediate is an error.
_TRUNCATE_WIDE_IMM: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "uringbpf_asm_truncate_wide_imm", default=False)


def _imm32(text: str) -> int:
    """A 32-bit immediate: signed decimal, or hex up to 0xffffffff (two's complement)."""
    try:
        value = parse_int(text)
    except ValueError:
        raise ValueError(f"invalid immediate {text!r}") from None
    if _TRUNCATE_WIDE_IMM.get() and -(1 << 64) < value < (1 << 64):
        return isa.to_s32(value & isa.U32)
    if "0x" in text.lower() and not text.strip().startswith("-"):
        if value > isa.U32:
            raise ValueError(f"immediate out of 32-bit range: {text}")
        return isa.to_s32(value)
    if not -(1 << 31) <= value <= isa.U32:
        raise ValueError(f"immediate out of 32-bit range: {text}")
    return isa.to_s32(value)


def _imm64(text: str) -> int:
    try:
        value = parse_int(text)
    except ValueError:
        raise ValueError(f"invalid immediate {text!r}") from None
    if not -(1 << 63) <= value <= isa.U64:
        raise ValueError(f"immediate out of 64-bit range: {text}")
    return value & isa.U64


def _off16(text: str) -> int:
    try:
        value = parse_int(text)
    except ValueError:
        raise ValueError(f"invalid offset {text!r}") from None
    if "0x" in text.lower() and not text.strip().startswith("-"):
        if value > 0xFFFF:
            raise ValueError(f"offset out of 16-bit range: {text}")
        return isa.to_s16(value)
    if not -(1 << 15) <= value < (1 << 15):
        raise ValueError(f"offset out of 16-bit range: {text}")
    return value


_REG_RE = re.compile(r"^%?([rw])(\d+)$")


def _reg(text: str, allow_w: bool = True) -> int:
    m = _REG_RE.match(text.strip())
    if not m or int(m.group(2)) > 15 or (m.group(1) == "w" and not allow_w):
        raise ValueError(f"invalid register {text!r}")
    return int(m.group(2))


def _is_reg(text: str) -> bool:
    return bool(_REG_RE.match(text.strip()))


_MEM_RE = re.compile(r"^\[\s*(%?[rw]\d+)\s*(?:([+-])\s*([0-9a-fA-Fx_]+))?\s*\]$")


def _mem(text: str) -> tuple[int, int]:
    """``[%rN]``, ``[%rN+off]``, ``[%rN-off]`` -> (reg, off)."""
    m = _MEM_RE.match(text.strip())
    if not m:
        raise ValueError(f"invalid memory operand {text!r}")
    off = 0
    if m.group(3):
        off = _off16(m.group(2) + m.group(3))
    return _reg(m.group(1)), off


# Pseudo lddw immediates: name -> (src_reg, takes an offset)
_PSEUDO = {
    "map_fd": (isa.PSEUDO_MAP_FD, False),
    "map_value": (isa.PSEUDO_MAP_VALUE, True),
    "btf_id": (isa.PSEUDO_BTF_ID, False),
    "func": (isa.PSEUDO_FUNC, False),
    "map_idx": (isa.PSEUDO_MAP_IDX, False),
    "map_idx_value": (isa.PSEUDO_MAP_IDX_VALUE, True),
}
_PSEUDO_RE = re.compile(r"^(\w+)\(\s*([^)]*?)\s*\)\s*(?:([+-])\s*([0-9a-fA-Fx_]+))?$")


# ---------------------------------------------------------------------------------------
# Pending instructions (labels are resolved after the whole text is read)


@dataclass
class _Pending:
    insn: Insn
    label: str | None = None      # jump/call target label to resolve
    label_in_imm: bool = False    # target goes into imm (ja32, call local, func())
    lineno: int = 0
    line: str = ""


_ALU_NAMES = {name: op for op, name in isa.ALU_OP_NAMES.items() if op not in (isa.NEG, isa.END)}
_ALU_NAMES.update({"sdiv": isa.DIV, "smod": isa.MOD})
_JCC_NAMES = {name: op for op, name in isa.JMP_OP_NAMES.items() if op in isa.CONDITIONAL_JUMPS}
_SIZES = {"b": isa.B, "h": isa.H, "w": isa.W, "dw": isa.DW}
_ATOMIC_NAMES = {"add": isa.ATOMIC_ADD, "and": isa.ATOMIC_AND, "or": isa.ATOMIC_OR,
                 "xor": isa.ATOMIC_XOR, "xchg": isa.XCHG, "cmpxchg": isa.CMPXCHG}


def _target(text: str) -> tuple[int, str | None]:
    """A jump target: ``+N``/``-N``/``N`` is an offset, anything else a label."""
    t = text.strip()
    t = re.sub(r"\s*<[^>]*>$", "", t)  # llvm-objdump's "<LBB0_1>" annotation
    if re.fullmatch(r"[+-]?\s*(0x[0-9a-fA-F]+|\d+)", t):
        return parse_int(t.replace(" ", "")), None
    if not re.fullmatch(r"[A-Za-z_.$][\w.$]*", t):
        raise ValueError(f"invalid jump target {text!r}")
    return 0, t


def _lddw(dst: int, text: str, pend: list[_Pending], lineno: int, line: str) -> None:
    text = text.strip()
    m = _PSEUDO_RE.match(text)
    if m and m.group(1) in _PSEUDO:
        src, has_off = _PSEUDO[m.group(1)]
        off = 0
        if m.group(4):
            if not has_off:
                raise ValueError(f"{m.group(1)}() takes no offset")
            off = _imm32(m.group(3) + m.group(4))
        label = None
        if src == isa.PSEUDO_FUNC:
            first, label = _target(m.group(2))
        else:
            first = _imm32(m.group(2))
        value = (first & isa.U32) | ((off & isa.U32) << 32)
        head, tail = isa.lddw_pair(dst, value, src)
        pend.append(_Pending(head, label, True, lineno, line))
        pend.append(_Pending(tail, None, False, lineno, line))
        return
    head, tail = isa.lddw_pair(dst, _imm64(text))
    pend.append(_Pending(head, None, False, lineno, line))
    pend.append(_Pending(tail, None, False, lineno, line))


# ---------------------------------------------------------------------------------------
# uBPF dialect


def _split_operands(rest: str) -> list[str]:
    rest = re.sub(r"\[\s*([^\]]*?)\s*\]", lambda m: "[" + m.group(1).replace(" ", "") + "]", rest)
    return [t for t in re.split(r"[,\s]+", rest.strip()) if t]


def _ubpf_line(mnemonic: str, ops: list[str], pend: list[_Pending], lineno: int, line: str) -> None:
    def want(n: int) -> None:
        if len(ops) != n:
            raise ValueError(f"{mnemonic} takes {n} operand(s), got {len(ops)}")

    def add(insn: Insn, label: str | None = None, in_imm: bool = False) -> None:
        pend.append(_Pending(insn, label, in_imm, lineno, line))

    mn = mnemonic.lower()

    if mn == "exit":
        want(0)
        return add(Insn(isa.OP_EXIT))
    if mn == "lddw":
        want(2)
        return _lddw(_reg(ops[0]), ops[1], pend, lineno, line)
    if mn == "may_goto":
        want(1)
        off, label = _target(ops[0])
        return add(Insn(isa.OP_MAY_GOTO, off=off), label)
    if mn in ("ja", "ja32", "goto", "gotol"):
        want(1)
        off, label = _target(ops[0])
        if mn in ("ja32", "gotol"):
            return add(Insn(isa.OP_JA32, imm=isa.to_s32(off)), label, True)
        return add(Insn(isa.OP_JA, off=off), label)
    if mn == "callx":
        want(1)
        return add(Insn(isa.OP_CALL | isa.X, dst=_reg(ops[0])))
    if mn == "call":
        if len(ops) == 1:
            ops = ["helper", ops[0]]
        want(2)
        mode, target = ops[0].lower(), ops[1]
        if mode == "helper":
            if _is_reg(target):
                return add(Insn(isa.OP_CALL | isa.X, dst=_reg(target)))
            return add(Insn(isa.OP_CALL, src=isa.CALL_HELPER, imm=_imm32(_helper_number(target))))
        if mode == "local":
            off, label = _target(target)
            return add(Insn(isa.OP_CALL, src=isa.PSEUDO_CALL, imm=off), label, True)
        if mode in ("runtime", "kfunc"):
            return add(Insn(isa.OP_CALL, src=isa.PSEUDO_KFUNC_CALL, imm=_imm32(target)))
        raise ValueError(f"invalid call mode {ops[0]!r}")
    if mn == "lock":
        if not ops:
            raise ValueError("lock needs an operation")
        fetch = False
        if ops[0].lower() == "fetch":
            fetch, ops = True, ops[1:]
        if not ops:
            raise ValueError("lock needs an operation")
        name = ops[0].lower()
        width = isa.DW
        if name.endswith("32"):
            name, width = name[:-2], isa.W
        elif name.endswith("64"):
            name = name[:-2]
        if name not in _ATOMIC_NAMES:
            raise ValueError(f"invalid atomic operation {ops[0]!r}")
        ops = ops[1:]
        want(2)
        dst, off = _mem(ops[0])
        imm = _ATOMIC_NAMES[name] | (isa.FETCH if fetch else 0)
        return add(Insn(isa.STX | isa.ATOMIC | width, dst, _reg(ops[1]), off, imm))

    m = re.fullmatch(r"(le|be|swap|bswap)(16|32|64)", mn)
    if m:
        want(1)
        if m.group(1) == "le":
            opcode = isa.ALU | isa.END | isa.TO_LE
        elif m.group(1) == "be":
            opcode = isa.ALU | isa.END | isa.TO_BE
        else:
            opcode = isa.ALU64 | isa.END
        return add(Insn(opcode, _reg(ops[0]), imm=int(m.group(2))))
    if mn == "addr_space_cast":             # addr_space_cast %r1, %r2, 0, 1
        want(4)
        imm = int(ops[2], 0) << 16 | int(ops[3], 0)
        return add(Insn(isa.ALU64 | isa.MOV | isa.X, _reg(ops[0]), _reg(ops[1]),
                        isa.ADDR_SPACE_CAST, isa.to_s32(imm & isa.U32)))
    m = re.fullmatch(r"movsx(8|16|32)(32|64)", mn)
    if m:
        want(2)
        cls = isa.ALU if m.group(2) == "32" else isa.ALU64
        return add(Insn(cls | isa.MOV | isa.X, _reg(ops[0]), _reg(ops[1]), int(m.group(1))))
    m = re.fullmatch(r"neg(32|64)?", mn)
    if m:
        want(1)
        cls = isa.ALU if m.group(1) == "32" else isa.ALU64
        return add(Insn(cls | isa.NEG, _reg(ops[0])))
    m = re.fullmatch(r"([a-z]+?)(32|64)?", mn)
    if m and m.group(1) in _ALU_NAMES:
        want(2)
        cls = isa.ALU if m.group(2) == "32" else isa.ALU64
        op = _ALU_NAMES[m.group(1)]
        off = 1 if m.group(1) in ("sdiv", "smod") else 0
        if _is_reg(ops[1]):
            return add(Insn(cls | op | isa.X, _reg(ops[0]), _reg(ops[1]), off))
        return add(Insn(cls | op | isa.K, _reg(ops[0]), 0, off, _imm32(ops[1])))
    if m and m.group(1) in _JCC_NAMES and m.group(2) != "64":
        want(3)
        cls = isa.JMP32 if m.group(2) == "32" else isa.JMP
        op = _JCC_NAMES[m.group(1)]
        off, label = _target(ops[2])
        if _is_reg(ops[1]):
            return add(Insn(cls | op | isa.X, _reg(ops[0]), _reg(ops[1]), off), label)
        return add(Insn(cls | op | isa.K, _reg(ops[0]), 0, off, _imm32(ops[1])), label)
    m = re.fullmatch(r"ldx(s?)(b|h|w|dw)", mn)
    if m:
        want(2)
        src, off = _mem(ops[1])
        mode = isa.MEMSX if m.group(1) else isa.MEM
        if mode == isa.MEMSX and m.group(2) == "dw":
            raise ValueError("ldxsdw does not exist")
        return add(Insn(isa.LDX | mode | _SIZES[m.group(2)], _reg(ops[0]), src, off))
    m = re.fullmatch(r"st(x?)(b|h|w|dw)", mn)
    if m:
        want(2)
        dst, off = _mem(ops[0])
        if m.group(1):
            return add(Insn(isa.STX | isa.MEM | _SIZES[m.group(2)], dst, _reg(ops[1]), off))
        return add(Insn(isa.ST | isa.MEM | _SIZES[m.group(2)], dst, 0, off, _imm32(ops[1])))
    m = re.fullmatch(r"ld(abs|ind)(b|h|w|dw)", mn)
    if m:
        if m.group(1) == "abs":
            want(1)
            return add(Insn(isa.LD | isa.ABS | _SIZES[m.group(2)], imm=_imm32(ops[0])))
        want(2)
        return add(Insn(isa.LD | isa.IND | _SIZES[m.group(2)], 0, _reg(ops[0]), imm=_imm32(ops[1])))
    raise ValueError(f"invalid mnemonic {mnemonic!r}")


def _helper_number(text: str) -> str:
    """``5``, ``name#5`` -> ``5`` (kernel style helper names are decoration)."""
    return text.rsplit("#", 1)[-1] if "#" in text else text


# ---------------------------------------------------------------------------------------
# Kernel dialect

_R = r"([rw]\d+)"
_NUM = r"([+-]?\s*(?:0x[0-9a-fA-F]+|\d+))"
_SZ = r"\*\(\s*([us])(8|16|32|64)\s*\*\s*\)"
_ADDR = r"\(\s*r(\d+)\s*(?:([+-])\s*(0x[0-9a-fA-F]+|\d+))?\s*\)"
_ADDR_NOPAREN = r"r(\d+)\s*(?:([+-])\s*(0x[0-9a-fA-F]+|\d+))?"
_BYTES_SIZE = {"8": isa.B, "16": isa.H, "32": isa.W, "64": isa.DW}
_KALU = {"+": isa.ADD, "-": isa.SUB, "*": isa.MUL, "/": isa.DIV, "|": isa.OR, "&": isa.AND,
         "<<": isa.LSH, ">>": isa.RSH, "%": isa.MOD, "^": isa.XOR, "s>>": isa.ARSH,
         "s/": isa.DIV, "s%": isa.MOD}
_KJCC = {"==": isa.JEQ, ">": isa.JGT, ">=": isa.JGE, "&": isa.JSET, "!=": isa.JNE,
         "s>": isa.JSGT, "s>=": isa.JSGE, "<": isa.JLT, "<=": isa.JLE, "s<": isa.JSLT,
         "s<=": isa.JSLE}
_KATOMIC = {"+": isa.ATOMIC_ADD, "|": isa.ATOMIC_OR, "&": isa.ATOMIC_AND, "^": isa.ATOMIC_XOR}
_KFETCH = {"add": isa.ATOMIC_ADD, "or": isa.ATOMIC_OR, "and": isa.ATOMIC_AND, "xor": isa.ATOMIC_XOR}


def _addr_off(sign: str | None, num: str | None) -> int:
    return _off16((sign or "+") + num) if num else 0


def _kernel_line(text: str, pend: list[_Pending], lineno: int, line: str) -> bool:
    """Assemble one kernel-dialect line; False if the line is not kernel dialect."""

    def add(insn: Insn, label: str | None = None, in_imm: bool = False) -> bool:
        pend.append(_Pending(insn, label, in_imm, lineno, line))
        return True

    t = re.sub(r"\s+", " ", text.strip())
    if t == "exit":
        return add(Insn(isa.OP_EXIT))
    m = re.fullmatch(r"may_goto (?:pc)?(.+)", t)
    if m:   # llvm-objdump's "may_goto +N", the kernel log's "may_goto pc+N"
        off, label = _target(m.group(1))
        return add(Insn(isa.OP_MAY_GOTO, off=off), label)
    m = re.fullmatch(r"(goto|gotol) (.+)", t)
    if m:
        off, label = _target(m.group(2))
        if m.group(1) == "gotol":
            return add(Insn(isa.OP_JA32, imm=isa.to_s32(off)), label, True)
        return add(Insn(isa.OP_JA, off=off), label)
    m = re.fullmatch(r"if " + _R + r" (s?[<>]=?|==|!=|&) (\S+) goto (.+)", t)
    if m:
        cls = isa.JMP32 if m.group(1)[0] == "w" else isa.JMP
        op = _KJCC[m.group(2)]
        off, label = _target(m.group(4))
        if _is_reg(m.group(3)):
            return add(Insn(cls | op | isa.X, _reg(m.group(1)), _reg(m.group(3)), off), label)
        return add(Insn(cls | op, _reg(m.group(1)), 0, off, _imm32(m.group(3))), label)
    m = re.fullmatch(r"callx r(\d+)", t)
    if m:
        return add(Insn(isa.OP_CALL | isa.X, dst=int(m.group(1))))
    m = re.fullmatch(r"call pc ?([+-]) ?(\d+)", t)
    if m:
        return add(Insn(isa.OP_CALL, src=isa.PSEUDO_CALL, imm=_imm32(m.group(1) + m.group(2))))
    m = re.fullmatch(r"call kfunc#(-?\d+)", t)
    if m:
        return add(Insn(isa.OP_CALL, src=isa.PSEUDO_KFUNC_CALL, imm=_imm32(m.group(1))))
    m = re.fullmatch(r"call (?:[\w.]+#)?(-?(?:0x[0-9a-fA-F]+|\d+))", t)
    if m:
        return add(Insn(isa.OP_CALL, imm=_imm32(m.group(1))))
    # lock *(u64 *)(r1 + 0) += r2
    m = re.fullmatch(r"lock " + _SZ + r" ?" + _ADDR + r" ?(\S+?)= ?" + _R, t)
    if m and m.group(1) == "u" and m.group(6) in _KATOMIC:
        return add(Insn(isa.STX | isa.ATOMIC | _BYTES_SIZE[m.group(2)], int(m.group(3)),
                        _reg(m.group(7)), _addr_off(m.group(4), m.group(5)), _KATOMIC[m.group(6)]))
    # r2 = atomic_fetch_add((u64 *)(r1 + 0), r2)
    m = re.fullmatch(_R + r" = atomic_fetch_(add|and|or|xor)\(\(\s*u(32|64) \*\s*\)" + _ADDR
                     + r", " + _R + r"\)", t)
    if m:
        return add(Insn(isa.STX | isa.ATOMIC | _BYTES_SIZE[m.group(3)], int(m.group(4)),
                        _reg(m.group(7)), _addr_off(m.group(5), m.group(6)),
                        _KFETCH[m.group(2)] | isa.FETCH))
    # w0 = load_acquire((u8 *)(r1 + 0)) / store_release((u64 *)(r1 + 8), r2)
    m = re.fullmatch(_R + r" = load_acquire\(\(\s*u(8|16|32|64) \*\s*\)" + _ADDR + r"\)", t)
    if m:
        return add(Insn(isa.STX | isa.ATOMIC | _BYTES_SIZE[m.group(2)], _reg(m.group(1)),
                        int(m.group(3)), _addr_off(m.group(4), m.group(5)), isa.LOAD_ACQ))
    m = re.fullmatch(r"store_release\(\(\s*u(8|16|32|64) \*\s*\)" + _ADDR + r", " + _R + r"\)", t)
    if m:
        return add(Insn(isa.STX | isa.ATOMIC | _BYTES_SIZE[m.group(1)], int(m.group(2)),
                        _reg(m.group(5)), _addr_off(m.group(3), m.group(4)), isa.STORE_REL))
    # r2 = xchg_64(r1 + 0, r2) / w2 = xchg32_32(r1 + 0, w2)
    m = re.fullmatch(_R + r" = xchg(?:32)?_(32|64)\(" + _ADDR_NOPAREN + r", " + _R + r"\)", t)
    if m:
        return add(Insn(isa.STX | isa.ATOMIC | _BYTES_SIZE[m.group(2)], int(m.group(3)),
                        _reg(m.group(6)), _addr_off(m.group(4), m.group(5)), isa.XCHG))
    m = re.fullmatch(_R + r" = cmpxchg(?:32)?_(32|64)\(" + _ADDR_NOPAREN + r", " + _R + r", " + _R + r"\)", t)
    if m:
        return add(Insn(isa.STX | isa.ATOMIC | _BYTES_SIZE[m.group(2)], int(m.group(3)),
                        _reg(m.group(7)), _addr_off(m.group(4), m.group(5)), isa.CMPXCHG))
    # *(u32 *)(r10 - 8) = r1 | imm
    m = re.fullmatch(_SZ + r" ?" + _ADDR + r" = (\S+)", t)
    if m:
        if m.group(1) != "u":
            raise ValueError("stores take u8/u16/u32/u64")
        size = _BYTES_SIZE[m.group(2)]
        dst, off = int(m.group(3)), _addr_off(m.group(4), m.group(5))
        if _is_reg(m.group(6)):
            return add(Insn(isa.STX | isa.MEM | size, dst, _reg(m.group(6)), off))
        return add(Insn(isa.ST | isa.MEM | size, dst, 0, off, _imm32(m.group(6))))
    # r0 = *(u32 *)(r1 + 4)  /  r0 = *(s8 *)(r1 + 4)
    m = re.fullmatch(_R + r" = " + _SZ + r" ?" + _ADDR, t)
    if m:
        mode = isa.MEMSX if m.group(2) == "s" else isa.MEM
        if mode == isa.MEMSX and m.group(3) == "64":
            raise ValueError("there is no sign-extending 64-bit load")
        return add(Insn(isa.LDX | mode | _BYTES_SIZE[m.group(3)], _reg(m.group(1)),
                        int(m.group(4)), _addr_off(m.group(5), m.group(6))))
    # r0 = *(u32 *)skb[4]  /  r0 = *(u32 *)skb[r2 + 4]
    m = re.fullmatch(r"r0 = \*\(\s*u(8|16|32|64) \*\s*\)skb\[(.+)\]", t)
    if m:
        size = _BYTES_SIZE[m.group(1)]
        inner = m.group(2).strip()
        mi = re.fullmatch(r"r(\d+)(?: ?([+-]) ?(0x[0-9a-fA-F]+|\d+))?", inner)
        if mi:
            imm = _imm32((mi.group(2) or "+") + (mi.group(3) or "0"))
            return add(Insn(isa.LD | isa.IND | size, 0, int(mi.group(1)), imm=imm))
        return add(Insn(isa.LD | isa.ABS | size, imm=_imm32(inner)))
    # r1 = IMM ll / r1 = map_idx(0) ll
    m = re.fullmatch(r"r(\d+) = (.+?) ll", t)
    if m:
        _lddw(int(m.group(1)), m.group(2), pend, lineno, line)
        return True
    # r1 = be16 r1 / bswap
    m = re.fullmatch(_R + r" = (le|be|bswap)(16|32|64) " + _R, t)
    if m:
        if _reg(m.group(1)) != _reg(m.group(4)):
            raise ValueError("byte swaps work in place (rX = be16 rX)")
        kind = m.group(2)
        opcode = {"le": isa.ALU | isa.END | isa.TO_LE, "be": isa.ALU | isa.END | isa.TO_BE,
                  "bswap": isa.ALU64 | isa.END}[kind]
        return add(Insn(opcode, _reg(m.group(1)), imm=int(m.group(3))))
    # r1 = addr_space_cast(r2, 0, 1)  (BPF_ADDR_SPACE_CAST, as the kernel prints it)
    m = re.fullmatch(r"(r\d+) = addr_space_cast\((r\d+), (\d+), (\d+)\)", t)
    if m:
        imm = int(m.group(3)) << 16 | int(m.group(4))
        return add(Insn(isa.ALU64 | isa.MOV | isa.X, _reg(m.group(1)), _reg(m.group(2)),
                        isa.ADDR_SPACE_CAST, isa.to_s32(imm & isa.U32)))
    # r0 = (s8)r1
    m = re.fullmatch(_R + r" = \(s(8|16|32)\) ?" + _R, t)
    if m:
        cls = isa.ALU if m.group(1)[0] == "w" else isa.ALU64
        return add(Insn(cls | isa.MOV | isa.X, _reg(m.group(1)), _reg(m.group(3)), int(m.group(2))))
    # r0 = -r0
    m = re.fullmatch(_R + r" = -" + _R, t)
    if m and _reg(m.group(1)) == _reg(m.group(2)):
        cls = isa.ALU if m.group(1)[0] == "w" else isa.ALU64
        return add(Insn(cls | isa.NEG, _reg(m.group(1))))
    # r0 op= src / r0 = src
    m = re.fullmatch(_R + r" (s>>|s/|s%|<<|>>|[-+*/|&%^])?= (\S+)", t)
    if m:
        cls = isa.ALU if m.group(1)[0] == "w" else isa.ALU64
        sym = m.group(2)
        op = isa.MOV if sym is None else _KALU[sym]
        off = 1 if sym in ("s/", "s%") else 0
        dst = _reg(m.group(1))
        if _is_reg(m.group(3)):
            return add(Insn(cls | op | isa.X, dst, _reg(m.group(3)), off))
        return add(Insn(cls | op | isa.K, dst, 0, off, _imm32(m.group(3))))
    return False


def _looks_kernel(text: str) -> bool:
    t = text.strip()
    return ("=" in t or t.startswith(("if ", "goto", "lock *", "callx r", "store_release(",
                                      "may_goto pc"))
            or t.startswith("call pc") or t.startswith("call kfunc#")
            or bool(re.fullmatch(r"call [\w.]+#-?\d+", t)))


# ---------------------------------------------------------------------------------------


def _strip_comment(line: str) -> str:
    line = line.split("//", 1)[0].split(";", 1)[0]
    m = re.search(r"(^|\s)#", line)
    return line[: m.start()] if m else line


def assemble(text: str, *, truncate_wide_imm: bool = False) -> list[Insn]:
    """Assemble text in either dialect into instruction slots (lddw takes two).

    ``truncate_wide_imm=True`` keeps the low 32 bits of an immediate that does not fit
    in 32 bits instead of refusing it, exactly as bpf_conformance's assembler does; only
    the ``.data`` parser asks for it.
    """
    token = _TRUNCATE_WIDE_IMM.set(truncate_wide_imm)
    try:
        return _assemble(text)
    finally:
        _TRUNCATE_WIDE_IMM.reset(token)


def _assemble(text: str) -> list[Insn]:
    pend: list[_Pending] = []
    labels: dict[str, int] = {}
    saw_exit = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).strip()
        # "   12:\t..." listing prefixes (our disassembler / llvm-objdump) and raw bytes.
        line = re.sub(r"^\d+:\s+(?:(?:[0-9a-f]{2} ){8}\s*)?", "", line)
        while True:
            m = re.match(r"^([A-Za-z_.$][\w.$]*):(?:\s+|$)", line)
            if not m:
                break
            name = m.group(1)
            if name in labels:
                raise AsmError(f"duplicate label {name!r}", lineno, raw)
            labels[name] = len(pend)
            line = line[m.end():]
        if not line:
            continue
        try:
            if _looks_kernel(line):
                if not _kernel_line(line, pend, lineno, raw):
                    raise ValueError("unrecognised instruction")
            else:
                parts = line.split(None, 1)
                _ubpf_line(parts[0], _split_operands(parts[1] if len(parts) > 1 else ""),
                           pend, lineno, raw)
        except AsmError:
            raise
        except (ValueError, KeyError) as exc:
            raise AsmError(str(exc), lineno, raw) from None
        if pend and pend[-1].insn.is_exit and not saw_exit:
            saw_exit = True
            labels.setdefault("exit", len(pend) - 1)
    for i, p in enumerate(pend):
        if p.label is None:
            continue
        if p.label not in labels:
            raise AsmError(f"undefined label {p.label!r}", p.lineno, p.line)
        delta = labels[p.label] - i - 1
        if p.label_in_imm:
            if p.insn.is_lddw:  # func(label): relative offset in the low half of imm64
                p.insn.imm64 = (p.insn.imm64 & ~isa.U32) | (delta & isa.U32)
                p.insn.imm = isa.to_s32(delta)
            else:
                p.insn.imm = isa.to_s32(delta)
        else:
            if not -(1 << 15) <= delta < (1 << 15):
                raise AsmError(f"jump to {p.label!r} out of 16-bit range", p.lineno, p.line)
            p.insn.off = delta
    return [p.insn for p in pend]


def assemble_bytes(text: str) -> bytes:
    """Assemble ``text`` and encode the result as raw bytecode."""
    return isa.encode(assemble(text))
