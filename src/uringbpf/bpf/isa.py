"""The eBPF instruction set (RFC 9669, cpu v1-v4): opcodes and instruction encoding.

Everything else in ``uringbpf.bpf`` (assembler, disassembler, interpreter, verifier,
JIT, ELF loader) speaks in terms of :class:`Insn` lists produced here.

A program is a list of 8-byte slots.  A wide ``lddw`` instruction occupies two slots:
the first :class:`Insn` carries the full 64-bit immediate in ``imm64`` and the second
slot is kept as a placeholder ``Insn`` (opcode 0) so that instruction indexes, jump
offsets and relocation offsets stay exactly as in the ELF file and the kernel.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

INSN_SIZE = 8
MAX_INSNS = 1_000_000
STACK_SIZE = 512
# Call frames a program may nest (main included): Linux 7.2's MAX_CALL_FRAMES, measured in
# the tools/kernel-vm guest (16 frames load, 17 are "too deep"); interpreter and JIT keep as many.
MAX_CALL_DEPTH = 16

# Instruction classes (low 3 bits of the opcode).
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
CLASS_NAMES = ("ld", "ldx", "st", "stx", "alu", "jmp", "jmp32", "alu64")

# Source bit for ALU/JMP.
K = 0x00
X = 0x08

# ALU operations (high 4 bits).
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70
NEG, MOD, XOR, MOV, ARSH, END = 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0
ALU_OP_NAMES = {
    ADD: "add", SUB: "sub", MUL: "mul", DIV: "div", OR: "or", AND: "and", LSH: "lsh",
    RSH: "rsh", NEG: "neg", MOD: "mod", XOR: "xor", MOV: "mov", ARSH: "arsh", END: "end",
}

# Byte-swap: for class ALU the source bit selects the target order; ALU64|END is bswap.
TO_LE = 0x00
TO_BE = 0x08

# Jump operations (high 4 bits).
JA, JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70
CALL, EXIT, JLT, JLE, JSLT, JSLE = 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0
JMP_OP_NAMES = {
    JA: "ja", JEQ: "jeq", JGT: "jgt", JGE: "jge", JSET: "jset", JNE: "jne", JSGT: "jsgt",
    JSGE: "jsge", CALL: "call", EXIT: "exit", JLT: "jlt", JLE: "jle", JSLT: "jslt", JSLE: "jsle",
}
CONDITIONAL_JUMPS = (JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE, JLT, JLE, JSLT, JSLE)
#: BPF_JCOND (Linux 6.9+): a jump whose condition is not a register test.  Its only form is
#: ``may_goto`` (JMP | JCOND | K, src_reg BPF_MAY_GOTO = 0, dst_reg 0, imm 0, ``off`` the
#: target): the engines take the jump once the frame's hidden loop counter is spent.
JCOND = 0xE0
MAY_GOTO = 0
#: the hidden counter's start value in every frame that has a may_goto (the kernel's
#: BPF_MAX_LOOPS, include/linux/bpf.h: 8 * 1024 * 1024)
BPF_MAX_LOOPS = 8 * 1024 * 1024

# Load/store sizes (bits 3-4) and modes (bits 5-7).
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
SIZE_BYTES = {W: 4, H: 2, B: 1, DW: 8}
BYTES_SIZE = {4: W, 2: H, 1: B, 8: DW}
SIZE_SUFFIX = {W: "w", H: "h", B: "b", DW: "dw"}
IMM, ABS, IND, MEM, MEMSX, ATOMIC = 0x00, 0x20, 0x40, 0x60, 0x80, 0xC0
# Modes only the verifier writes (as the kernel's include/linux/filter.h): an access
# through an arena pointer, done at arena window + low 32 bits of the register + off.
# Never valid in a program as loaded; see Program.arena_xlated.
PROBE_MEM32, PROBE_MEM32SX = 0xA0, 0xC0
#: STX mode of an atomic through an arena pointer (the kernel's BPF_PROBE_ATOMIC): the
#: same operation, at arena window + low 32 bits of the register + off
PROBE_ATOMIC = 0xE0
#: ``off`` of BPF_ADDR_SPACE_CAST (ALU64 | MOV | X; imm 1: as(1) -> as(0), 1 << 16: back)
ADDR_SPACE_CAST = 1
#: flag the verifier sets in the ``off`` of a 64-bit ALU instruction whose destination is an
#: arena pointer (the kernel's needs_zext): the engines zero-extend the result from 32 bits
ARENA_ZEXT = 0x100

# Atomic operations (in imm of STX|ATOMIC).
FETCH = 0x01
ATOMIC_ADD, ATOMIC_OR, ATOMIC_AND, ATOMIC_XOR = ADD, OR, AND, XOR
XCHG = 0xE0 | FETCH
CMPXCHG = 0xF0 | FETCH
ATOMIC_OPS = {
    ATOMIC_ADD, ATOMIC_OR, ATOMIC_AND, ATOMIC_XOR,
    ATOMIC_ADD | FETCH, ATOMIC_OR | FETCH, ATOMIC_AND | FETCH, ATOMIC_XOR | FETCH,
    XCHG, CMPXCHG,
}
#: load-acquire / store-release (Linux 6.15+, imm of STX|ATOMIC, any of the four sizes):
#: ``dst = load_acquire(src + off)`` and ``store_release(dst + off, src)``.  Not read-modify-
#: write operations, so they are kept apart from ATOMIC_OPS.
LOAD_ACQ = 0x100
STORE_REL = 0x110
ATOMIC_LOAD_STORE = {LOAD_ACQ, STORE_REL}

# src_reg values of a 64-bit immediate load (lddw), as in the kernel's bpf.h.
PSEUDO_MAP_FD = 1
PSEUDO_MAP_VALUE = 2
PSEUDO_BTF_ID = 3
PSEUDO_FUNC = 4
PSEUDO_MAP_IDX = 5
PSEUDO_MAP_IDX_VALUE = 6

# src_reg values of a call.
CALL_HELPER = 0
PSEUDO_CALL = 1        # BPF-to-BPF call, imm = relative offset
PSEUDO_KFUNC_CALL = 2  # kfunc call, imm = kfunc BTF id (we use an index into our kfunc table)

# Registers.
R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)
FP = R10
NUM_REGS = 11

# Commonly used full opcodes.
OP_LDDW = LD | IMM | DW          # 0x18
OP_CALL = JMP | CALL             # 0x85
OP_EXIT = JMP | EXIT             # 0x95
OP_JA = JMP | JA                 # 0x05
OP_JA32 = JMP32 | JA             # 0x06 (gotol: offset in imm)
OP_MAY_GOTO = JMP | JCOND        # 0xe5 (may_goto: offset in off)

U64 = (1 << 64) - 1
U32 = (1 << 32) - 1

_SLOT = struct.Struct("<BBhi")


def to_s64(value: int) -> int:
    """``value`` as a signed 64-bit integer."""
    value &= U64
    return value - (1 << 64) if value >> 63 else value


def to_s32(value: int) -> int:
    """``value`` as a signed 32-bit integer."""
    value &= U32
    return value - (1 << 32) if value >> 31 else value


def to_s16(value: int) -> int:
    """``value`` as a signed 16-bit integer."""
    value &= 0xFFFF
    return value - (1 << 16) if value >> 15 else value


def sign_extend(value: int, bits: int) -> int:
    """Sign-extend the low ``bits`` of ``value`` to a Python int."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


