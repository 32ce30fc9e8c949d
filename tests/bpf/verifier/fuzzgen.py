"""Soundness fuzzing: random and mutated programs; whatever the verifier accepts must run
without a memory violation (shared by tests/bpf/verifier/test_fuzz.py and bench/fuzz_verifier.py).

Programs are socket filters (r1 = data buffer, r2 = its length) that may also touch one
array map value (``lddw map_value``) and the stack.  The run-time layout leaves unmapped
gaps around every region, so an out-of-bounds access is always a
:class:`BpfMemoryError` in the interpreter, never a silent hit in a neighbour.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from uringbpf.bpf import helpers, isa, verifier
from uringbpf.bpf.memory import AddressSpace, Buffer, BpfMemoryError, BpfRuntimeError

VALUE_SIZE = 24
ALU_OPS = [isa.ADD, isa.SUB, isa.MUL, isa.DIV, isa.OR, isa.AND, isa.LSH, isa.RSH, isa.MOD,
           isa.XOR, isa.MOV, isa.ARSH]
JMP_OPS = [isa.JEQ, isa.JNE, isa.JGT, isa.JGE, isa.JLT, isa.JLE, isa.JSGT, isa.JSGE, isa.JSLT,
           isa.JSLE, isa.JSET]
SIZES = [isa.B, isa.H, isa.W, isa.DW]


@dataclass(eq=False)
class RunMap:
    """An array map whose single value lives in the fuzz arena (the interpreter reads
    ``value_addr``; the verifier reads the sizes)."""

    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    value_addr: int = 0
    addr: int = 0
    map_flags: int = 0


class Arena:
    """One native buffer with a data region and a map-value region, separated by gaps."""

    def __init__(self):
        self.buf = Buffer(8192)
        self.data_off = 1024
        self.value_off = 4096

    def runtime(self, data: bytes, value: bytes) -> tuple[helpers.Runtime, int]:
        mem = AddressSpace()
        if data:
            self.buf.write(self.data_off, data)
            mem.add(self.buf.addr + self.data_off, len(data), True, "data")
        self.buf.write(self.value_off, value)
        mem.add(self.buf.addr + self.value_off, VALUE_SIZE, True, "map value")
        return helpers.Runtime(mem=mem), self.buf.addr + self.data_off

    @property
    def value_addr(self) -> int:
        return self.buf.addr + self.value_off


def _rand_imm(rng: random.Random) -> int:
    return rng.choice([0, 1, 2, 3, 4, 7, 8, 15, 16, 23, 24, 31, 32, 63, 64, -1, -8,
                       rng.randint(-64, 64), rng.randint(0, 1 << 20)])


def _offset(rng: random.Random, base: int) -> int:
    if rng.random() < 0.25:
        return rng.randint(-24, 24)
    if base == 10:
        return -8 * rng.randint(1, 8) + rng.choice([0, 0, 4])
    if base == 9:
        return rng.choice([0, 4, 8, -8])
    if base == 8:
        return rng.choice([0, 4, 8, 16, 20])
    if base == 6:
        return rng.choice([0, 1, 4, 8, 12, 16, 24])
    return rng.randint(-8, 16)


def _setup(rng: random.Random) -> list[isa.Insn]:
    # r6 = data, r7 = len, r8 = map value, r9 = stack pointer
    setup = [isa.Insn(isa.ALU64 | isa.MOV | isa.X, 6, 1), isa.Insn(isa.ALU64 | isa.MOV | isa.X, 7, 2)]
    setup += isa.lddw_pair(8, 0, isa.PSEUDO_MAP_IDX_VALUE)
    setup += [isa.Insn(isa.ALU64 | isa.MOV | isa.X, 9, 10),
              isa.Insn(isa.ALU64 | isa.ADD | isa.K, 9, 0, 0, -rng.choice([8, 16, 32]))]
    for r in range(6):
        setup.append(isa.Insn(isa.ALU64 | isa.MOV | isa.K, r, 0, 0, _rand_imm(rng)))
    if rng.random() < 0.8:  # initialise some stack
        for k in range(1, rng.choice([2, 5, 9])):
            setup.append(isa.Insn(isa.ST | isa.MEM | isa.DW, 10, 0, -8 * k, rng.choice([0, 1, 77])))
    if rng.random() < 0.7:  # if r7 < K goto end (off == -2: fixed when laid out)
        setup.append(isa.Insn(isa.JMP | rng.choice([isa.JLT, isa.JLE]) | isa.K, 7, 0, -2,
                              rng.choice([0, 4, 8, 16, 24, 32, 64])))
    return setup


def _group(rng: random.Random) -> list[isa.Insn]:
    """One random instruction or idiom; conditional jumps carry off=-1 (target: later)."""
    kind = rng.random()
    dst = rng.randrange(0, 6)
    if kind < 0.30:
        dst = rng.randrange(0, 3)
        op = rng.choice(ALU_OPS)
        cls = rng.choice([isa.ALU64, isa.ALU64, isa.ALU])
        if rng.random() < 0.5:
            imm = _rand_imm(rng)
            if op in (isa.LSH, isa.RSH, isa.ARSH):
                imm = rng.randrange(0, 32)
            if op in (isa.DIV, isa.MOD) and imm == 0:
                imm = 3
            return [isa.Insn(cls | op | isa.K, dst, 0, 0, imm)]
        return [isa.Insn(cls | op | isa.X, dst, rng.randrange(0, 10))]
    if kind < 0.42:  # pointer copies and arithmetic
        base = rng.choice([6, 8, 9, 10])
        dst = rng.randrange(3, 6)
        group = [isa.Insn(isa.ALU64 | isa.MOV | isa.X, dst, base)]
        if rng.random() < 0.7:
            if rng.random() < 0.5:
                group.append(isa.Insn(isa.ALU64 | isa.ADD | isa.K, dst, 0, 0, rng.randint(-16, 24)))
            else:
                group.append(isa.Insn(isa.ALU64 | isa.ADD | isa.X, dst, rng.randrange(0, 6)))
        return group
    if kind < 0.52:  # masks keep indexes small
        return [isa.Insn(isa.ALU64 | isa.AND | isa.K, dst, 0, 0, rng.choice([1, 3, 7, 15, 31]))]
    if kind < 0.68:  # loads
        base = rng.choice([6, 8, 9, 10, rng.randrange(0, 6)])
        size = rng.choice(SIZES)
        return [isa.Insn(isa.LDX | isa.MEM | size, dst, base, _offset(rng, base))]
    if kind < 0.80:  # stores
        base = rng.choice([6, 8, 9, 10, rng.randrange(0, 6)])
        size = rng.choice(SIZES)
        off = _offset(rng, base)
        if rng.random() < 0.5:
            return [isa.Insn(isa.STX | isa.MEM | size, base, rng.randrange(0, 10), off)]
        return [isa.Insn(isa.ST | isa.MEM | size, base, 0, off, _rand_imm(rng))]
    if kind < 0.90:  # branches
        op = rng.choice(JMP_OPS)
        cls = rng.choice([isa.JMP, isa.JMP, isa.JMP32])
        reg = rng.choice([dst, 7, 7])
        if rng.random() < 0.7:
            return [isa.Insn(cls | op | isa.K, reg, 0, -1, _rand_imm(rng))]
        return [isa.Insn(cls | op | isa.X, reg, rng.randrange(0, 10), -1)]
    if kind < 0.93:  # atomics on the map value or stack
        base = rng.choice([8, 9])
        size = rng.choice([isa.W, isa.DW])
        code = rng.choice(sorted(isa.ATOMIC_OPS))
        return [isa.Insn(isa.STX | isa.ATOMIC | size, base, rng.randrange(0, 6),
                         rng.choice([0, 4, 8, 16]), code)]
    if kind < 0.96:  # an unknown value (clobbers r1-r5)
        return [isa.Insn(isa.OP_CALL, 0, 0, 0, 7)]  # bpf_get_prandom_u32
    cnt = rng.randrange(1, 6)  # a small bounded loop
    return [isa.Insn(isa.ALU64 | isa.MOV | isa.K, dst, 0, 0, 0),
            isa.Insn(isa.ALU64 | isa.ADD | isa.K, dst, 0, 0, 1),
            isa.Insn(isa.JMP | isa.JLT | isa.K, dst, 0, -2, cnt)]


def layout(rng: random.Random, setup, groups, to_end: bool = False) -> list[isa.Insn]:
    """Concatenate; branches of the setup go to the end, body branches to a later group
    (or to the end when ``to_end``)."""
    insns = [isa.Insn(i.opcode, i.dst, i.src, i.off, i.imm, i.imm64) for i in setup]
    starts = []
    for group in groups:
        starts.append(len(insns))
        insns.extend(isa.Insn(i.opcode, i.dst, i.src, i.off, i.imm, i.imm64) for i in group)
    end = len(insns)
    insns += [isa.Insn(isa.ALU64 | isa.MOV | isa.K, 0, 0, 0, 0), isa.Insn(isa.OP_EXIT)]
    for i, insn in enumerate(insns[:end]):
        if not insn.is_conditional_jump:
            continue
        if i < len(setup) and insn.off == -2:
            insn.off = end - i - 1
        elif i >= len(setup) and insn.off == -1:
            later = [s for s in starts if s > i] + [end]
            insn.off = (end if to_end else rng.choice(later)) - i - 1
    return insns


def random_program(rng: random.Random, n: int = 24) -> list[isa.Insn]:
    """A random program with forward branches and a few idioms (mostly rejected)."""
    return layout(rng, _setup(rng), [_group(rng) for _ in range(n)])


def grown_program(rng: random.Random, n: int = 24, tries: int = 6, max_insns: int = 20_000) -> list[isa.Insn]:
    """Grow a program group by group, keeping only groups the verifier still accepts.

    The result is (almost always) accepted and sits close to the edge of what the
    verifier allows, which is where unsound rules would show.
    """
    setup = _setup(rng)
    groups: list[list[isa.Insn]] = []
    m = RunMap("fuzz", 2, 4, VALUE_SIZE, 1)
    for _ in range(n):
        for _ in range(tries):
            cand = groups + [_group(rng)]
            prog = isa.Program("grow", layout(rng, setup, cand, to_end=True), section="socket", maps=[m])
            try:
                verifier.verify(prog, max_insns=max_insns)
            except verifier.BpfVerifierError:
                continue
            groups = cand
            break
    program = layout(rng, setup, groups, to_end=True)
    # the same groups with branches into later groups: joins exercise state pruning
    # (often still accepted, since each group was valid on its own path)
    rejoined = layout(rng, setup, groups, to_end=False)
    return program if rng.random() < 0.5 else rejoined


def mutate(rng: random.Random, insns: list[isa.Insn]) -> list[isa.Insn]:
    """Flip one field of one instruction (keeping lddw pairs intact)."""
    out = [isa.Insn(i.opcode, i.dst, i.src, i.off, i.imm, i.imm64) for i in insns]
    candidates = [k for k, i in enumerate(out) if i.opcode != 0 and not i.is_lddw]
    if not candidates:
        return out
    k = rng.choice(candidates)
    insn = out[k]
    what = rng.randrange(5)
    if what == 0:
        insn.imm = _rand_imm(rng)
    elif what == 1:
        insn.off = insn.off + rng.choice([-8, -4, -1, 1, 4, 8])
    elif what == 2:
        insn.dst = rng.randrange(0, 11)
    elif what == 3:
        insn.src = rng.randrange(0, 11)
    else:
        # a new instruction, not a new opcode in this one: isa.Insn computes the opcode's
        # parts (cls, op, ...) once, when it is made
        opcode = insn.opcode
        if insn.cls in (isa.LDX, isa.STX, isa.ST):
            opcode = (opcode & ~0x18) | rng.choice(SIZES)
        elif insn.cls in (isa.ALU, isa.ALU64):
            opcode = (opcode & 0x0F) | rng.choice(ALU_OPS)
        elif insn.is_conditional_jump:
            opcode = (opcode & 0x0F) | rng.choice(JMP_OPS)
        out[k] = isa.Insn(opcode, insn.dst, insn.src, insn.off, insn.imm, insn.imm64)
    return out


@dataclass
class FuzzStats:
    generated: int = 0
    accepted: int = 0
    runs: int = 0
    violations: int = 0
    cfg_rejects: int = 0


def check_program(insns: list[isa.Insn], rng: random.Random, arena: Arena, stats: FuzzStats,
                  runs: int = 4, max_insns: int = 20_000) -> str | None:
    """Verify; if accepted, run with several buffers.  Returns a failure description or None."""
    from uringbpf.bpf.interp import Interpreter

    stats.generated += 1
    m = RunMap("fuzz", 2, 4, VALUE_SIZE, 1, value_addr=arena.value_addr)
    prog = isa.Program("fuzz", insns, section="socket", maps=[m])
    try:
        verifier.verify(prog, max_insns=max_insns)
    except verifier.BpfVerifierError as exc:
        if "unreachable" in exc.message or "out of range" in exc.message:
            stats.cfg_rejects += 1
        return None
    stats.accepted += 1
    for _ in range(runs):
        length = rng.choice([0, 1, 4, 8, 15, 16, 31, 32, 64, rng.randrange(0, 200)])
        data = bytes(rng.randrange(256) for _ in range(length))
        value = bytes(rng.randrange(256) for _ in range(VALUE_SIZE))
        rt, data_addr = arena.runtime(data, value)
        stats.runs += 1
        try:
            # a may_goto loop is bounded by its counter, not by the verification budget:
            # a small counter keeps it within the run's limit (check_may_goto tries several)
            Interpreter(prog, rt, max_insns=100_000, may_goto_loops=64).run(data_addr, length)
        except BpfMemoryError as exc:
            stats.violations += 1
            text = "\n".join(f"{k}: {verifier.insn_text(i)}" for k, i in enumerate(insns) if i.opcode)
            return f"accepted program faulted with len={length}: {exc}\n{text}"
        except BpfRuntimeError as exc:
            # an accepted program must end within its budget (the verifier followed every
            # path within max_insns processed instructions; the run allows 5x that)
            if "instruction limit" in str(exc):
                stats.violations += 1
                text = "\n".join(f"{k}: {verifier.insn_text(i)}" for k, i in enumerate(insns) if i.opcode)
                return f"accepted program did not terminate with len={length}: {exc}\n{text}"
    return None


def raw_program(rng: random.Random) -> list[isa.Insn]:
    """Arbitrary instruction fields (robustness: the verifier must only ever refuse cleanly)."""
    common = [0x07, 0x0f, 0xb7, 0xbf, 0x61, 0x79, 0x63, 0x7b, 0x15, 0x1d, 0x25, 0x85, 0x95,
              0x05, 0xc3, 0xdb, 0x04, 0x16, 0xb4, 0x18]
    insns: list[isa.Insn] = []
    for _ in range(rng.randrange(1, 20)):
        op = rng.choice([rng.randrange(256)] + common)
        imm = rng.choice([0, 1, -1, 8, rng.randint(-2 ** 31, 2 ** 31 - 1)])
        dst, src = rng.randrange(16), rng.randrange(16)
        if op == isa.OP_LDDW:
            src = rng.choice([0, 0, 1, 4, 5, 6])
            insns += [isa.Insn(op, dst, src, 0, imm, imm & isa.U32), isa.Insn(0, 0, 0, 0, rng.choice([0, 8]))]
        else:
            insns.append(isa.Insn(op, dst, src, rng.randint(-5, 5), imm))
    insns.append(isa.Insn(isa.OP_EXIT))
    return insns


def as_subprog(insns: list[isa.Insn]) -> list[isa.Insn]:
    """Run the same body as a BPF-to-BPF callee (its own frame and stack):
    ``call f; exit; f: <body>`` (r1/r2 pass through as arguments)."""
    return [isa.Insn(isa.OP_CALL, 0, isa.PSEUDO_CALL, 0, 1), isa.Insn(isa.OP_EXIT)] + [
        isa.Insn(i.opcode, i.dst, i.src, i.off, i.imm, i.imm64) for i in insns]


# ---------------------------------------------------------------- pruning-focused programs

_PK = [0, 1, 2, 4, 7, 8, 15, 16, 17, 20, 23, 24, 25, 31, 32, 33, 63, 64, 255, 0x1000000]
_PJMP = ["==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&"]


def pruning_source(rng: random.Random) -> str:
    """A program whose paths join with values that differ only in registers that later
    feed a compare (issue #13 item 1): one or two diamonds assign different constants to
    a register, then a compare involving it (against another register, an id-linked copy,
    a spilled copy, or the data length) guards a memory access indexed by a related
    register.  If pruning ignores the difference, an unsafe arm slips through."""
    regs = [1, 2, 3, 4, 5]
    rng.shuffle(regs)
    ra, rb, rc, rd, rp = regs
    out = ["r6 = r1", "r7 = r2", "r8 = map_value[0] ll", "r9 = 0"]
    if rng.random() < 0.5:
        out += ["call get_prandom_u32"]
        src = 0
    else:
        out += ["if r7 < 4 goto end", "r0 = *(u32 *)(r6 + 0)"]
        src = 0
    out += [f"r{ra} = r{src}", f"r{ra} &= {rng.choice([3, 7, 15, 31, 63, 255, 0xffff])}"]
    linked = rng.random() < 0.6
    spilled = linked and rng.random() < 0.4
    if linked:
        out.append(f"r{rb} = r{ra}")
        if spilled:
            out += [f"*(u64 *)(r10 - 8) = r{rb}", f"r{rb} = 0"]
    else:
        out.append(f"r{rb} = r{ra}")
        out.append(f"r{rb} += 0")   # a copy without the link (ALU breaks it)
    out.append(f"r{rc} = {rng.choice(_PK)}")
    out.append(f"r{rd} = {rng.choice(_PK)}")
    for d in range(rng.choice([1, 1, 2])):
        target = rng.choice([rc, rc, rd])
        bit = 1 << rng.randrange(0, 8)
        cond = rng.choice([f"if r0 & {bit} goto other{d}", f"if r0 > {rng.randrange(0, 300)} goto other{d}",
                           f"if r{ra} == {rng.randrange(0, 8)} goto other{d}"])
        out += [cond, f"r{target} = {rng.choice(_PK)}"]
        if rng.random() < 0.3:
            out.append(f"r9 = {rng.choice(_PK)}")   # a dead difference as well
        out += [f"goto join{d}", f"other{d}:", f"r{target} = {rng.choice(_PK)}", f"join{d}:"]
        if rng.random() < 0.3:
            out.append("r9 += 1")
    w = "w" if rng.random() < 0.15 else "r"
    op = rng.choice(_PJMP)
    cmp_kind = rng.randrange(6)
    if cmp_kind == 0:
        out.append(f"if {w}{ra} {op} {w}{rc} goto end")
    elif cmp_kind == 1:
        out.append(f"if {w}{rc} {op} {w}{ra} goto end")
    elif cmp_kind == 2:
        out.append(f"if {w}7 {op} {w}{rc} goto end")
    elif cmp_kind == 3:
        out.append(f"if {w}{rc} {op} {w}7 goto end")
    elif cmp_kind == 4:
        out.append(f"if {w}{ra} {op} {w}{rd} goto end")
    else:
        out.append(f"if {w}{ra} {op} {rng.choice(_PK)} goto end")
    if spilled:
        out.append(f"r{rb} = *(u64 *)(r10 - 8)")
    out += _indexed_access(rng, rp, [ra, rb, rb, rc, rd], ["r6", "r8", "r10"], [1, 4, 8],
                           [ra, rc, 9])
    return "\n".join(out) + "\n"


def _indexed_access(rng: random.Random, rp: int, idxs: list, bases: list, moves: list,
                    values: list) -> list[str]:
    """The end of a generated program: ``r<rp>`` = a base pointer (data, map value or
    stack), maybe moved by a constant, plus an index register from ``idxs``, then a load
    or a store through it, and the ``end:`` label the guards jump to."""
    idx = rng.choice(idxs)
    base = rng.choice(bases)
    size = rng.choice(["u8", "u16", "u32", "u64"])
    out = [f"r{rp} = {base}"]
    if base == "r10":
        out.append(f"r{rp} += -{rng.choice([16, 24, 32, 40])}")
    elif rng.random() < 0.3:
        out.append(f"r{rp} += {rng.choice(moves)}")
    out.append(f"r{rp} += r{idx}")
    if rng.random() < 0.5:
        out.append(f"r0 = *({size} *)(r{rp} + 0)")
    else:
        out.append(f"*({size} *)(r{rp} + 0) = r{rng.choice(values)}")
    return out + ["end:", "r0 = 0", "exit"]


def pruning_program(rng: random.Random) -> list[isa.Insn]:
    import corpus_lib
    import vasm
    insns, _ = vasm.assemble(pruning_source(rng), corpus_lib.helper_names())
    return insns


def verdict(insns: list[isa.Insn], prune: bool, max_insns: int = 20_000) -> str | None:
    """None if accepted, else the refusal message."""
    from uringbpf.bpf.platform import default_platform
    m = RunMap("fuzz", 2, 4, VALUE_SIZE, 1)
    prog = isa.Program("fuzz", insns, section="socket", maps=[m])
    plat = default_platform()
    v = verifier.Verifier(prog, plat.prog_type_for(prog), 0, max_insns, plat)
    v.prune = prune
    try:
        v.run()
    except verifier.BpfVerifierError as exc:
        return exc.message
    return None


def check_pruning(insns: list[isa.Insn], rng: random.Random, arena: Arena, stats: FuzzStats) -> str | None:
    """Pruning must never turn a refusal into an acceptance: compare the verdict with a
    run that explores every path, then run what was accepted (check_program)."""
    with_pruning = verdict(insns, True)
    if with_pruning is None:
        without = verdict(insns, False)
        if without is not None and "too large" not in without:
            stats.generated += 1
            stats.violations += 1
            text = "\n".join(f"{k}: {verifier.insn_text(i)}" for k, i in enumerate(insns) if i.opcode)
            return f"accepted with pruning, refused without ({without}):\n{text}"
    return check_program(insns, rng, arena, stats)


# ---------------------------------------------------------------- precision (#19)

#: constants for the joined register: inside and outside the 24-byte map value
_QK = [0, 1, 7, 8, 16, 23, 24, 25, 31, 32, 255, -1, -8, 0x20000000]


def precision_source(rng: random.Random) -> str:
    """Two paths join with different constants in one register, which then reaches a
    map-value access through one of the ways Cfg._precision tells apart: a store to the
    map value and a load back (the value is lost: never precise), a spill and fill
    through r10 or a copy of it (kept: precise), a sum with an unknown number or with the
    map-value pointer itself (used, or only checked against the 2**29 offset limit at the
    addition), a decided compare (precise only where decided), and a
    bounded loop deciding its own branch in between.  If pruning ignores a difference
    that reaches the access, an out-of-bounds arm slips through."""
    out = ["r6 = r1", "r7 = r2", "r8 = map_value[0] ll", "r9 = 0",
           "call get_prandom_u32", "r1 = r0", f"r1 &= {rng.choice([0, 1, 3, 7])}"]
    k1, k2 = rng.choice(_QK), rng.choice(_QK)
    out += [f"r3 = {k1}", f"if r0 & {1 << rng.randrange(1, 6)} goto a", f"r3 = {k2}", "a:"]
    out += ["r9 += 1"] * rng.randrange(0, 9)
    if rng.random() < 0.5:
        # a bounded loop: its compare is decided on every iteration
        out += ["r5 = 0", "loop:", "r9 += 1", "r5 += 1",
                f"if r5 < {rng.randrange(1, 5)} goto loop"]
    if rng.random() < 0.4:
        # a compare on the joined register itself: decided for a constant
        out += [f"if r3 {rng.choice(_PJMP)} {rng.choice(_QK)} goto b", "r9 += 2", "b:"]
    out += ["r9 += 1"] * rng.randrange(0, 9)
    flow = rng.randrange(7)
    if flow == 0:       # through the map value: a load brings back any number
        out += ["*(u64 *)(r8 + 0) = r3", "r4 = *(u64 *)(r8 + 0)",
                f"r4 &= {rng.choice([7, 15, 31])}"]
    elif flow == 1:     # spilled and filled through r10
        out += ["*(u64 *)(r10 - 8) = r3", "r4 = *(u64 *)(r10 - 8)"]
    elif flow == 2:     # spilled through a copy of r10, filled through r10
        out += ["r2 = r10", "*(u64 *)(r2 - 16) = r3", "r4 = *(u64 *)(r10 - 16)"]
    elif flow == 3:     # added to an unknown small number
        out += ["r4 = r1", "r4 += r3"]
    elif flow == 4:     # a number plus the pointer: the number is the offset
        out += ["r4 = r3", "r4 += r8"]
    elif flow == 5:     # the same, the pointer never used: only its offset limit checks
        out += ["r4 = r3", "r4 += r8"] if rng.random() < 0.5 else ["r4 = r8", "r4 += r3"]
    else:               # stored into the map only; the access uses another value
        out += ["*(u64 *)(r8 + 8) = r3", "r4 = r1"]
    if flow == 4:
        out.append("r0 = *(u8 *)(r4 + 0)")
    elif flow != 5:
        out += ["r2 = r8", "r2 += r4", f"r0 = *({rng.choice(['u8', 'u16', 'u32'])} *)(r2 + 0)"]
    return "\n".join(out + ["r0 = 0", "exit"]) + "\n"


def precision_program(rng: random.Random) -> list[isa.Insn]:
    """:func:`precision_source` assembled."""
    import corpus_lib
    import vasm
    insns, _ = vasm.assemble(precision_source(rng), corpus_lib.helper_names())
    return insns


# ---------------------------------------------------------------- delta-linked scalars

#: constants for ``rX += K`` links: small deltas both ways and the s32 / u32 limits
_LK = [0, 1, -1, 2, -2, 3, 4, -4, 7, -7, 8, -8, 15, 16, -16, 255, -256, 0x7fffffff,
       -0x7fffffff, -0x80000000, 0x80000000, 0xffffffff]
_LJMP = ["==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<="]


def _lk(rng: random.Random) -> int:
    k = rng.choice(_LK)
    return k if -0x80000000 <= k <= 0x7fffffff else rng.choice([k - (1 << 32), -1])


def linked_source(rng: random.Random) -> str:
    """A program with scalars linked by a constant delta (``rB = rA; rB += K``, 64- or
    32-bit, add or sub, immediate or constant register; sometimes a third partner, a
    spill and fill, a link breaker, a join of two paths), a compare on one partner and
    a memory access (map value, stack or data buffer) indexed by another: whatever the
    verifier accepts must stay in bounds on every run (the kernel's sync_linked_regs
    rules; a wrong delta, width or wrap lets an out-of-bounds index through)."""
    regs = [1, 2, 3, 4, 5]
    rng.shuffle(regs)
    ra, rb, rc, rd, rp = regs
    out = ["r6 = r1", "r7 = r2", "r8 = map_value[0] ll", "r9 = 0"]
    from_len = rng.random() < 0.2
    if from_len:
        out.append(f"r{ra} = r7")      # the data length itself (its bound is the buffer's)
    else:
        if rng.random() < 0.5:
            out.append("call get_prandom_u32")
        else:
            out += ["if r7 < 8 goto end", f"r0 = *({rng.choice(['u8', 'u32', 'u64'])} *)(r6 + 0)"]
        out.append(f"r{ra} = r0")
        shape = rng.randrange(7)
        if shape == 5:      # a few values just below 2**32: 32-bit deltas wrap
            out.append(f"w{ra} |= {rng.choice([0xfffffff0, 0xfffffffc])}")
        elif shape == 6:    # a few values just below 2**64 (small negative numbers)
            out.append(f"r{ra} |= -16")
        elif shape == 0:
            out.append(f"r{ra} &= {rng.choice([7, 15, 63, 255, 0xffff])}")
        elif shape == 1:
            out.append(f"r{ra} -= {rng.choice([1, 8, 100, 0x80000000])}")   # may be negative
        elif shape == 2:
            out.append(f"w{ra} = w{ra}")
    out.append(f"r{rb} = r{ra}")

    def link(dst: str) -> list[str]:
        w = "w" if rng.random() < 0.3 else "r"
        op = rng.choice(["+=", "+=", "-="])
        k = _lk(rng)
        if rng.random() < 0.25:
            if rng.random() < 0.3:      # a 64-bit constant beyond s32: no link
                return [f"r9 = {rng.choice([1 << 31, 1 << 32, (1 << 32) + 1, -(1 << 33)])} ll",
                        f"{w}{dst} {op} {w}9"]
            return [f"r9 = {k}", f"{w}{dst} {op} {w}9"]
        return [f"{w}{dst} {op} {k}"]

    out += link(str(rb))
    if rng.random() < 0.5:
        out.append(f"r{rc} = r{rng.choice([ra, ra, rb])}")
        out += link(str(rc))
    else:
        out.append(f"r{rc} = {rng.choice([0, 1, 8])}")
    if rng.random() < 0.3:
        breaker = rng.choice([f"w{rb} += 1", f"r{rb} += 1", f"r{rb} += r{ra}", f"r{rb} *= 1",
                              f"w{rb} = w{rb}", f"r{rd} = r{rb}", f"r{rb} -= r{rb}",
                              f"r{ra} = (s8)r{ra}", f"r{rb} = -r{rb}"])
        out.append(breaker)
    spilled = rng.random() < 0.3
    if spilled:
        out += [f"*(u64 *)(r10 - 8) = r{rb}", f"r{rb} = 0"]
    out.append(f"r{rd} = {rng.choice([0, 4, 7, 8, 16, 255])}")
    if rng.random() < 0.4:      # two paths that join with a different compare operand
        out += [f"if r{ra} & {1 << rng.randrange(0, 4)} goto other",
                f"r{rd} = {rng.choice([0, 1, 7, 8, 15, 16])}", "goto join", "other:",
                f"r{rd} = {rng.choice([0, 2, 8, 23, 24, 64])}", "join:"]
    for _ in range(rng.choice([1, 1, 2])):
        w = "w" if rng.random() < 0.2 else "r"
        subj = rng.choice([ra, rb, rb, rc]) if not spilled else rng.choice([ra, rc])
        other = f"{w}{rd}" if rng.random() < 0.25 else str(rng.choice(
            [0, 1, 4, 7, 8, 16, 17, 24, 255, -1, -8, 0x7fffffff]))
        out.append(f"if {w}{subj} {rng.choice(_LJMP)} {other} goto end")
    if spilled:
        out.append(f"r{rb} = *(u64 *)(r10 - 8)")
    out += _indexed_access(rng, rp, [ra, rb, rb, rc], ["r6", "r8", "r8", "r10"], [-1, 1, 4, 8],
                           [ra, rc, 9])
    return "\n".join(out) + "\n"


def linked_program(rng: random.Random) -> list[isa.Insn]:
    """:func:`linked_source` assembled."""
    import corpus_lib
    import vasm
    insns, _ = vasm.assemble(linked_source(rng), corpus_lib.helper_names())
    return insns


# ---------------------------------------------------------------- may_goto loops

def may_goto_source(rng: random.Random) -> str:
    """A program with one or two may_goto loops (sometimes nested, sometimes in a
    subprogram) whose bodies move two registers by constants, copies, masks and shifts,
    break out on compares, and index the map value or the stack, guarded or not, in the
    body or after the loop.  The verifier widens what changes around the loop (unless it
    reaches an access) and prunes a visit covered by an earlier one at another depth; if
    either lets an unsafe value through, some counter value makes the run fault."""
    ra, rb, rp = rng.sample([3, 4, 5, 9], 3)
    out = ["r6 = r1", "r7 = r2", "r8 = map_value[0] ll", f"r{ra} = {rng.choice(_PK[:8])}",
           f"r{rb} = {rng.choice(_PK[:8])}"]

    def access(guarded: bool, reg: int, tail: str) -> list[str]:
        lines = []
        if guarded:
            lim = rng.choice([VALUE_SIZE - 1, VALUE_SIZE - 4, VALUE_SIZE, 15, 7])
            lines.append(f"if r{reg} > {lim} goto {tail}")
        base = rng.choice(["r8", "r8", "r10"])
        lines.append(f"r{rp} = {base}")
        if base == "r10":
            lines.append(f"r{rp} += -{rng.choice([24, 32, 40])}")
        lines.append(f"r{rp} += r{reg}")
        size = rng.choice(["u8", "u16", "u32"])
        if rng.random() < 0.5:
            lines.append(f"r0 = *({size} *)(r{rp} + 0)")
        else:
            lines.append(f"*({size} *)(r{rp} + 0) = r{rng.choice([ra, rb])}")
        return lines

    def body(tag: str, depth: int) -> list[str]:
        lines = [f"loop{tag}:", f"may_goto out{tag}"]
        for _ in range(rng.randrange(1, 5)):
            k = rng.random()
            r, s = rng.sample([ra, rb], 2)
            if k < 0.35:
                lines.append(f"r{r} {rng.choice(['+=', '-=', '&=', '|=', '<<=', '>>='])} "
                             f"{rng.choice([1, 1, 2, 3, 7, 15])}")
            elif k < 0.45:
                lines.append(f"r{r} = r{s}")
            elif k < 0.6:
                lines.append(f"if r{r} {rng.choice(['>', '>=', '==', '!=', 's>'])} "
                             f"{rng.choice(_PK[:12])} goto out{tag}")
            elif k < 0.7:
                lines.append(f"if r{r} {rng.choice(['>', '<'])} r{s} goto out{tag}")
            elif k < 0.85:
                lines.extend(access(rng.random() < 0.7, r, f"out{tag}"))
            elif depth == 0:
                lines.extend(body(tag + "i", 1))
        lines += [f"goto loop{tag}", f"out{tag}:"]
        return lines

    out += ["r1 = 0", "*(u64 *)(r10 - 8) = r1", "*(u64 *)(r10 - 16) = r1",
            "*(u64 *)(r10 - 24) = r1", "*(u64 *)(r10 - 32) = r1", "*(u64 *)(r10 - 40) = r1"]
    in_sub = rng.random() < 0.25
    if in_sub:
        out += ["call local sub", "r0 = 0", "exit", "sub:", "r1 = 0",
                "*(u64 *)(r10 - 8) = r1", "*(u64 *)(r10 - 16) = r1", "*(u64 *)(r10 - 24) = r1",
                "*(u64 *)(r10 - 32) = r1", "*(u64 *)(r10 - 40) = r1", "r8 = map_value[0] ll",
                f"r{ra} = {rng.choice(_PK[:8])}", f"r{rb} = {rng.choice(_PK[:8])}"]
    out += body("", 0)
    if rng.random() < 0.7:
        out += access(rng.random() < 0.6, rng.choice([ra, rb]), "end")
    out += ["end:", "r0 = 0", "exit"]
    return "\n".join(out) + "\n"


def may_goto_program(rng: random.Random) -> list[isa.Insn]:
    """:func:`may_goto_source` assembled."""
    import corpus_lib
    import vasm
    insns, _ = vasm.assemble(may_goto_source(rng), corpus_lib.helper_names())
    return insns


#: counter start values the accepted may_goto programs run with (0: the jump at once)
MAY_GOTO_CAPS = (0, 1, 2, 3, 5, 9, 17, 40)


def check_may_goto(insns: list[isa.Insn], rng: random.Random, arena: Arena,
                   stats: FuzzStats) -> str | None:
    """Pruning must not turn a refusal into an acceptance (a run without pruning cannot end
    an unbounded may_goto loop: its "too large" proves nothing), and an accepted program
    must run without a memory fault for every counter value in :data:`MAY_GOTO_CAPS`
    (each cap takes another exit of the loop) on random data."""
    from uringbpf.bpf.interp import Interpreter

    text = lambda: "\n".join(f"{k}: {verifier.insn_text(i)}" for k, i in enumerate(insns)
                             if i.opcode)
    stats.generated += 1
    if verdict(insns, True) is not None:
        return None
    without = verdict(insns, False)
    if without is not None and "too large" not in without:
        stats.violations += 1
        return f"accepted with pruning, refused without ({without}):\n{text()}"
    stats.accepted += 1
    m = RunMap("fuzz", 2, 4, VALUE_SIZE, 1, value_addr=arena.value_addr)
    prog = isa.Program("fuzz", insns, section="socket", maps=[m])
    for cap in MAY_GOTO_CAPS:
        length = rng.choice([0, 4, 16, 64])
        data = bytes(rng.randrange(256) for _ in range(length))
        value = bytes(rng.randrange(256) for _ in range(VALUE_SIZE))
        rt, data_addr = arena.runtime(data, value)
        stats.runs += 1
        try:
            Interpreter(prog, rt, max_insns=100_000, may_goto_loops=cap).run(data_addr, length)
        except BpfMemoryError as exc:
            stats.violations += 1
            return f"accepted may_goto program faulted with cap {cap}: {exc}\n{text()}"
    return None
