"""A small classic-BPF (cBPF) virtual machine: checker and interpreter.

Linux 7.0's io_uring filters are classic BPF programs (``struct sock_filter``), not
eBPF, so they get their own tiny VM instead of going through the eBPF engines.  This
module is the generic half, after ``net/core/filter.c``: the structural check every
classic program passes (``bpf_check_classic``: known opcodes, forward in-range jumps,
no constant division by zero, shifts < 32, scratch-memory words < 16 and stored
before they are loaded, a final RET) and an interpreter.  The io_uring-specific
whitelist (which opcodes a filter may use and how context loads are rewritten) lives
in :mod:`uringbpf.designs.filter`, just as the kernel passes it as a callback.

Context loads: socket filters load big-endian packet bytes with ``LD|ABS``.  Filters
whose context is a C struct (seccomp, io_uring) have those loads rewritten to
``LDX|W|ABS``, which the kernel turns into a native (little-endian here) 32-bit load
of the struct; this VM implements both forms.
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

# Instruction classes, sizes, modes, ops and sources (include/uapi/linux/filter.h).
LD, LDX, ST, STX, ALU, JMP, RET, MISC = range(8)
W, H, B = 0x00, 0x08, 0x10
IMM, ABS, IND, MEM, LEN, MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0)
JA, JEQ, JGT, JGE, JSET = 0x00, 0x10, 0x20, 0x30, 0x40
K, X, A = 0x00, 0x08, 0x10
TAX, TXA = 0x00, 0x80

MEMWORDS = 16
MAXINSNS = 4096
SKF_AD_OFF = -0x1000 & 0xFFFFFFFF   # ancillary-data loads start here (not supported)
INSN_SIZE = 8                        # sizeof(struct sock_filter)

_U32 = 0xFFFFFFFF
_INSN = struct.Struct("<HBBI")


from ...errors import CbpfError  # noqa: E402,F401  (defined in uringbpf.errors)


@dataclass(frozen=True)
class SockFilter:
    """One ``struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}``."""

    code: int
    jt: int = 0
    jf: int = 0
    k: int = 0

    def pack(self) -> bytes:
        """The instruction as ``struct sock_filter`` bytes (8, native order)."""
        return _INSN.pack(self.code & 0xFFFF, self.jt & 0xFF, self.jf & 0xFF, self.k & _U32)


def stmt(code: int, k: int = 0) -> SockFilter:
    """``BPF_STMT(code, k)``."""
    return SockFilter(code, 0, 0, k & _U32)


def jump(code: int, k: int, jt: int, jf: int) -> SockFilter:
    """``BPF_JUMP(code, k, jt, jf)``."""
    return SockFilter(code, jt, jf, k & _U32)


def pack(insns: Iterable[SockFilter]) -> bytes:
    """Encode a classic BPF program as ``struct sock_filter`` bytes."""
    return b"".join(i.pack() for i in insns)


def unpack(data: bytes) -> list[SockFilter]:
    """Decode ``struct sock_filter`` bytes; CbpfError if the length is not a multiple of 8."""
    if len(data) % INSN_SIZE:
        raise CbpfError(f"classic program length {len(data)} is not a multiple of {INSN_SIZE}")
    return [SockFilter(*_INSN.unpack_from(data, off)) for off in range(0, len(data), INSN_SIZE)]


# Every opcode a classic program may contain (chk_code_allowed in net/core/filter.c).
_ALU_OPS = (ADD, SUB, MUL, DIV, MOD, AND, OR, XOR, LSH, RSH)
_COND_JUMPS = tuple(JMP | op | src for op in (JEQ, JGT, JGE, JSET) for src in (K, X))
ALLOWED_CODES = frozenset(
    [ALU | op | src for op in _ALU_OPS for src in (K, X)]
    + [ALU | NEG]
    + [LD | sz | mode for sz in (W, H, B) for mode in (ABS, IND)]
    + [LD | W | LEN, LD | IMM, LD | MEM, LDX | W | LEN, LDX | B | MSH, LDX | IMM, LDX | MEM]
    + [ST, STX, MISC | TAX, MISC | TXA, RET | K, RET | A, JMP | JA]
    + list(_COND_JUMPS)
)
# Opcodes only produced by a context-specific rewrite (never accepted from the user).
CTX_LOAD = LDX | W | ABS


def check_classic(insns: Sequence[SockFilter]) -> None:
    """Raise :class:`CbpfError` (EINVAL) unless ``insns`` passes ``bpf_check_classic``."""
    flen = len(insns)
    if flen == 0 or flen > MAXINSNS:
        raise CbpfError(f"classic program has {flen} instructions (1..{MAXINSNS} allowed)")
    for pc, ins in enumerate(insns):
        code, k = ins.code, ins.k
        if code not in ALLOWED_CODES:
            raise CbpfError(f"opcode {code:#06x} is not a classic BPF instruction", pc=pc)
        if code in (ALU | DIV | K, ALU | MOD | K) and k == 0:
            raise CbpfError("division by constant zero", pc=pc)
        elif code in (ALU | LSH | K, ALU | RSH | K) and k >= 32:
            raise CbpfError(f"shift by {k} >= 32", pc=pc)
        elif code in (LD | MEM, LDX | MEM, ST, STX) and k >= MEMWORDS:
            raise CbpfError(f"scratch memory word {k} >= {MEMWORDS}", pc=pc)
        elif code == JMP | JA and k >= flen - pc - 1:
            raise CbpfError(f"ja +{k} jumps out of the program", pc=pc)
        elif code in _COND_JUMPS and (pc + ins.jt + 1 >= flen or pc + ins.jf + 1 >= flen):
            raise CbpfError("conditional jump out of the program", pc=pc)
        elif code & 0x07 == LD and code & 0xE0 in (ABS, IND) and k >= SKF_AD_OFF:
            raise CbpfError("ancillary-data loads are not supported", pc=pc)
    if insns[-1].code not in (RET | K, RET | A):
        raise CbpfError("classic program does not end with a return", pc=flen - 1)
    _check_load_and_stores(insns)


def _check_load_and_stores(insns: Sequence[SockFilter]) -> None:
    """Every scratch word must be stored on every path before it is loaded."""
    masks = [0xFFFF] * len(insns)
    valid = 0
    for pc, ins in enumerate(insns):
        valid &= masks[pc]
        code = ins.code
        if code in (ST, STX):
            valid |= 1 << ins.k
        elif code in (LD | MEM, LDX | MEM):
            if not valid & (1 << ins.k):
                raise CbpfError(f"scratch word {ins.k} loaded before it is stored", pc=pc)
        elif code == JMP | JA:
            masks[pc + 1 + ins.k] &= valid
            valid = 0xFFFF
        elif code in _COND_JUMPS:
            masks[pc + 1 + ins.jt] &= valid
            masks[pc + 1 + ins.jf] &= valid
            valid = 0xFFFF


class Program:
    """A checked classic program, ready to run on a context buffer.

    ``transform`` is the context-specific pass the kernel runs after the generic check
    (it may rewrite instructions and must raise :class:`CbpfError` to refuse them).
    """

    def __init__(self, insns: Sequence[SockFilter],
                 transform: Callable[[list[SockFilter]], list[SockFilter]] | None = None):
        insns = list(insns)
        check_classic(insns)
        if transform is not None:
            insns = transform(insns)
        self.insns: tuple[SockFilter, ...] = tuple(insns)

    def __len__(self) -> int:
        return len(self.insns)

    def run(self, ctx: bytes, packet: bytes | None = None) -> int:
        """Run on ``ctx`` (``packet`` is what ``LD|ABS`` loads read; default ``ctx``)."""
        return run(self.insns, ctx, packet)


def run(insns: Sequence[SockFilter], ctx: bytes, packet: bytes | None = None) -> int:
    """Interpret a checked program; returns the u32 the program returned.

    Runtime faults return 0 as in the kernel: division by X == 0 and packet loads
    outside the packet.  Shifts by X use the low 5 bits (the eBPF ALU32 semantics the
    kernel's translation runs on).
    """
    pkt = ctx if packet is None else packet
    a = x = 0
    mem = [0] * MEMWORDS
    pc = 0
    n = len(insns)
    while pc < n:
        ins = insns[pc]
        code, k = ins.code, ins.k
        pc += 1
        cls = code & 0x07
        if cls == ALU:
            op = code & 0xF0
            if op == NEG:
                a = -a & _U32
                continue
            src = x if code & X else k
            if op == ADD:
                a = (a + src) & _U32
            elif op == SUB:
                a = (a - src) & _U32
            elif op == MUL:
                a = (a * src) & _U32
            elif op == DIV:
                if src == 0:
                    return 0
                a //= src
            elif op == MOD:
                if src == 0:
                    return 0
                a %= src
            elif op == AND:
                a &= src
            elif op == OR:
                a |= src
            elif op == XOR:
                a ^= src
            elif op == LSH:
                a = (a << (src & 31)) & _U32
            elif op == RSH:
                a >>= src & 31
        elif cls == JMP:
            op = code & 0xF0
            if op == JA:
                pc += k
                continue
            src = x if code & X else k
            if op == JEQ:
                taken = a == src
            elif op == JGT:
                taken = a > src
            elif op == JGE:
                taken = a >= src
            else:
                taken = bool(a & src)
            pc += ins.jt if taken else ins.jf
        elif cls == RET:
            return a if code & 0x18 == A else k
        elif code == CTX_LOAD:
            a = int.from_bytes(ctx[k:k + 4], "little")
        elif cls == LD:
            mode = code & 0xE0
            if mode == IMM:
                a = k
            elif mode == MEM:
                a = mem[k]
            elif mode == LEN:
                a = len(pkt)
            else:
                size = {W: 4, H: 2, B: 1}[code & 0x18]
                off = k if mode == ABS else (x + k) & _U32
                if off + size > len(pkt):
                    return 0
                a = int.from_bytes(pkt[off:off + size], "big")
        elif cls == LDX:
            mode = code & 0xE0
            if mode == IMM:
                x = k
            elif mode == MEM:
                x = mem[k]
            elif mode == LEN:
                x = len(pkt)
            else:  # MSH: x = 4 * (pkt[k] & 0xf), the IPv4 header length idiom
                if k >= len(pkt):
                    return 0
                x = (pkt[k] & 0x0F) << 2
        elif cls == ST:
            mem[k] = a
        elif cls == STX:
            mem[k] = x
        elif cls == MISC:
            if code & 0xF8 == TXA:
                a = x
            else:
                x = a
    raise CbpfError("fell off the end of the program")  # unreachable after check_classic