@dataclass(slots=True)
class Insn:
    """One 8-byte instruction slot.

    ``imm`` is the signed 32-bit immediate of the slot.  For the first slot of an
    ``lddw`` ``imm64`` holds the combined 64-bit value (unsigned); the second slot
    is a placeholder with ``opcode == 0``.

    The opcode's parts (``cls``, ``op``, ``source``, ``size``, ``mode``) are plain
    attributes computed once, at construction: the verifier reads them for every
    instruction it processes, and a property call costs more than the rest of a simple
    transfer.  So an instruction's ``opcode`` is never reassigned: make a new ``Insn``
    (as every rewrite here does).
    """

    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    imm64: int = 0
    #: the instruction class (low 3 bits of the opcode: LD, LDX, ST, STX, ALU, JMP, JMP32,
    #: ALU64)
    cls: int = field(init=False, repr=False, compare=False)
    #: the operation bits (high 4 bits: ADD, JEQ...)
    op: int = field(init=False, repr=False, compare=False)
    #: the source bit: K (immediate) or X (register)
    source: int = field(init=False, repr=False, compare=False)
    #: the size bits of a load/store (W, H, B, DW)
    size: int = field(init=False, repr=False, compare=False)
    #: the mode bits of a load/store (IMM, MEM, ATOMIC, MEMSX...)
    mode: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        opcode = self.opcode
        self.cls = opcode & 0x07
        self.op = opcode & 0xF0
        self.source = opcode & 0x08
        self.size = opcode & 0x18
        self.mode = opcode & 0xE0

    @property
    def is_lddw(self) -> bool:
        """True for the two-slot 64-bit immediate load."""
        return self.opcode == OP_LDDW

    @property
    def is_call(self) -> bool:
        """True for a call (helper, kfunc or BPF-to-BPF)."""
        return self.opcode == OP_CALL

    @property
    def is_exit(self) -> bool:
        """True for ``exit``."""
        return self.opcode == OP_EXIT

    @property
    def is_jump(self) -> bool:
        """Any jump that transfers control within the program (not call/exit)."""
        cls = self.cls
        return cls in (JMP, JMP32) and self.op not in (CALL, EXIT)

    @property
    def is_may_goto(self) -> bool:
        """True for ``may_goto`` (0xe5): a conditional jump that tests no register."""
        return self.opcode == OP_MAY_GOTO

    @property
    def is_conditional_jump(self) -> bool:
        """True for a conditional jump (JMP/JMP32 other than ``ja``, call and exit)."""
        return self.is_jump and self.op != JA

    def jump_offset(self) -> int:
        """Relative jump distance in slots (``ja32``/gotol keeps it in ``imm``)."""
        return self.imm if self.opcode == OP_JA32 else self.off

    def encode(self) -> bytes:
        """The instruction's 8 bytes (16 for lddw), little-endian."""
        regs = (self.src & 0xF) << 4 | (self.dst & 0xF)
        if self.is_lddw:
            lo = to_s32(self.imm64 & U32)
            hi = to_s32(self.imm64 >> 32)
            return (_SLOT.pack(self.opcode, regs, to_s16(self.off), lo)
                    + _SLOT.pack(0, 0, 0, hi))
        return _SLOT.pack(self.opcode & 0xFF, regs, to_s16(self.off), to_s32(self.imm))


