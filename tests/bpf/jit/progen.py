"""Random well-defined eBPF programs for differential testing (JIT vs interpreter).

"Well-defined" means every engine must give the same r0 and the same memory: registers are
written before they are read, memory accesses stay inside a zeroed stack window, jumps go
forward (so every program ends), calls form a DAG and r1-r5 (undefined after a call in the
ISA) are rewritten before use. Within those rules every ALU/JMP/JMP32 operation, every
load/store size, sign-extending loads, atomics, byte swaps and BPF-to-BPF calls appear
with edge-case operands.
"""

from __future__ import annotations

from hypothesis import strategies as st

from uringbpf.bpf import isa
from uringbpf.bpf.isa import Insn

#: The stack window programs use: [r10 - WINDOW, r10), zeroed by the prologue.
WINDOW = 64

EDGE_IMM = [0, 1, -1, 2, 7, 31, 32, 33, 63, 64, 0x7FFFFFFF, -0x80000000, 0xFFFF, 0x80]
EDGE_IMM64 = [0, 1, isa.U64, 1 << 63, (1 << 63) - 1, isa.U32, 1 << 31, 1 << 32,
              0xFFFFFFFF00000000, 0x8000000080000000]

imm32 = st.one_of(st.sampled_from(EDGE_IMM), st.integers(-(1 << 31), (1 << 31) - 1))
imm64 = st.one_of(st.sampled_from(EDGE_IMM64), st.integers(0, isa.U64))
gpr = st.integers(0, 9)

ALU_OPS = [isa.ADD, isa.SUB, isa.MUL, isa.DIV, isa.OR, isa.AND, isa.LSH, isa.RSH,
           isa.MOD, isa.XOR, isa.MOV, isa.ARSH]
JMP_OPS = [isa.JEQ, isa.JGT, isa.JGE, isa.JSET, isa.JNE, isa.JSGT, isa.JSGE, isa.JLT,
           isa.JLE, isa.JSLT, isa.JSLE]


@st.composite
def alu_insn(draw) -> list[Insn]:
    cls = draw(st.sampled_from([isa.ALU, isa.ALU64]))
    kind = draw(st.integers(0, 9))
    dst = draw(gpr)
    if kind == 0:
        return [Insn(cls | isa.NEG, dst)]
    if kind == 1:
        if cls == isa.ALU64:
            return [Insn(isa.ALU64 | isa.END, dst, imm=draw(st.sampled_from([16, 32, 64])))]
        order = draw(st.sampled_from([isa.TO_LE, isa.TO_BE]))
        return [Insn(isa.ALU | isa.END | order, dst, imm=draw(st.sampled_from([16, 32, 64])))]
    if kind == 2:
        bits = draw(st.sampled_from([8, 16, 32] if cls == isa.ALU64 else [8, 16]))
        return [Insn(cls | isa.MOV | isa.X, dst, draw(gpr), bits)]
    op = draw(st.sampled_from(ALU_OPS))
    off = draw(st.sampled_from([0, 1])) if op in (isa.DIV, isa.MOD) else 0
    if draw(st.booleans()):
        return [Insn(cls | op | isa.X, dst, draw(gpr), off)]
    return [Insn(cls | op | isa.K, dst, 0, off, draw(imm32))]