from ..errors import DecodeError  # noqa: E402,F401  (defined in uringbpf.errors)


def decode(code: bytes | bytearray | memoryview) -> list[Insn]:
    """Decode raw bytecode into slots (lddw keeps its placeholder second slot)."""
    code = bytes(code)
    if len(code) % INSN_SIZE:
        raise DecodeError(f"program length {len(code)} is not a multiple of {INSN_SIZE}")
    count = len(code) // INSN_SIZE
    if count > MAX_INSNS:
        raise DecodeError(f"program has {count} instructions, more than {MAX_INSNS}")
    insns: list[Insn] = []
    pc = 0
    while pc < count:
        opcode, regs, off, imm = _SLOT.unpack_from(code, pc * INSN_SIZE)
        insn = Insn(opcode, regs & 0xF, regs >> 4, off, imm)
        if opcode == OP_LDDW:
            if pc + 1 >= count:
                raise DecodeError(f"lddw at {pc} is missing its second slot")
            op2, regs2, off2, imm2 = _SLOT.unpack_from(code, (pc + 1) * INSN_SIZE)
            if op2 != 0 or regs2 != 0 or off2 != 0:
                raise DecodeError(f"lddw at {pc} has a malformed second slot")
            insn.imm64 = (imm & U32) | ((imm2 & U32) << 32)
            insns.append(insn)
            insns.append(Insn(0, 0, 0, 0, imm2))
            pc += 2
            continue
        insns.append(insn)
        pc += 1
    return insns


def encode(insns: list[Insn]) -> bytes:
    """Encode slots back to bytecode; the placeholder after lddw is emitted by its head."""
    out = bytearray()
    skip = False
    for insn in insns:
        if skip:
            skip = False
            continue
        out += insn.encode()
        skip = insn.is_lddw
    return bytes(out)


def lddw_imm64(insns: list[Insn], pc: int) -> int:
    """The 64-bit immediate of the ``lddw`` at ``pc`` as the kernel reads it: ``imm`` of its
    first slot, the second slot's ``imm`` on top (``imm64`` is a copy a hand-built
    instruction may leave stale; the verifier makes it agree, see ``verifier.cfg``)."""
    return (insns[pc].imm & U32) | ((insns[pc + 1].imm & U32) << 32)


def lddw_pair(dst: int, value: int, src: int = 0) -> list[Insn]:
    """The two slots of ``dst = value ll`` (``src`` selects a pseudo form)."""
    value &= U64
    return [Insn(OP_LDDW, dst, src, 0, to_s32(value & U32), value),
            Insn(0, 0, 0, 0, to_s32(value >> 32))]


def cpu_version_needed(insn: Insn) -> int:
    """Lowest cpu version (1-4) that has this instruction.

    Follows RFC 9669 and the conformance groups of bpf_conformance: 32-bit ALU and
    ``ja``/``call``/``exit`` are v1, ``jlt/jle/jslt/jsle`` v2, JMP32, atomics and
    BPF-to-BPF/kfunc calls v3, and sdiv/smod, movsx, ldsx, bswap and gotol v4.
    """
    cls, op = insn.cls, insn.op
    if cls in (ALU, ALU64):
        if op in (DIV, MOD) and insn.off == 1:
            return 4
        if op == MOV and insn.off in (8, 16, 32):
            return 4
        if op == END and cls == ALU64:
            return 4
        return 1
    if cls == LDX and insn.mode == MEMSX:
        return 4
    if insn.opcode == OP_JA32:
        return 4
    if cls == JMP32:
        return 3
    if cls == JMP and op in (JLT, JLE, JSLT, JSLE):
        return 2
    if insn.opcode == OP_CALL and insn.src in (PSEUDO_CALL, PSEUDO_KFUNC_CALL):
        return 3
    if cls == STX and insn.mode == ATOMIC:
        # LLVM emits load-acquire/store-release from -mcpu=v4 on
        return 4 if insn.imm in ATOMIC_LOAD_STORE else 3
    return 1


# RFC 9669 section 2.4 conformance groups.
GROUPS = ("base32", "base64", "atomic32", "atomic64", "divmul32", "divmul64", "packet", "callx")
DEFAULT_GROUPS = frozenset(GROUPS) - {"packet", "callx"}


def conformance_group(insn: Insn) -> str:
    """The RFC 9669 conformance group an instruction belongs to."""
    cls, op, opcode = insn.cls, insn.op, insn.opcode
    if cls == ALU:
        if op in (MUL, DIV, MOD):
            return "divmul32"
        if op == END and insn.imm == 64:
            return "base64"
        return "base32"
    if cls == ALU64:
        if op in (MUL, DIV, MOD):
            return "divmul64"
        if op == END and insn.imm != 64:
            return "base32"
        return "base64"
    if cls == LD:
        return "packet" if insn.mode in (ABS, IND) else "base64"
    if cls in (LDX, ST, STX):
        if cls == STX and insn.mode == ATOMIC:
            return "atomic64" if insn.size == DW else "atomic32"
        return "base64" if insn.size == DW else "base32"
    if opcode == OP_CALL | X:
        return "callx"
    if cls == JMP and op not in (JA, CALL, EXIT):
        return "base64"
    return "base32"