def _slot(draw, size: int) -> int:
    """A negative r10 offset of a ``size``-aligned slot inside the window."""
    return -size * draw(st.integers(1, WINDOW // size))


@st.composite
def mem_insn(draw) -> list[Insn]:
    size = draw(st.sampled_from([isa.B, isa.H, isa.W, isa.DW]))
    nbytes = isa.SIZE_BYTES[size]
    off = _slot(draw, nbytes)
    kind = draw(st.integers(0, 4))
    if kind == 0:
        mode = isa.MEMSX if size != isa.DW and draw(st.booleans()) else isa.MEM
        return [Insn(isa.LDX | mode | size, draw(gpr), isa.R10, off)]
    if kind == 1:
        return [Insn(isa.STX | isa.MEM | size, isa.R10, draw(gpr), off)]
    if kind == 2:
        return [Insn(isa.ST | isa.MEM | size, isa.R10, 0, off, draw(imm32))]
    # atomics: 32/64 bits, through a pointer register made from r10
    width = draw(st.sampled_from([isa.W, isa.DW]))
    off = _slot(draw, isa.SIZE_BYTES[width])
    code = draw(st.sampled_from(sorted(isa.ATOMIC_OPS)))
    ptr = draw(st.integers(1, 9))
    src = draw(st.integers(0, 9).filter(lambda r: r != ptr))
    # The pointer register is overwritten afterwards: stack addresses differ between engines.
    return [Insn(isa.ALU64 | isa.MOV | isa.X, ptr, isa.R10),
            Insn(isa.STX | isa.ATOMIC | width, ptr, src, off, code),
            Insn(isa.ALU64 | isa.MOV | isa.K, ptr, 0, 0, draw(imm32))]


def _define_regs(draw, regs) -> list[Insn]:
    out = []
    for r in regs:
        out.extend(isa.lddw_pair(r, draw(imm64)))
    return out


@st.composite
def body(draw, callees: list[str], min_size=3, max_size=25) -> list:
    """A list of units: a list of Insn (one jump target at its start), ("jump", Insn,
    distance in units) or ("call" | "callx", name, [insns that redefine r1-r5])."""
    units: list = []
    count = draw(st.integers(min_size, max_size))
    for _ in range(count):
        kind = draw(st.integers(0, 9))
        if kind <= 4:
            units.append(draw(alu_insn()))
        elif kind <= 6:
            units.append(draw(mem_insn()))
        elif kind <= 8:
            cls = draw(st.sampled_from([isa.JMP, isa.JMP32]))
            op = draw(st.sampled_from(JMP_OPS))
            if draw(st.booleans()):
                insn = Insn(cls | op | isa.X, draw(gpr), draw(gpr))
            else:
                insn = Insn(cls | op | isa.K, draw(gpr), 0, 0, draw(imm32))
            units.append(("jump", insn, draw(st.integers(0, 6))))
        elif callees:
            kind = "callx" if draw(st.booleans()) else "call"
            units.append((kind, draw(st.sampled_from(callees)), _define_regs(draw, range(1, 6))))
        else:
            units.append(("jump", Insn(isa.OP_JA), draw(st.integers(0, 3))))
    return units


def _fold_registers() -> list[Insn]:
    """r0 ^= r1..r9 rotated, so every register's final value reaches the result."""
    out = []
    for r in range(1, 10):
        out.append(Insn(isa.ALU64 | isa.XOR | isa.X, 0, r))
        out.append(Insn(isa.ALU64 | isa.MUL | isa.K, 0, 0, 0, 0x01000193))
    return out


def _size(unit) -> int:
    if isinstance(unit, list):
        return len(unit)
    if unit[0] == "jump":
        return 1
    if unit[0] == "callx":
        return 3 + len(unit[2])      # lddw r0, func(...) (2 slots) + callx r0
    return 1 + len(unit[2])


def _resolve(units: list, starts: dict[str, int], base: int) -> list[Insn]:
    """Lay out units from slot ``base``: fix forward jumps (to unit starts) and calls."""
    positions = []
    pc = base
    for unit in units:
        positions.append(pc)
        pc += _size(unit)
    out: list[Insn] = []
    last = len(units) - 1
    for i, unit in enumerate(units):
        here = positions[i]
        if isinstance(unit, list):
            out.extend(unit)
        elif unit[0] == "jump":
            insn, dist = unit[1], unit[2]
            target = positions[min(i + 1 + dist, last)]   # never past the trailing exit
            off = target - here - 1
            if insn.opcode == isa.OP_JA:
                out.append(Insn(isa.OP_JA, off=off))
            else:
                out.append(Insn(insn.opcode, insn.dst, insn.src, off, insn.imm))
        elif unit[0] == "callx":
            # The function's address differs between engines: it goes in r0, which is not
            # an argument and which the call overwrites.
            rel = starts[unit[1]] - here - 1
            out.extend(isa.lddw_pair(0, rel & isa.U32, isa.PSEUDO_FUNC))
            out.append(Insn(isa.OP_CALL | isa.X, dst=0))
            out.extend(unit[2])
        else:
            out.append(Insn(isa.OP_CALL, src=isa.PSEUDO_CALL, imm=starts[unit[1]] - here - 1))
            out.extend(unit[2])
    return out


@st.composite
def programs(draw, max_funcs: int = 3) -> isa.Program:
    nfuncs = draw(st.integers(1, max_funcs))
    names = [f"f{i}" for i in range(nfuncs)]
    bodies = []
    for i, name in enumerate(names):
        regs = range(0, 10) if i == 0 else (0, 6, 7, 8, 9)
        prologue = [Insn(isa.ST | isa.MEM | isa.DW, isa.R10, 0, off, 0)
                    for off in range(-WINDOW, 0, 8)]
        prologue.extend(_define_regs(draw, regs))
        units = [prologue] + draw(body(names[i + 1:]))
        if i == 0:
            # Fold every register and the stack window into r0.
            epilogue = _fold_registers()
            for off in range(-WINDOW, 0, 8):
                epilogue.append(Insn(isa.LDX | isa.MEM | isa.DW, 1, isa.R10, off))
                epilogue.append(Insn(isa.ALU64 | isa.XOR | isa.X, 0, 1))
                epilogue.append(Insn(isa.ALU64 | isa.MUL | isa.K, 0, 0, 0, 0x01000193))
            units.append(epilogue)
        units.append([Insn(isa.OP_EXIT)])
        bodies.append(units)
    starts = {}
    pc = 0
    for name, units in zip(names, bodies):
        starts[name] = pc
        pc += sum(_size(u) for u in units)
    insns: list[Insn] = []
    for name, units in zip(names, bodies):
        insns.extend(_resolve(units, starts, starts[name]))
    return isa.Program("random", insns)


# ---------------------------------------------------------------------------------------
# Programs that may fail: memory accesses around a data buffer and helpers that may raise.

DATA_SIZE = 32
#: r9 holds the data pointer for the whole program (no generated instruction writes it).
DATA_REG = 9
FAULTY_HELPER = 1000
data_gpr = st.integers(0, 8)


@st.composite
def faulty_units(draw, count: int) -> list:
    units: list = []
    for _ in range(count):
        kind = draw(st.integers(0, 9))
        if kind <= 3:
            insns = draw(alu_insn())
            units.append([i for i in insns if i.dst != DATA_REG] or
                         [Insn(isa.ALU64 | isa.ADD | isa.K, 0, imm=1)])
        elif kind <= 6:
            size = draw(st.sampled_from([isa.B, isa.H, isa.W, isa.DW]))
            off = draw(st.integers(-8, DATA_SIZE + 8))
            what = draw(st.integers(0, 3))
            if what == 0:
                units.append([Insn(isa.LDX | isa.MEM | size, draw(data_gpr), DATA_REG, off)])
            elif what == 1:
                units.append([Insn(isa.STX | isa.MEM | size, DATA_REG, draw(data_gpr), off)])
            elif what == 2:
                units.append([Insn(isa.ST | isa.MEM | size, DATA_REG, 0, off, draw(imm32))])
            else:
                width = draw(st.sampled_from([isa.W, isa.DW]))
                code = draw(st.sampled_from(sorted(isa.ATOMIC_OPS)))
                units.append([Insn(isa.STX | isa.ATOMIC | width, DATA_REG, draw(data_gpr),
                                   off, code)])
        elif kind <= 8:
            op = draw(st.sampled_from(JMP_OPS))
            units.append(("jump", Insn(isa.JMP | op | isa.K, draw(data_gpr), 0, 0,
                                       draw(imm32)), draw(st.integers(0, 4))))
        else:
            units.append([Insn(isa.ALU64 | isa.MOV | isa.X, 1, draw(data_gpr)),
                          Insn(isa.OP_CALL, imm=FAULTY_HELPER)]
                         + _define_regs(draw, range(1, 6)))
    return units


@st.composite
def faulty_programs(draw) -> isa.Program:
    prologue = [Insn(isa.ALU64 | isa.MOV | isa.X, DATA_REG, 1)]
    prologue.extend(_define_regs(draw, [0, 2, 3, 4, 5, 6, 7, 8]))
    units = [prologue] + draw(faulty_units(draw(st.integers(3, 20))))
    fold = []
    for r in range(1, 9):
        fold.append(Insn(isa.ALU64 | isa.XOR | isa.X, 0, r))
        fold.append(Insn(isa.ALU64 | isa.MUL | isa.K, 0, 0, 0, 0x01000193))
    units.append(fold)
    units.append([Insn(isa.OP_EXIT)])
    return isa.Program("faulty", _resolve(units, {}, 0))