_ALU_OPS = set(ALU_OP_NAMES)
_JMP_OPS = set(JMP_OP_NAMES)


def is_addr_space_cast(insn: Insn) -> bool:
    """BPF_ADDR_SPACE_CAST: ``ALU64 | MOV | X`` with off 1 (LLVM 19+ for ``__arena``)."""
    return insn.opcode == ALU64 | MOV | X and insn.off == ADDR_SPACE_CAST


def is_arena_access(insn: Insn) -> bool:
    """A load/store/atomic the verifier rewrote to go through the arena window."""
    cls, mode = insn.cls, insn.mode
    if cls == LDX:
        return mode in (PROBE_MEM32, PROBE_MEM32SX)
    return (cls in (ST, STX) and mode == PROBE_MEM32) or (cls == STX and mode == PROBE_ATOMIC)


def is_arena_zext(insn: Insn) -> bool:
    """A 64-bit ALU instruction the verifier marked to zero-extend its result (ARENA_ZEXT)."""
    return insn.cls == ALU64 and insn.op != MOV and bool(insn.off & ARENA_ZEXT)


def plain_access(insn: Insn) -> Insn:
    """The instruction as the program had it before the verifier's arena rewrite (a
    PROBE_MEM32 access back to a load/store, an ARENA_ZEXT mark removed); any other
    instruction unchanged."""
    if is_arena_zext(insn):
        return Insn(insn.opcode, insn.dst, insn.src, insn.off & ~ARENA_ZEXT, insn.imm, insn.imm64)
    if not is_arena_access(insn):
        return insn
    mode = {PROBE_MEM32SX: MEMSX, PROBE_ATOMIC: ATOMIC}.get(insn.mode, MEM)
    return Insn((insn.opcode & ~0xE0) | mode, insn.dst, insn.src, insn.off, insn.imm, insn.imm64)


def invalid_reason(insn: Insn, xlated: bool = False) -> str | None:
    """Why ``insn`` (not a placeholder slot) is not a valid instruction, or None.

    Checks the opcode and the fields the opcode gives meaning to; unused fields are
    not checked (the verifier is stricter).  Engines use this to refuse unknown
    opcodes up front with a message naming what is wrong.  ``xlated``: the program
    went through the verifier's arena rewrite (``Program.arena_xlated``), so the
    PROBE_MEM32 modes are instructions too.
    """
    cls, op, opcode = insn.cls, insn.op, insn.opcode
    if insn.dst > 10:
        return f"invalid destination register r{insn.dst}"
    if cls in (ALU, ALU64):
        if xlated and is_arena_zext(insn):
            insn = plain_access(insn)
        if op not in _ALU_OPS:
            return f"unknown ALU opcode {opcode:#04x}"
        if insn.source == X and insn.src > 10 and op not in (NEG, END):
            return f"invalid source register r{insn.src}"
        if op == END:
            if insn.imm not in (16, 32, 64):
                return f"invalid byte swap width {insn.imm}"
            if cls == ALU64 and insn.source != 0:
                return f"unknown ALU opcode {opcode:#04x}"
        if op == NEG and insn.source != 0:
            return f"unknown ALU opcode {opcode:#04x}"
        if op in (DIV, MOD) and insn.off not in (0, 1):
            return f"invalid offset {insn.off} for {ALU_OP_NAMES[op]}"
        if is_addr_space_cast(insn):
            if insn.imm not in (1, 1 << 16):
                return f"invalid addr_space_cast {insn.imm:#x}"
            return None
        if op == MOV and insn.off:
            if insn.source != X or insn.off not in (8, 16, 32) or (cls == ALU and insn.off == 32):
                return f"invalid movsx offset {insn.off}"
        return None
    if cls in (JMP, JMP32):
        if opcode == OP_MAY_GOTO:
            if insn.src != MAY_GOTO or insn.dst or insn.imm:
                return f"invalid may_goto imm {insn.imm}"
            return None
        if op not in _JMP_OPS:
            return f"unknown jump opcode {opcode:#04x}"
        if op in (CALL, EXIT):
            if cls == JMP32:
                return f"unknown jump opcode {opcode:#04x}"
            if op == CALL:
                if insn.source == X:
                    if insn.dst > 10:
                        return f"invalid callx register r{insn.dst}"
                elif insn.src not in (CALL_HELPER, PSEUDO_CALL, PSEUDO_KFUNC_CALL):
                    return f"invalid call source {insn.src}"
            elif insn.source:
                return f"unknown jump opcode {opcode:#04x}"
            return None
        if op == JA and insn.source:
            return f"unknown jump opcode {opcode:#04x}"
        if insn.source == X and insn.src > 10:
            return f"invalid source register r{insn.src}"
        return None
    if cls == LD:
        if opcode == OP_LDDW:
            if insn.src > PSEUDO_MAP_IDX_VALUE:
                return f"invalid lddw source {insn.src}"
            return None
        if insn.mode in (ABS, IND) and insn.size != DW:
            return None
        return f"unknown load opcode {opcode:#04x}"
    mem = (MEM, PROBE_MEM32) if xlated else (MEM,)
    if cls == LDX:
        memsx = (MEMSX, PROBE_MEM32SX) if xlated else (MEMSX,)
        if insn.mode in mem or (insn.mode in memsx and insn.size != DW):
            return None if insn.src <= 10 else f"invalid source register r{insn.src}"
        return f"unknown load opcode {opcode:#04x}"
    if cls == ST:
        return None if insn.mode in mem else f"unknown store opcode {opcode:#04x}"
    if cls == STX:
        if insn.src > 10:
            return f"invalid source register r{insn.src}"
        if insn.mode in mem:
            return None
        atomic = insn.mode == ATOMIC or (xlated and insn.mode == PROBE_ATOMIC)
        if atomic and insn.imm in ATOMIC_LOAD_STORE:
            return None
        if atomic and insn.size in (W, DW):
            if insn.imm in ATOMIC_OPS:
                return None
            return f"unknown atomic operation {insn.imm:#x}"
        return f"unknown store opcode {opcode:#04x}"
    return f"unknown opcode {opcode:#04x}"  # pragma: no cover - all 8 classes handled


@dataclass
class Program:
    """A program as the loader hands it to the verifier and the engines.

    ``insns`` may contain calls to subprograms (``PSEUDO_CALL``) and pseudo ``lddw``
    forms that refer to maps by index into ``maps``; ``kfuncs`` lists the kfunc
    names that ``PSEUDO_KFUNC_CALL`` instructions index with their ``imm``.
    """

    name: str
    insns: list[Insn]
    section: str = ""
    prog_type: str = "socket_filter"
    maps: list = field(default_factory=list)
    kfuncs: list[str] = field(default_factory=list)
    sleepable: bool = False
    attach: str = ""
    btf_func_name: str = ""
    #: set by the verifier when it rewrote arena accesses to the PROBE_* modes (then, and
    #: only then, are those modes part of the program: verifying it again accepts them)
    arena_xlated: bool = False
    #: set by the verifier: the instructions no explored path reached, by pc, which it
    #: replaced with ``ja -1`` (the kernel's sanitize_dead_code); put back before the
    #: program is verified again
    dead_code: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.insns)

    @property
    def bytecode(self) -> bytes:
        """The program's instructions encoded as raw bytes."""
        return encode(self.insns)
