"""The JIT's direct tier: eBPF straight to x86-64 machine code, one pass and jump fix-ups.

LLVM's instruction selection alone costs 100-170 µs per basic block (docs/jit.md), so a
program of 1,000 instructions cannot compile in 10 ms through it. This tier maps BPF
registers to x86-64 registers, as the kernel's and uBPF's JITs do, and writes each
instruction's machine code directly (:mod:`uringbpf.bpf.x86` encodes). Its code keeps
exactly the runtime contract of the LLVM code (:mod:`uringbpf.bpf.jit_codegen`), so
:class:`uringbpf.bpf.jit.JitFunction`, the thunks, ``jitrt_gate`` and the native drivers
run either without knowing which:

* every BPF function is ``uint64_t f(r1..r5, ctx)`` (SysV: rdi, rsi, rdx, rcx, r8, r9);
  it takes 512 bytes below ``ctx->sp`` as its frame on entry and gives them back on every
  return; r0 and r6-r9 start at 0;
* instance values (maps, Python-callback trampolines, thunks, the callx table) are 64-bit
  constants in the code: the translation is a template (``X86Code.patches`` says where
  each ``slots`` value goes) that each instance copies and fills in (:meth:`X86Code.
  instantiate`). The code never reads the context's ``vars`` table, which is LLVM's
  layout: an instance can switch to LLVM code while a run is inside this code;
* failures set the error word (the first one wins, with its pc) and return 0 from every
  active function; every call is followed by a test of the word;
* registers r1-r5 keep their values across calls (the LLVM code keeps them in its own
  slots, the interpreter in its register file): an unverified program that reads one
  after a call gets the same value on all engines;
* checked mode: ``jitrt_check(ctx, addr, size, write, pc)`` before every access (read
  then write for an atomic), backward jumps spend the run's instruction budget, which the
  outermost entry (``fp == ctx->stack_hi``) sets from ``insn_limit``;
* the ISA's corner cases as RFC 9669 defines them: division by zero gives 0 (modulo:
  the dividend), ``INT_MIN / -1`` wraps (modulo: 0), shift counts are masked by the
  hardware exactly as BPF masks them, ALU32 results are zero-extended (x86-64 32-bit
  operations do that; a 32-bit ``cmpxchg`` is zero-extended explicitly).

Register map (BPF -> x86-64): r0 rax, r1 rdi, r2 rsi, r3 rdx, r4 rcx, r5 r8, r6 rbx,
r7 r13, r8 r14, r9 r15, r10 rbp; r12 holds the context; r9, r10, r11 are scratch. The
native frame holds the function's fp (``[rsp]``; BPF may overwrite r10 in an unverified
program) and the entry r2 (``[rsp+8]``: the data length LD_ABS/IND test against). The
x86 register of a BPF register a function never names may hold a map address its loops
load (:meth:`_Translator.choose_pins`).

Code quality (issue #19): the blocks of a function are written in an order that makes the
likely path fall through (:meth:`_Translator.layout`; checked code keeps program order),
and a few rules select what LLVM selects for common shapes (indexed and read-modify-write
accesses, byte compares, reassociation); docs/jit.md, "Code quality of the direct tier".

What this tier does not translate (:func:`unsupported_reason`) goes to LLVM: arena
accesses and ``addr_space_cast`` (PROBE_MEM32 and the split-lock path of arena atomics),
and any opcode it does not know (``may_goto``). The choice is made in one place,
``jit._code_for``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from . import isa
from .isa import Insn
from .jit_codegen import (
    Bindings, CallTarget, CTX_BUDGET, CTX_ERR_ADDR, CTX_ERR_PC, CTX_ERROR, CTX_LIMIT,
    CTX_SP, CTX_STACK_HI, CTX_STACK_LO, ERR_CALLX, ERR_DEPTH, ERR_FELL_OFF,
    ERR_LEGACY, ERR_LIMIT, ERR_NO_HELPER, ERR_UNWIND, split_functions, validate,
)
from .x86 import (
    ALU_ADD, ALU_AND, ALU_CMP, ALU_OR, ALU_SUB, ALU_XOR, Asm, CC, R8, R9, R10, R11, R12, R13,
    R14, R15, RAX, RBP, RBX, RCX, RDI, RDX, RSI, RSP, SAR, SHL, SHR,
)
from ..errors import JitError

__all__ = ["X86Code", "translate", "unsupported_reason"]

#: BPF register -> x86-64 register
REG = (RAX, RDI, RSI, RDX, RCX, R8, RBX, R13, R14, R15, RBP)
CTX = R12
_ARGS = (RDI, RSI, RDX, RCX, R8)

_ERR, _ERR_PC, _ERR_ADDR, _SP, _LO, _HI = (8 * x for x in (
    CTX_ERROR, CTX_ERR_PC, CTX_ERR_ADDR, CTX_SP, CTX_STACK_LO, CTX_STACK_HI))
_BUDGET, _LIMIT = 8 * CTX_BUDGET, 8 * CTX_LIMIT

_GROUP1 = {isa.ADD: ALU_ADD, isa.SUB: ALU_SUB, isa.OR: ALU_OR, isa.AND: ALU_AND,
           isa.XOR: ALU_XOR}
_SHIFT = {isa.LSH: SHL, isa.RSH: SHR, isa.ARSH: SAR}
_JCC = {isa.JEQ: CC["e"], isa.JNE: CC["ne"], isa.JGT: CC["a"], isa.JGE: CC["ae"],
        isa.JLT: CC["b"], isa.JLE: CC["be"], isa.JSGT: CC["g"], isa.JSGE: CC["ge"],
        isa.JSLT: CC["l"], isa.JSLE: CC["le"], isa.JSET: CC["ne"]}
_ATOMIC_ALU = {isa.ATOMIC_ADD: ALU_ADD, isa.ATOMIC_OR: ALU_OR, isa.ATOMIC_AND: ALU_AND,
               isa.ATOMIC_XOR: ALU_XOR}
_JMP_OPS = set(_JCC) | {isa.JA, isa.CALL, isa.EXIT}
_ALU_OPS = set(isa.ALU_OP_NAMES)
_JNE, _JE, _JB, _JS = CC["ne"], CC["e"], CC["b"], CC["s"]
_UNSIGNED = (isa.JEQ, isa.JNE, isa.JGT, isa.JGE, isa.JLT, isa.JLE)


@dataclass
class X86Code:
    """One program's machine code template: function k starts at ``offsets[k]`` and is BPF
    function ``starts[k]``; the instance value of ``slots[i]`` (``slot_pcs[i]``: its first
    user), plus ``a``, goes into the 8 bytes at each offset ``o`` of ``patches`` with
    ``(o, i, a)``."""

    code: bytes
    offsets: list[int]
    starts: list[int]
    slots: list[tuple]
    slot_pcs: list[int]
    patches: list[tuple[int, int, int]]

    def instantiate(self, values: list[int]) -> bytes:
        """The machine code with ``values[i] + addend`` (``values[i]``: the instance's value
        of ``slots[i]``) at each patch ``(offset, i, addend)``."""
        code = bytearray(self.code)
        self.patch(code, 0, values)
        return bytes(code)

    def patch(self, image: bytearray, at: int, values: list[int]) -> None:
        """Write the patches' values (see :meth:`instantiate`) into ``image``, whose byte
        ``at`` holds the code's first byte."""
        pack = _U64.pack_into
        for offset, index, addend in self.patches:
            pack(image, at + offset, (values[index] + addend) & 0xFFFFFFFFFFFFFFFF)


_U64 = struct.Struct("<Q")
_frames: dict[tuple, tuple[bytes, bytes]] = {}


def _bound(insn: Insn, checked: bool) -> int:
    """At least the bytes of machine code :class:`_Translator` writes for ``insn`` (the
    largest encodings: a movabs is 10 bytes, a memory operand with a 32-bit displacement
    and an immediate 12, a compare and jump 13, the longest epilogue 26); what is not
    small (calls, div/mod, shifts by a register, atomics, packet loads, checked accesses)
    counts 1,000."""
    cls = insn.cls
    if cls in (isa.ALU, isa.ALU64):
        if insn.op in (isa.DIV, isa.MOD) or (insn.op in _SHIFT and insn.opcode & isa.X):
            return 1000
        # register forms are at most 4 bytes (imul, movzx, movsx: REX 0F xx ModRM); an
        # immediate 10 (movabs), a byte swap 9 (rol16 + movzx)
        return 10 if insn.op == isa.END or not insn.opcode & isa.X else 4
    if cls in (isa.JMP, isa.JMP32):
        if insn.op == isa.CALL:
            return 1000
        if checked or insn.op == isa.EXIT:
            return 32
        # a compare (at most 7 bytes: REX.W 81 /7 imm32) and a 6-byte jcc; a jmp is 5
        return 5 if insn.op == isa.JA else 14
    if checked:
        return 1000
    if cls in (isa.LDX, isa.ST) or (cls == isa.STX and insn.mode == isa.MEM):
        return 14
    if insn.is_lddw:
        return 20
    return 1000


# What the first pass over a function needs of an opcode (:data:`_KIND`): a jump-class
# opcode is a call (either class: refused later), an exit or a jump
_K_PLAIN, _K_LDDW, _K_PACKET, _K_CALL, _K_EXIT, _K_JUMP = range(6)
_KIND = bytes(
    _K_LDDW if opcode == isa.OP_LDDW
    else _K_PACKET if opcode & 7 == isa.LD and opcode & 0xE0 in (isa.ABS, isa.IND)
    else (_K_CALL if opcode & 0xF0 == isa.CALL else _K_EXIT if opcode & 0xF0 == isa.EXIT
          else _K_JUMP) if opcode & 7 in (isa.JMP, isa.JMP32)
    else _K_PLAIN
    for opcode in range(256))

#: the callee-saved registers a function saves when no map address is pinned, by which of
#: r6-r9 it names (bit r - 6)
_SAVED = tuple((RBP, R12) + tuple(REG[6 + i] for i in range(4) if mask >> i & 1)
               for mask in range(16))

#: :func:`_bound` of every opcode (it depends on the opcode alone): unchecked, checked
_BOUNDS = tuple(tuple(_bound(Insn(opcode), checked) for opcode in range(256))
                for checked in (False, True))


def _frame_code(saved: tuple[int, ...], frame_size: int) -> tuple[bytes, bytes]:
    """(prologue, epilogue) of a function that saves ``saved``: the native frame keeps rsp
    16-byte aligned for calls and holds fp at [rsp], the entry r2 at [rsp+8] and a scratch
    word at [rsp+16]; the BPF frame is taken below ``ctx->sp``; r0 and the saved BPF
    registers start at 0."""
    key = (saved, frame_size)
    code = _frames.get(key)
    if code is not None:
        return code
    locals_ = 24 if len(saved) % 2 == 0 else 32
    a = Asm()
    for reg in saved:
        a.push(reg)
    a.alu_ri(ALU_SUB, RSP, locals_, True)
    a.mov_rr(CTX, R9)
    a.load(RBP, CTX, _SP, 8)
    a.store(RSP, 0, RBP, 8)
    a.store(RSP, 8, RSI, 8)
    a.lea(R11, RBP, -frame_size)
    a.store(CTX, _SP, R11, 8)
    for reg in (RAX,) + saved[2:]:
        a.alu_rr(ALU_XOR, reg, reg, False)
    prologue = bytes(a.code)
    a = Asm()
    a.load(R11, RSP, 0, 8)
    a.store(CTX, _SP, R11, 8)
    a.alu_ri(ALU_ADD, RSP, locals_, True)
    for reg in reversed(saved):
        a.pop(reg)
    a.ret()
    code = _frames[key] = (prologue, bytes(a.code))
    return code


def _constant_code() -> dict[str, tuple[bytes, int]]:
    """Machine code the translator writes unchanged in every function, encoded once:
    ``(bytes, offset of the label inside)`` (issue #19: an instruction written through
    :class:`Asm` costs about a microsecond; a small program's fixed cost was mostly this).
    """
    out = {}
    a = Asm()
    for reg in _ARGS:                   # save_args: r1-r5 and one more push (alignment)
        a.push(reg)
    a.push(R8)
    out["save_args"] = (bytes(a.code), 0)
    a = Asm()
    a.pop(R8)
    for reg in reversed(_ARGS):
        a.pop(reg)
    out["restore_args"] = (bytes(a.code), 0)
    a = Asm()
    a.alu_mi(ALU_CMP, CTX, _ERR, 0)
    out["test_error"] = (bytes(a.code), 0)
    # the common error exit: the first error wins (r11 = code, r10 = pc), then return 0
    a = Asm()
    a.alu_mi(ALU_CMP, CTX, _ERR, 0)
    a.jcc(_JNE, "err")
    a.store(CTX, _ERR, R11, 8)
    a.store(CTX, _ERR_PC, R10, 8)
    a.label("err")
    a.alu_rr(ALU_XOR, RAX, RAX, False)
    out["fail_tail"] = (a.resolve(), a.labels["err"])
    return out


_CONST = _constant_code()
_SAVE_ARGS = _CONST["save_args"][0]
_RESTORE_ARGS = _CONST["restore_args"][0]
_TEST_ERROR = _CONST["test_error"][0]
_FAIL_TAIL, _FAIL_TAIL_ERR = _CONST["fail_tail"]


# What :func:`_scan` checks of an instruction, by opcode (0: it cannot tell; the
# instruction goes to ``validate``): the opcode is valid and so is the instruction when
# dst <= 10 and each flagged field holds (see ``isa.invalid_reason``, whose rules these
# restate for the forms programs use; tests/bpf/jit/test_x86_scan.py holds them equal).
_F_OK, _F_SRC, _F_OFF0, _F_DIVOFF, _F_END, _F_JUMP, _F_CALL, _F_LDDW = (1 << i for i in range(8))
# and what the first pass over a function notes of an instruction that needs no more
# checks (:meth:`_Translator.first_pass`, which :func:`_scan` does on the way)
_F_EXIT, _F_PACKET, _F_CALLX = (1 << i for i in range(8, 11))
_F_NOTE = _F_EXIT | _F_PACKET | _F_CALLX


def _scan_flags(opcode: int) -> int:
    cls, op, x = opcode & 7, opcode & 0xF0, opcode & isa.X
    src = _F_SRC if x else 0
    if cls in (isa.ALU, isa.ALU64):
        if op in (isa.ADD, isa.SUB, isa.MUL, isa.OR, isa.AND, isa.LSH, isa.RSH, isa.XOR,
                  isa.ARSH):
            return _F_OK | src
        if op == isa.MOV:
            return _F_OK | _F_OFF0 | src
        if op in (isa.DIV, isa.MOD):
            return _F_OK | _F_DIVOFF | src
        if op == isa.NEG and not x:
            return _F_OK
        if op == isa.END and not (cls == isa.ALU64 and x):
            return _F_OK | _F_END
        return 0
    if cls in (isa.JMP, isa.JMP32):
        if opcode == isa.OP_MAY_GOTO or op not in isa.JMP_OP_NAMES:
            return 0
        if op in (isa.CALL, isa.EXIT):
            if cls == isa.JMP32:
                return 0
            if op == isa.CALL:
                return _F_OK | _F_CALLX if x else _F_OK | _F_CALL
            return 0 if x else _F_OK | _F_EXIT
        if op == isa.JA:
            return 0 if x else _F_OK | _F_JUMP
        return _F_OK | _F_JUMP | src
    mode, size = opcode & 0xE0, opcode & 0x18
    if cls == isa.LD:
        if opcode == isa.OP_LDDW:
            return _F_OK | _F_LDDW
        return _F_OK | _F_PACKET if mode in (isa.ABS, isa.IND) and size != isa.DW else 0
    if cls == isa.LDX:
        ok = mode == isa.MEM or (mode == isa.MEMSX and size != isa.DW)
        return _F_OK | _F_SRC if ok else 0
    if cls == isa.ST:
        return _F_OK if mode == isa.MEM else 0
    return _F_OK | _F_SRC if mode == isa.MEM else 0          # STX; atomics: validate


_SCAN = tuple(_scan_flags(opcode) for opcode in range(256))
#: the flags that need more than the register and offset tests
_F_MORE = _F_JUMP | _F_DIVOFF | _F_END | _F_CALL | _F_LDDW


def _scan(insns: list[Insn], xlated: bool) -> tuple[list[bool], list[int], tuple | None]:
    """``(validate(insns), split_functions(insns), facts)`` in one pass (issue #19: two
    passes and a call per instruction were a fifth of a small program's translation). Any
    instruction or target the table cannot clear, and any arena program, goes to
    ``validate``, which refuses with its messages (or accepts). ``facts``: what
    :meth:`_Translator.first_pass` finds over the whole program, noted on the way (the
    translation of a one-function program needs no pass of its own), or None when the
    table did not clear the program."""
    n = len(insns)
    placeholder = [False] * n
    starts = {0}
    targets = []
    table, kinds = _SCAN, _KIND
    skip = False
    ok = n > 0 and not xlated
    used = set()
    use = used.add
    jumps = set()            # the jumps' targets (targets: also calls' and lddw func's)
    heads = set()
    loops = []
    calls = False
    exits = 0
    for pc in range(n) if ok else ():
        insn = insns[pc]
        if skip:
            skip = False
            placeholder[pc] = True
            # (its fields as the first pass reads them: a second slot is not checked)
            kind = kinds[insn.opcode]
            use(insn.dst)
            if kind != _K_LDDW:
                use(insn.src)
                if kind == _K_PACKET:
                    use(6)
            continue
        flags = table[insn.opcode]
        if not flags or insn.dst > 10:
            ok = False
            break
        use(insn.dst)
        if flags == _F_OK:
            use(insn.src)
            continue
        if not flags & _F_LDDW:             # an lddw's src is its kind (6: map value)
            use(insn.src)
        if (flags & _F_SRC and insn.src > 10) or (flags & _F_OFF0 and insn.off):
            ok = False
            break
        if flags & _F_NOTE:
            if flags & _F_EXIT:
                exits += 1
            elif flags & _F_PACKET:
                use(6)
            else:
                calls = True
            continue
        if not flags & _F_MORE:
            continue
        if flags & _F_JUMP:
            target = pc + 1 + insn.jump_offset()
            targets.append(target)
            jumps.add(target)
            if target <= pc:
                heads.add(target)
                loops.append((target, pc))
        elif flags & _F_DIVOFF:
            if insn.off not in (0, 1):
                ok = False
                break
        elif flags & _F_END:
            if insn.imm not in (16, 32, 64):
                ok = False
                break
        elif flags & _F_CALL:
            calls = True
            if insn.src == isa.PSEUDO_CALL:
                targets.append(pc + 1 + insn.imm)
                starts.add(pc + 1 + insn.imm)
            elif insn.src not in (isa.CALL_HELPER, isa.PSEUDO_KFUNC_CALL):
                ok = False
                break
        elif flags & _F_LDDW:
            if insn.src > isa.PSEUDO_MAP_IDX_VALUE or pc + 1 >= n:
                ok = False
                break
            skip = True
            if insn.src == isa.PSEUDO_FUNC:
                targets.append(pc + 1 + insn.imm)
                starts.add(pc + 1 + insn.imm)
    if ok:
        for target in targets:
            if not 0 <= target < n or placeholder[target]:
                ok = False
                break
    if not ok:
        return validate(insns, xlated), split_functions(insns), None
    return placeholder, sorted(starts), (used, calls, jumps, heads, loops, exits)


def unsupported_reason(program: isa.Program) -> str | None:
    """Why the direct tier leaves ``program`` to LLVM, or None when it translates it."""
    insns = program.insns
    suspect = _SUSPECT[bool(program.arena_xlated)]
    for pc, insn in enumerate(insns):
        # Most opcodes can never be refused: one table lookup per instruction (issue #19:
        # the full test on each was a twentieth of a small program's compile); ``mov``
        # and ALU64 operations only with an offset (addr_space_cast, ARENA_ZEXT).
        flag = suspect[insn.opcode]
        if not flag or (flag == 2 and not insn.off):
            continue
        cls = insn.cls
        if insn.opcode == 0 and pc and insns[pc - 1].is_lddw:
            continue
        if isa.is_arena_access(insn) or isa.is_addr_space_cast(insn) or (
                program.arena_xlated and isa.is_arena_zext(insn)):
            return f"arena access at {pc}"
        if cls in (isa.JMP, isa.JMP32) and insn.op not in _JMP_OPS:
            return f"jump opcode {insn.opcode:#04x} at {pc}"
        if cls in (isa.ALU, isa.ALU64) and insn.op not in _ALU_OPS:
            return f"ALU opcode {insn.opcode:#04x} at {pc}"
    return None


def _suspects(xlated: bool) -> bytes:
    """Per opcode: 1 when :func:`unsupported_reason` may refuse an instruction with it,
    2 when it may only if the instruction's offset is not 0 (addr_space_cast: ALU64
    ``mov`` with offset 1; ARENA_ZEXT: a flag in the offset), else 0."""
    table = bytearray(256)
    for opcode in range(256):
        cls, op = opcode & 7, opcode & 0xF0
        if (isa.is_arena_access(Insn(opcode))
                or (cls in (isa.JMP, isa.JMP32) and op not in _JMP_OPS)
                or (cls in (isa.ALU, isa.ALU64) and op not in _ALU_OPS)):
            table[opcode] = 1
        elif opcode == isa.ALU64 | isa.MOV | isa.X or (
                xlated and cls == isa.ALU64 and op != isa.MOV):
            table[opcode] = 2
    return bytes(table)


_SUSPECT = (_suspects(False), _suspects(True))


def translate(program: isa.Program, bindings: Bindings, natives: dict[str, int]) -> X86Code:
    """Machine code for ``program`` (see the module doc). ``natives`` maps the symbol of a
    native call target to its C address. Raises :class:`JitError` for what the LLVM
    generator refuses, with its messages."""
    return _Translator(program, bindings, natives).run()


class _Translator:
    # Slots: the translator reads its state on every instruction, and an instance with
    # more attributes than CPython's shared-key dicts hold (30) falls back to slower
    # attribute access (issue #19: measured a few per cent of a translation).
    __slots__ = ("program", "insns", "b", "checked", "natives", "placeholder", "starts", "a",
                 "slots", "slot_pcs", "_slot_index", "patches", "_stubs", "_n", "reorder",
                 "err", "targets", "heads", "pins", "pin_pcs", "_epilogue", "start", "end",
                 "hops", "where", "reach", "byte_cmp", "index", "reach_end", "next_block",
                 "resume", "depth", "facts")

    def __init__(self, program: isa.Program, bindings: Bindings, natives: dict[str, int]):
        #: lay blocks out for the common path (:meth:`layout`); False keeps program order
        #: (checked code always does), which tests measuring encodings rely on
        self.reorder = True
        self.program = program
        self.insns = program.insns
        self.b = bindings
        self.checked = bindings.checked
        self.natives = natives
        self.placeholder, self.starts, self.facts = _scan(self.insns, program.arena_xlated)
        self.a = Asm()
        self.slots: list[tuple] = []
        self.slot_pcs: list[int] = []
        self._slot_index: dict[tuple, int] = {}
        self.patches: list[tuple[int, int, int]] = []
        self._stubs: list[tuple[object, int, int]] = []
        self._n = 0

    def run(self) -> X86Code:
        starts = self.starts
        if len(starts) == 1:
            offsets = [0]
            self.function(0, 0, len(self.insns))
        else:
            offsets = []
            for k, (start, end) in enumerate(zip(starts, starts[1:] + [len(self.insns)])):
                offsets.append(len(self.a.code))
                self.function(k, start, end)
        return X86Code(self.a.resolve(), offsets, list(self.starts), self.slots,
                       self.slot_pcs, self.patches)

    # -- helpers ---------------------------------------------------------------------------

    def load_slot(self, reg: int, key: tuple, pc: int, addend: int = 0) -> None:
        """``movabs reg, <the instance value of key> + addend`` (filled in per instance)."""
        index = self._slot_index.get(key)
        if index is None:
            index = self._slot_index[key] = len(self.slots)
            self.slots.append(key)
            self.slot_pcs.append(pc)
        self.patches.append((self.a.movabs(reg), index, addend))

    def fail_to(self, code: int, pc: int) -> object:
        """A label that sets the error ``code`` at ``pc`` (first error wins) and leaves."""
        self._n += 1
        label = ("stub", self._n)
        self._stubs.append((label, code, pc))
        return label

    def fail(self, code: int, pc: int) -> None:
        self.a.jmp(self.fail_to(code, pc))

    def check_error(self) -> None:
        """After a call: leave the function when the error word is set."""
        self.a.code += _TEST_ERROR
        self.a.jcc(_JNE, self.err)

    def epilogue(self) -> None:
        """Give the frame back (``ctx->sp = fp``) and return (the bytes are the same at
        every exit of a function: made once)."""
        self.a.code += self._epilogue

    def save_args(self) -> None:
        """Keep r1-r5 over a call (six pushes keep rsp 16-byte aligned)."""
        self.a.code += _SAVE_ARGS

    def restore_args(self) -> None:
        self.a.code += _RESTORE_ARGS

    def check_access(self, base: int, off: int, size: int, write: bool, pc: int) -> None:
        """Checked mode: ``jitrt_check`` on ``[base + off]`` (every BPF register kept)."""
        if not self.checked:
            return
        self.a.lea(R11, base, off)
        self.check_r11(size, write, pc)

    def check_r11(self, size: int, write: bool, pc: int) -> None:
        a = self.a
        a.push(RAX)
        self.save_args()
        a.alu_ri(ALU_SUB, RSP, 8, True)            # seven pushes: realign
        a.mov_rr(RDI, CTX)
        a.mov_rr(RSI, R11)
        a.mov_ri(RDX, size)
        a.mov_ri(RCX, int(write))
        a.mov_ri(R8, pc)
        a.mov_ri(RAX, self.b.check_addr)
        a.call_r(RAX)
        a.mov_rr(R11, RAX)
        a.alu_ri(ALU_ADD, RSP, 8, True)
        self.restore_args()
        a.pop(RAX)
        a.test_rr(R11, R11, True)
        a.jcc(_JNE, self.err)

    # -- functions ---------------------------------------------------------------------------

    def function(self, k: int, start: int, end: int) -> None:
        a = self.a
        self.err = ("err", k)
        a.label(("fn", start))
        # Only the callee-saved registers of the BPF registers r6-r9 this function names
        # are saved and zeroed (LD_ABS/IND name r6); rbp (r10) and r12 (the context) always.
        insns, placeholder = self.insns, self.placeholder
        facts = self.facts if len(self.starts) == 1 else None
        used, calls, targets, heads, loops, exits = facts or self.first_pass(start, end)
        self.targets, self.heads = targets, heads
        self.pins = pins = self.choose_pins(start, end, used, calls, loops) if loops else {}
        if pins:
            pinned = set(pins.values())
            saved = (RBP, R12) + tuple(REG[r] for r in (6, 7, 8, 9)
                                       if r in used or REG[r] in pinned)
        else:
            saved = _SAVED[(6 in used) | (7 in used) << 1 | (8 in used) << 2
                           | (9 in used) << 3]
        prologue, self._epilogue = _frame_code(saved, self.b.frame_size)
        a.code += prologue
        for key, reg in pins.items():
            self.load_slot(reg, key, self.pin_pcs[key])
        if self.checked:
            # The outermost entry of a run (no live frame yet) starts a fresh budget; every
            # other entry (a local call, callx, a callback) spends the function's length, as
            # a backward jump spends its loop's: a tree of calls has no backward jump (f0
            # calls f1 k times, f1 calls f2 k times, ...: k**depth calls) and would
            # otherwise run unbounded.
            body, nested = ("body", k), ("nested", k)
            a.alu_rm(ALU_CMP, RBP, CTX, _HI)
            a.jcc(_JNE, nested)
            a.load(R11, CTX, _LIMIT, 8)
            a.store(CTX, _BUDGET, R11, 8)
            a.jmp(body)
            a.label(nested)
            a.alu_mi(ALU_SUB, CTX, _BUDGET, end - start)
            a.jcc(_JS, self.fail_to(ERR_LIMIT, start))
            a.label(body)

        self.start, self.end = start, end
        if not targets and (exits == 0 or exits == 1 and _KIND[insns[end - 1].opcode] == _K_EXIT
                                                   and not placeholder[end - 1]):
            # straight-line code (no jump, at most an exit at its end): one block, and
            # nothing asks for its size (issue #19: small programs' fixed cost)
            self.hops = {}
            blocks, sizes = [(start, end - 1)], {}
        else:
            blocks, sizes = self.blocks(start, end)
        order = (blocks if self.checked or not self.reorder or len(blocks) == 1
                 else self.layout(blocks, start, loops))
        # Upper bounds of each block's machine code in layout order (prefix sums, with
        # the alignment padding before a loop head and room for a `jmp` at every block's
        # end): a forward jump whose target is surely within 127 bytes takes the 2-byte
        # form.
        self.where = where = {}
        self.reach = reach = {}
        if targets:
            ends = []
            total = 0
            for index, (first, last) in enumerate(order):
                if first in heads:
                    total += 15
                where[first] = index
                reach[first] = total
                total += sizes[first]
                ends.append(total)
                total += 5
        else:
            # no jump: the blocks stay in program order and nothing asks how far apart
            ends = [0] * len(order)
        # A rule that merges instructions sets `resume` past the ones it consumed (never
        # past its block: the instructions it takes are not jump targets, and no rule
        # takes a jump but the one that ends it)
        self.byte_cmp = (-1, 0)
        count = len(order)
        labels, code = a.labels, a.code
        for index, (first, last) in enumerate(order):
            self.index, self.reach_end = index, ends[index]
            self.next_block = order[index + 1][0] if index + 1 < count else -1
            if first in heads:
                a.align(16)
            self.resume = first
            self.depth = [0] * 11
            for pc in range(first, last + 1):
                if placeholder[pc] or pc < self.resume:
                    continue
                labels[pc] = len(code)            # Asm.label, inline: once per instruction
                self.insn(pc, insns[pc], start, end)
            opcode = insns[last].opcode
            if not (opcode & 7 in (isa.JMP, isa.JMP32)
                    and opcode & 0xF0 not in (isa.CALL, isa.EXIT)) and opcode != isa.OP_EXIT:
                # falls into the next instruction's block: it may be elsewhere now
                if last + 1 >= end:
                    self.fail(ERR_FELL_OFF, end - 1)
                elif self.next_block != last + 1:
                    self.jmp_to(self.resolve(last + 1))
        # Cold paths after the body: error stubs, then the common error exit.
        common = ("fail", k)
        for label, code, pc in self._stubs:
            a.label(label)
            a.mov_ri(R11, code)
            a.mov_ri(R10, pc)
            a.jmp(common)
        self._stubs.clear()
        a.label(common)
        a.labels[self.err] = len(a.code) + _FAIL_TAIL_ERR
        a.code += _FAIL_TAIL
        a.code += self._epilogue

    def first_pass(self, start: int, end: int) -> tuple:
        """``(used, calls, targets, heads, loops, exits)`` of the function ``[start,
        end)``: the BPF registers it names (the callee-saved ones among r6-r9 are saved
        and zeroed; LD_ABS/IND name r6), whether it calls anything, its jumps' targets,
        the loop heads (targets of backward jumps: they start on a 16-byte boundary, as
        LLVM aligns its loops, fewer fetch blocks per iteration), the back edges
        ``(head, jump)`` and how many exits it has. :func:`_scan` notes the same of a
        one-function program on its way."""
        insns, placeholder = self.insns, self.placeholder
        used = set()
        calls = False
        targets = set()
        heads = set()
        loops = []
        exits = 0
        kinds = _KIND
        for pc in range(start, end):
            insn = insns[pc]
            kind = kinds[insn.opcode]
            used.add(insn.dst)
            if kind == _K_PLAIN:
                used.add(insn.src)
                continue
            if kind == _K_LDDW:             # an lddw's src is its kind (6: map value)
                continue
            used.add(insn.src)
            if kind == _K_PACKET:
                used.add(6)
            elif not placeholder[pc]:
                if kind == _K_CALL:
                    calls = True
                elif kind == _K_EXIT:
                    exits += 1
                elif kind == _K_JUMP:
                    target = pc + insn.jump_offset() + 1
                    targets.add(target)
                    if target <= pc:
                        heads.add(target)
                        loops.append((target, pc))
        return used, calls, targets, heads, loops, exits

    def choose_pins(self, start: int, end: int, used: set, calls: bool,
                    loops: list[tuple[int, int]]) -> dict[tuple, int]:
        """Instance constants (map and map-value addresses) that an ``lddw`` inside a loop
        loads, each given an x86 register of its own for the whole function when one is
        free: loaded once in the prologue, so the loop's ``lddw`` is a register move (or
        the base of an address, :meth:`pinned_access`) instead of a 10-byte ``movabs``
        per iteration, as LLVM hoists them. Free: a BPF register r6-r9 the function
        never names (its callee-saved x86 register is then saved like a used one), and
        r1-r5 when the function also makes no call of any kind (no callee or helper can
        see their entry values; the code's own uses of rcx/rdx as scratch for shifts and
        division restore them). Most uses first; at most one register per constant."""
        self.pin_pcs = {}
        if not loops:
            return {}
        # pcs inside some loop: a difference array over the back edges' spans
        depth = [0] * (end - start + 1)
        for head, back in loops:
            depth[head - start] += 1
            depth[back - start + 1] -= 1
        count: dict[tuple, int] = {}
        inside = 0
        insns = self.insns
        for pc in range(start, end):
            inside += depth[pc - start]
            insn = insns[pc]
            if inside and insn.is_lddw and insn.src in (isa.PSEUDO_MAP_IDX,
                                                         isa.PSEUDO_MAP_IDX_VALUE):
                key = ("map" if insn.src == isa.PSEUDO_MAP_IDX else "map_value", insn.imm)
                count[key] = count.get(key, 0) + 1
                self.pin_pcs.setdefault(key, pc)
        if not count:
            return {}
        free = [] if calls else [REG[r] for r in (1, 2, 3, 4, 5) if r not in used]
        free += [REG[r] for r in (6, 7, 8, 9) if r not in used]
        ranked = sorted(count, key=lambda key: -count[key])
        return dict(zip(ranked, free))

    # -- instructions ----------------------------------------------------------------------

    def insn(self, pc: int, insn: Insn, start: int, end: int) -> bool:
        """Translate one instruction; True when it ends its block unconditionally."""
        cls = insn.cls
        if cls == isa.ALU64 or cls == isa.ALU:
            self.alu(pc, insn, cls == isa.ALU64)
            # how many dependent operations each register's value is from the block's
            # start (moves are free; loads count 4): :meth:`reassociate` reads it
            depth, dst = self.depth, insn.dst
            if insn.op == isa.MOV:
                depth[dst] = depth[insn.src] if insn.opcode & isa.X else 0
            else:
                depth[dst] = max(depth[dst], depth[insn.src] if insn.opcode & isa.X
                                 else 0) + (3 if insn.op == isa.MUL else 1)
            return False
        if cls in (isa.JMP, isa.JMP32):
            return self.jump(pc, insn, start, end)
        a = self.a
        if cls == isa.LDX:
            self.depth[insn.dst] = self.depth[insn.src] + 4
            if self.update_in_memory(pc, insn):
                return False
            size = isa.SIZE_BYTES[insn.size]
            base = REG[insn.src]
            if self.checked:
                self.check_access(base, insn.off, size, False, pc)
            a.load(REG[insn.dst], base, insn.off, size, insn.mode == isa.MEMSX)
            return False
        if cls == isa.ST:
            size = isa.SIZE_BYTES[insn.size]
            base = REG[insn.dst]
            if self.checked:
                self.check_access(base, insn.off, size, True, pc)
            a.store_imm(base, insn.off, insn.imm, size)
            return False
        if cls == isa.STX:
            if insn.mode == isa.MEM:
                size = isa.SIZE_BYTES[insn.size]
                base = REG[insn.dst]
                if self.checked:
                    self.check_access(base, insn.off, size, True, pc)
                a.store(base, insn.off, REG[insn.src], size)
            elif insn.imm == isa.LOAD_ACQ:
                # x86-64 loads and stores are acquire and release already (TSO), as the
                # kernel's JIT relies on; this code is never reordered by a compiler.
                size = isa.SIZE_BYTES[insn.size]
                self.check_access(REG[insn.src], insn.off, size, False, pc)
                a.load(REG[insn.dst], REG[insn.src], insn.off, size)
            elif insn.imm == isa.STORE_REL:
                size = isa.SIZE_BYTES[insn.size]
                self.check_access(REG[insn.dst], insn.off, size, True, pc)
                a.store(REG[insn.dst], insn.off, REG[insn.src], size)
            else:
                self.atomic(pc, insn)
            return False
        # LD
        if insn.is_lddw:
            if not (self.pins and self.pinned_access(pc)):
                self.lddw(pc, insn)
        elif insn.mode in (isa.ABS, isa.IND):
            self.ld_packet(pc, insn)
        else:
            self.fail(ERR_LEGACY, pc)
        return False

    def alu(self, pc: int, insn: Insn, w: bool) -> None:
        a = self.a
        op = insn.op
        d = REG[insn.dst]
        x = insn.opcode & isa.X
        if op == isa.MOV:
            if x:
                s = REG[insn.src]
                nxt = self.insns[pc + 1] if pc + 1 < self.end else None
                if (not insn.off and nxt is not None and nxt.cls in (isa.ALU, isa.ALU64)
                        and nxt.op == isa.AND and not nxt.opcode & isa.X
                        and nxt.dst == insn.dst and nxt.imm in (0xFF, 0xFFFF)
                        and pc + 1 not in self.targets and not self.placeholder[pc + 1]):
                    # `d = s; d &= 0xff` (either width: both keep the low byte, zero
                    # the rest): one zero-extending move from s
                    if nxt.imm == 0xFF and self.byte_compare(pc, insn):
                        return
                    if nxt.imm == 0xFF:
                        a.movzx8(d, s)
                    else:
                        a.movzx16(d, s)
                    self.resume = pc + 2
                    return
                if insn.off:
                    a.movsx_rr(d, s, insn.off, w)
                elif d != s or not w:
                    a.mov_rr(d, s, w)
            elif w:
                a.mov_ri(d, insn.imm)
            else:
                a.mov_ri32(d, insn.imm)
            return
        group = _GROUP1.get(op)
        if group is not None:
            if op == isa.ADD and x and w and (
                    self.fold_add_into_load(pc, insn)
                    or self.update_in_memory(pc + 1, self.insns[pc + 1], pc)):
                return
            if op == isa.AND and not x and insn.imm in (0xFF, 0xFFFF):
                # `and` with 0xff / 0xffff is a zero-extending move (3-4 bytes, not 6-7)
                if insn.imm == 0xFF:
                    a.movzx8(d, d)
                else:
                    a.movzx16(d, d)
                return
            if x:
                if op != isa.SUB and self.reassociate(pc, insn):
                    return
                a.alu_rr(group, d, REG[insn.src], w)
            else:
                a.alu_ri(group, d, insn.imm, w)
            return
        if op == isa.MUL:
            if x:
                a.imul_rr(d, REG[insn.src], w)
            else:
                a.imul_ri(d, insn.imm, w)
            return
        shift = _SHIFT.get(op)
        if shift is not None:
            if self.pins and op == isa.LSH and w and not x and self.pinned_access(pc):
                return
            if x:
                self.shift_reg(shift, d, REG[insn.src], w)
            else:
                count = insn.imm & (63 if w else 31)
                if count:
                    a.shift_ri(shift, d, count, w)
                elif not w:
                    a.mov_rr(d, d, False)
            return
        if op == isa.NEG:
            a.neg(d, w)
        elif op in (isa.DIV, isa.MOD):
            self.divmod(insn, d, w)
        elif op == isa.END:
            self.byteswap(insn, d, w)
        else:
            raise JitError(f"unknown alu operation {op:#x}", pc)

    def update_in_memory(self, pc: int, insn: Insn, add: int | None = None,
                         pinned: tuple[int, int, int] | None = None) -> bool:
        """``rA = *(size *)(rB + off); rA op= K|rC; *(size *)(rB + off) = rA`` with rA dead
        afterwards (a counter update: ``hist[x]++``) is one ``op size [rB + off], K|rC``,
        as LLVM selects it: the same one read and one write of the same bytes, in the same
        order, and add/sub/and/or/xor give the same low ``size`` bytes at either width (a
        64-bit value needs a 64-bit operation: ALU32 would clear its upper half). Unchecked
        code only; not when the second or third instruction is a jump target. True when
        done (the two following instructions are skipped).

        With ``add`` (the pc of ``rB += rI`` just before, ``insn`` at ``add + 1``), an
        element update ``a[i] op= v``: when rB is dead afterwards too, the sum is only the
        address, so it is ``op size [rB + rI + off]`` (rB keeps a loop-invariant value in
        a loop: the CPU sees the same address expression each iteration, as in LLVM's
        code); ``add`` is then skipped as well. With ``pinned`` = (x86 register, addend,
        scale) as well, rB was a pinned constant + addend (:meth:`pinned_access`) and rI
        is still unshifted when ``scale`` is not 0 (then rI must be dead afterwards and
        not the operand): ``op size [pin + rI << scale + addend + off]``."""
        if (self.checked or insn.cls != isa.LDX or insn.mode != isa.MEM
                or pc + 2 >= self.end):
            return False
        op, st = self.insns[pc + 1], self.insns[pc + 2]
        a_reg, size = insn.dst, isa.SIZE_BYTES[insn.size]
        group = _GROUP1.get(op.op) if op.cls in (isa.ALU, isa.ALU64) else None
        x = op.opcode & isa.X
        if (group is None or op.dst != a_reg or a_reg == insn.src
                or (x and (op.src == a_reg or size < 4))
                or (size == 8 and op.cls != isa.ALU64)
                or st.cls != isa.STX or st.mode != isa.MEM or st.size != insn.size
                or st.dst != insn.src or st.src != a_reg or st.off != insn.off
                or pc + 1 in self.targets or pc + 2 in self.targets
                or not self.dead_after(pc + 3, a_reg)):
            return False
        index = None
        base, disp, scale = REG[insn.src], insn.off, 0
        if add is not None:
            ins = self.insns[add]
            if (ins.dst != insn.src or pc in self.targets or (x and op.src == ins.dst)
                    or ins.src == ins.dst or not self.dead_after(pc + 3, ins.dst)):
                return False
            index = REG[ins.src]
            if pinned is not None:
                base, addend, scale = pinned
                disp += addend
                if not -1 << 31 <= disp < 1 << 31 or (scale and (
                        (x and op.src == ins.src) or not self.dead_after(pc + 3, ins.src))):
                    return False
        self.resume = pc + 3
        # An add or sub of a constant just after it (a loop counter: `i++`), to a register
        # the update does not use, goes first, as LLVM schedules `hist[x]++; i++`: the
        # load feeding the address and the update are apart (measured: the histogram loop
        # 5 % faster so on this machine).
        after = self.resume
        if after < self.end and after not in self.targets:
            nxt = self.insns[after]
            if (nxt.opcode & 0xF7 in (isa.ALU64 | isa.ADD, isa.ALU64 | isa.SUB, isa.ALU | isa.ADD,
                                      isa.ALU | isa.SUB) and not nxt.opcode & isa.X
                    and nxt.dst not in (insn.src, a_reg, 10)
                    and (add is None or nxt.dst != self.insns[add].src)
                    and not (x and nxt.dst == op.src)):
                self.a.alu_ri(_GROUP1[nxt.opcode & 0xF0], REG[nxt.dst], nxt.imm,
                              nxt.opcode & 7 == isa.ALU64)
                self.resume = after + 1
        if x:
            self.a.alu_mem_reg(group, base, disp, REG[op.src], size == 8, index, scale)
        else:
            self.a.alu_mem_imm(group, base, disp, op.imm, size, index, scale)
        return True

    def pinned_access(self, pc: int) -> bool:
        """``[rI <<= s;] rB = <pinned constant> + a; rB += rI`` (s 1-3) followed by a load
        into rB (``rB = *(size *)(rB + off)``) or an element update (see
        :meth:`update_in_memory`) is one access to ``[pin + rI << s + a + off]``, as LLVM
        selects an array access with a hoisted base: rB is overwritten by the load (or
        dead), and rI, left unshifted, must be dead after the access. Unchecked code
        only; none of the instructions after the first may be a jump target. True when
        done (``resume`` is past the access)."""
        insns, targets, end = self.insns, self.targets, self.end
        insn = insns[pc]
        scale = 0
        if insn.opcode == isa.ALU64 | isa.LSH | isa.K:
            scale, pc = insn.imm, pc + 1
            if not 1 <= scale <= 3 or pc in targets:
                return False
            insn = insns[pc]
        add_pc = pc + 2
        if (self.checked or add_pc + 1 >= end or not insn.is_lddw
                or insn.src not in (isa.PSEUDO_MAP_IDX, isa.PSEUDO_MAP_IDX_VALUE)):
            return False
        pin = self.pins.get(
            ("map" if insn.src == isa.PSEUDO_MAP_IDX else "map_value", insn.imm))
        add, nxt = insns[add_pc], insns[add_pc + 1]
        b = insn.dst
        if (pin is None or add.opcode != isa.ALU64 | isa.ADD | isa.X or add.dst != b
                or add.src == b or add.src == 10 or add_pc in targets
                or add_pc + 1 in targets
                or (scale and add.src != insns[pc - 1].dst)):
            return False
        addend = insns[pc + 1].imm if insn.src == isa.PSEUDO_MAP_IDX_VALUE else 0
        if nxt.cls == isa.LDX and nxt.mode in (isa.MEM, isa.MEMSX) and nxt.src == b \
                and nxt.dst == b:
            disp = addend + nxt.off
            if not -1 << 31 <= disp < 1 << 31 or (
                    scale and not self.dead_after(add_pc + 2, add.src)):
                return False
            self.a.load(REG[b], pin, disp, isa.SIZE_BYTES[nxt.size], nxt.mode == isa.MEMSX,
                        index=REG[add.src], scale=scale)
            self.resume = add_pc + 2
            return True
        return self.update_in_memory(add_pc + 1, nxt, add_pc, (pin, addend, scale))

    def dead_after(self, pc: int, reg: int, budget: int = 48, also: int = -1) -> bool:
        """True when no path from instruction ``pc`` (and from ``also``, when given)
        reads BPF register ``reg`` before writing it (exit reads r0; a call, an atomic
        or a packet load counts as a read of every register; looking at more than
        ``budget`` instructions: not dead)."""
        work, seen = [pc] if also < 0 else [pc, also], set()
        insns, start, end, placeholder = self.insns, self.start, self.end, self.placeholder
        while work:
            pc = work.pop()
            if pc in seen:
                continue
            seen.add(pc)
            if len(seen) > budget or not start <= pc < end:
                return False
            insn = insns[pc]
            opcode = insn.opcode
            cls, op = opcode & 7, opcode & 0xF0
            if cls == isa.ALU or cls == isa.ALU64:
                if ((opcode & isa.X and op != isa.END and insn.src == reg)
                        or (insn.dst == reg and op != isa.MOV)):
                    return False
                if insn.dst != reg:
                    work.append(pc + 1)
            elif cls == isa.JMP or cls == isa.JMP32:
                if op == isa.EXIT:
                    if reg == 0:
                        return False
                elif op == isa.CALL:
                    return False
                else:
                    if op != isa.JA and (insn.dst == reg or (
                            opcode & isa.X and insn.src == reg)):
                        return False
                    work.append(pc + insn.jump_offset() + 1)
                    if op != isa.JA:
                        work.append(pc + 1)
            elif cls == isa.LDX:
                if insn.src == reg:
                    return False
                if insn.dst != reg:
                    work.append(pc + 1)
            elif cls == isa.ST:
                if insn.dst == reg:
                    return False
                work.append(pc + 1)
            elif cls == isa.STX and opcode & 0xE0 == isa.MEM:
                if reg == insn.dst or reg == insn.src:
                    return False
                work.append(pc + 1)
            elif opcode == isa.OP_LDDW and not placeholder[pc]:
                if insn.dst != reg:
                    work.append(pc + 2)
            else:
                return False
        return True

    def reassociate(self, pc: int, insn: Insn) -> bool:
        """``a op= b; c op= a`` (op add, or, and or xor: associative and commutative at
        either width, both instructions the same) with a dead afterwards computes
        ``c op a op b`` in any order; when c's value is not the last of the three to be
        ready (``depth``, counted from the block's start), ``c op= <earlier of a, b>; c
        op= <later>`` shortens the chain, as LLVM's reassociation does (crc32c's last
        steps: one dependent operation fewer per byte). Not when the second instruction
        is a jump target. True when done (``resume`` is past both)."""
        nxt_pc = pc + 1
        if nxt_pc >= self.end or nxt_pc in self.targets:
            return False
        nxt = self.insns[nxt_pc]
        a_reg, b_reg, c_reg = insn.dst, insn.src, nxt.dst
        if (nxt.opcode != insn.opcode or nxt.src != a_reg or c_reg in (a_reg, b_reg)
                or a_reg == b_reg):
            return False
        depth = self.depth
        da, db, dc = depth[a_reg], depth[b_reg], depth[c_reg]
        if dc >= max(da, db) or not self.dead_after(nxt_pc + 1, a_reg):
            return False
        first, second = (a_reg, b_reg) if da <= db else (b_reg, a_reg)
        group, w = _GROUP1[insn.op], insn.cls == isa.ALU64
        self.a.alu_rr(group, REG[c_reg], REG[first], w)
        self.a.alu_rr(group, REG[c_reg], REG[second], w)
        depth[c_reg] = max(max(dc, depth[first]) + 1, depth[second])
        self.resume = nxt_pc + 1
        return True

    def byte_compare(self, pc: int, insn: Insn) -> bool:
        """``d = s; d &= 0xff; if d <op> K`` (op ==, !=, or an unsigned order; K 0-255;
        either width for each) with d dead on both sides of the jump is one byte compare
        ``cmp s8, K`` (``test s8, s8`` for 0), as LLVM selects ``(v & 0xff) == K``: the
        zero-extended low byte compares with K exactly as the byte does. Not when the
        second or third instruction is a jump target. True when done (``resume`` is the
        jump, which emits the compare; :meth:`jump`)."""
        jmp_pc = pc + 2
        if jmp_pc >= self.end or jmp_pc in self.targets:
            return False
        j = self.insns[jmp_pc]
        d = insn.dst
        if (j.cls not in (isa.JMP, isa.JMP32) or j.op not in _UNSIGNED or j.opcode & isa.X
                or j.dst != d or not 0 <= j.imm <= 255):
            return False
        target = jmp_pc + j.jump_offset() + 1
        if not self.dead_after(jmp_pc + 1, d, also=target):
            return False
        self.byte_cmp = (jmp_pc, REG[insn.src])
        self.resume = jmp_pc
        return True

    def fold_add_into_load(self, pc: int, insn: Insn) -> bool:
        """``rX += rY; rX = *(size *)(rX + off)`` (array indexing as compilers write it)
        is one load from ``[rX + rY + off]``: the load overwrites rX, so the sum is never
        seen, and x86 address arithmetic wraps at 64 bits as the BPF add does. Unchecked
        code only (the checked access is tested on the sum); not when the load is a jump
        target. True when done (the load is skipped)."""
        nxt = self.insns[pc + 1] if pc + 1 < self.end else None
        if (nxt is None or self.checked or nxt.cls != isa.LDX or pc + 1 in self.targets
                or nxt.mode not in (isa.MEM, isa.MEMSX) or nxt.src != insn.dst
                or nxt.dst != insn.dst or insn.src == 10 or insn.dst == 10):
            return False
        self.a.load(REG[nxt.dst], REG[insn.dst], nxt.off, isa.SIZE_BYTES[nxt.size],
                    nxt.mode == isa.MEMSX, index=REG[insn.src])
        self.resume = pc + 2
        return True

    def shift_reg(self, op: int, d: int, s: int, w: bool) -> None:
        """Shift by a register: the count goes through cl (rcx is BPF r4: kept in r11)."""
        a = self.a
        if s == RCX:
            a.shift_cl(op, d, w)
            return
        a.mov_rr(R11, RCX)
        a.mov_rr(RCX, s)
        if d == RCX:
            a.shift_cl(op, R11, w)
            a.mov_rr(RCX, R11)
        else:
            a.shift_cl(op, d, w)
            a.mov_rr(RCX, R11)

    def divmod(self, insn: Insn, d: int, w: bool) -> None:
        """DIV/MOD (signed when ``off`` is 1) with RFC 9669's results for a zero divisor and
        for INT_MIN / -1; rax and rdx (BPF r0, r3) are kept in r10/r9 around the divide."""
        a = self.a
        self._n += 1
        n = self._n
        signed = insn.off == 1
        is_div = insn.op == isa.DIV
        done, zero, minus1 = ("dv", n), ("dz", n), ("dm", n)
        known = None
        if insn.opcode & isa.X:
            a.mov_rr(R11, REG[insn.src], w)
        else:
            known = insn.imm if w else insn.imm & 0xFFFFFFFF
            if known == 0 or (signed and insn.imm == -1):
                # the special results need no divide
                self._divmod_special(d, w, is_div, known == 0)
                return
            if w:
                a.mov_ri(R11, insn.imm)
            else:
                a.mov_ri32(R11, insn.imm)
        if known is None:
            a.test_rr(R11, R11, w)
            a.jcc(_JE, zero)
            if signed:
                a.alu_ri(ALU_CMP, R11, -1, w)
                a.jcc(_JE, minus1)
        a.mov_rr(R10, RAX)
        a.mov_rr(R9, RDX)
        if d != RAX:
            a.mov_rr(RAX, d)
        if signed:
            a.sign_extend_rax(w)
        else:
            a.alu_rr(ALU_XOR, RDX, RDX, False)
        a.div(R11, w, signed)
        a.mov_rr(R11, RAX if is_div else RDX)
        a.mov_rr(RAX, R10)
        a.mov_rr(RDX, R9)
        a.mov_rr(d, R11)
        if known is None:
            a.jmp(done)
            a.label(zero)
            self._divmod_special(d, w, is_div, True)
            if signed:
                a.jmp(done)
                a.label(minus1)
                self._divmod_special(d, w, is_div, False)
            a.label(done)

    def _divmod_special(self, d: int, w: bool, is_div: bool, by_zero: bool) -> None:
        a = self.a
        if by_zero:
            if is_div:
                a.alu_rr(ALU_XOR, d, d, False)         # x / 0 = 0
            elif not w:
                a.mov_rr(d, d, False)                  # x % 0 = x (ALU32: zero-extended)
        elif is_div:
            a.neg(d, w)                                # x / -1 = -x (INT_MIN wraps)
        else:
            a.alu_rr(ALU_XOR, d, d, False)             # x % -1 = 0

    def byteswap(self, insn: Insn, d: int, w: bool) -> None:
        a = self.a
        width = insn.imm
        swap = w or insn.source == isa.TO_BE
        if width == 16:
            if swap:
                a.rol16_8(d)
            a.movzx16(d, d)
        elif width == 32:
            if swap:
                a.bswap(d, False)
            else:
                a.mov_rr(d, d, False)
        elif swap:
            a.bswap(d, True)

    # -- jumps and calls ---------------------------------------------------------------------

    def jump(self, pc: int, insn: Insn, start: int, end: int) -> bool:
        a = self.a
        op = insn.op
        if op == isa.EXIT:
            a.code += self._epilogue
            return True
        if op == isa.CALL:
            self.call(pc, insn)
            return False
        target = pc + insn.jump_offset() + 1
        if not start <= target < end:
            raise JitError(f"jump to {target} leaves its function [{start}, {end})", pc)
        if self.checked and target <= pc:
            a.alu_mi(ALU_SUB, CTX, _BUDGET, pc - target + 1)
            a.jcc(_JS, self.fail_to(ERR_LIMIT, pc))
        if op == isa.JA:
            target = self.resolve(target)
            if target != self.next_block:
                self.jmp_to(target)
            return True
        w = insn.cls == isa.JMP
        d = REG[insn.dst]
        if self.byte_cmp[0] == pc:
            a.cmp8_ri(self.byte_cmp[1], insn.imm)
        elif insn.opcode & isa.X:
            if op == isa.JSET:
                a.test_rr(d, REG[insn.src], w)
            else:
                a.alu_rr(ALU_CMP, d, REG[insn.src], w)
        elif op == isa.JSET:
            a.test_ri(d, insn.imm, w)
        elif insn.imm == 0 and op in (isa.JEQ, isa.JNE):
            a.test_rr(d, d, w)
        else:
            a.alu_ri(ALU_CMP, d, insn.imm, w)
        cc = _JCC[op]
        after = pc + 1
        if after >= end:                        # falls off the function when not taken
            self.jcc_to(cc, self.resolve(target))
            self.fail(ERR_FELL_OFF, end - 1)
            return False
        nxt = self.next_block
        if nxt == after:
            self.jcc_to(cc, self.resolve(target))
            return False
        # the fall-through block is elsewhere (layout): x86 condition codes come in pairs
        # (cc ^ 1 is the opposite test), so the taken side can be the one that falls
        far, near = self.resolve(target), self.resolve(after)
        if nxt in (target, far):
            self.jcc_to(cc ^ 1, near)
        else:
            self.jcc_to(cc, far)
            if nxt != near:
                self.jmp_to(near)
        return False

    def jcc_to(self, cc: int, target: int) -> None:
        """``j<cc>`` to the block at ``target``: 2 bytes when it comes later in the
        layout and the code between is surely at most 127 bytes (the labels of earlier
        blocks are known: :meth:`Asm.jcc` picks the form)."""
        if (self.where[target] > self.index
                and self.reach[target] - self.reach_end <= 127):
            self.a.jcc_short(cc, target)
        else:
            self.a.jcc(cc, target)

    def jmp_to(self, target: int) -> None:
        """``jmp`` to the block at ``target`` (2 bytes when surely near, as jcc_to)."""
        if (self.where[target] > self.index
                and self.reach[target] - self.reach_end <= 127):
            self.a.jmp_short(target)
        else:
            self.a.jmp(target)

    def goes_on(self, last: int) -> int:
        """Where a block ending at ``last`` goes on when it does not leave early: the
        target of its ``goto``, the fall-through of its conditional jump or of its last
        instruction (through :meth:`resolve`); -1 after an exit or off the function."""
        insn = self.insns[last]
        if insn.cls in (isa.JMP, isa.JMP32) and insn.op != isa.CALL:
            if insn.op == isa.EXIT:
                return -1
            if insn.op == isa.JA:
                return self.resolve(last + insn.jump_offset() + 1)
        return self.resolve(last + 1) if last + 1 < self.end else -1

    def resolve(self, pc: int) -> int:
        """Where a jump to ``pc`` may go instead: through blocks that are only a forward
        or unchecked ``goto`` (jump threading), at most 4 of them (a cycle of gotos is
        left as it is)."""
        hops = self.hops
        for _ in range(4):
            nxt = hops.get(pc)
            if nxt is None or nxt == pc:
                break
            pc = nxt
        return pc

    def blocks(self, start: int, end: int) -> tuple[list[tuple[int, int]], dict[int, int]]:
        """The function's basic blocks in program order, ``(first, last)`` pcs: each
        starts at a jump target or after a jump, exit or call-free end; and an upper
        bound of each one's machine code (by first pc; :func:`_bound`). Also fills
        ``hops`` (unchecked code): blocks that are one ``goto`` inside the function,
        which jumps and falls may skip (checked code spends the budget on backward
        ones: not skipped there)."""
        insns, targets, placeholder = self.insns, self.targets, self.placeholder
        self.hops = hops = {}
        out = []
        sizes = {}
        first = start
        size = 0
        checked = self.checked
        bounds, kinds = _BOUNDS[checked], _KIND
        for pc in range(start, end):
            if placeholder[pc]:
                continue
            if pc != first and pc in targets:
                out.append((first, pc - 1))
                sizes[first] = size
                first, size = pc, 0
            insn = insns[pc]
            opcode = insn.opcode
            size += bounds[opcode]
            kind = kinds[opcode]
            if kind == _K_JUMP or kind == _K_EXIT:
                if pc == first and opcode & 0xF0 == isa.JA and not checked:
                    target = pc + insn.jump_offset() + 1
                    if start <= target < end:
                        hops[pc] = target
                out.append((first, pc))
                sizes[first] = size
                first, size = pc + 1, 0
        if first < end:
            out.append((first, end - 1))
            sizes[first] = size
        return out, sizes

    def layout(self, blocks: list[tuple[int, int]], start: int,
               loops: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The order to write ``blocks`` in (unchecked code): chains that follow each
        block with its likely successor, so the common path falls through as in LLVM's
        block placement: after a ``goto``, its target (when not placed yet); after a
        conditional jump, the fall-through, but the target for ``!=`` (a test for
        equality is predicted false, LLVM's static heuristic) unless it leaves a loop
        (``loops``: the back edges' spans); after other instructions,
        the next one. A chain ends at a placed block or an exit; the next starts at the
        first block not placed yet. Blocks that are only a ``goto`` reached by falling
        into them are skipped (every jump and fall goes through them: :meth:`resolve`)."""
        insns, targets, end = self.insns, self.targets, self.end
        count = len(blocks)
        placed = [False] * count
        hops = self.hops
        index = {}
        for i, (first, _) in enumerate(blocks):
            index[first] = i
            if first in hops and first not in targets and first != start:
                placed[i] = True                # never written
        order = []
        forced: dict[int, int] = {}
        i, scan = 0, 0
        while True:
            placed[i] = True
            order.append(blocks[i])
            last = blocks[i][1]
            insn = insns[last]
            if insn.cls not in (isa.JMP, isa.JMP32) or insn.op == isa.CALL:
                options = (last + 1,)
            elif insn.op == isa.EXIT:
                options = ()
            elif insn.op == isa.JA:
                options = (last + insn.jump_offset() + 1,)
            elif insn.op == isa.JNE and not any(
                    h <= last <= b and not h <= last + insn.jump_offset() + 1 <= b
                    for h, b in loops):
                # (a jump out of a loop is predicted not taken first, as LLVM's loop
                # heuristic outranks its equality one)
                options = (last + insn.jump_offset() + 1, last + 1)
            else:
                options = (last + 1, last + insn.jump_offset() + 1)
                # A diamond (both arms go on at one block M, neither predicted): the
                # target's arm, then the fall-through's, then M, as LLVM hedges it: the
                # first arm jumps to M, the second is jumped to and falls into M, so
                # either path takes one jump (a chain through one arm would take none on
                # that arm and two on the other).
                arm_t = index.get(self.resolve(options[1]), -1)
                arm_f = index.get(self.resolve(options[0]), -1)
                if (arm_t >= 0 and arm_f >= 0 and arm_t != arm_f and not placed[arm_t]
                        and not placed[arm_f]):
                    merge = self.goes_on(blocks[arm_t][1])
                    if merge >= 0 and merge == self.goes_on(blocks[arm_f][1]):
                        at = index.get(merge, -1)
                        if at >= 0 and not placed[at] and at not in (arm_t, arm_f):
                            forced[arm_t] = arm_f
                            options = (options[1],)
            i = forced.pop(i, -1)
            if i >= 0 and placed[i]:
                i = -1
            for option in options if i < 0 else ():
                j = index.get(self.resolve(option), -1) if option < end else -1
                if j >= 0 and not placed[j]:
                    i = j
                    break
            if i < 0:
                while scan < count and placed[scan]:
                    scan += 1
                if scan == count:
                    return order
                i = scan

    def call(self, pc: int, insn: Insn) -> None:
        if insn.opcode & isa.X:
            self.callx(pc, insn)
        elif insn.src == isa.CALL_HELPER:
            self.call_native(pc, self.b.helper(insn.imm))
        elif insn.src == isa.PSEUDO_KFUNC_CALL:
            self.call_native(pc, self.b.kfunc(insn.imm))
        elif insn.src == isa.PSEUDO_CALL:
            self.room_check(ERR_DEPTH, pc)
            self.call_local(pc + insn.imm + 1)
            self.check_error()
        else:
            raise JitError(f"call with unknown src {insn.src}", pc)

    def room_check(self, code: int, pc: int) -> None:
        """Fail with ``code`` when no frame is left below the stack pointer."""
        a = self.a
        a.load(R11, CTX, _SP, 8)
        a.alu_ri(ALU_SUB, R11, self.b.frame_size, True)
        a.alu_rm(ALU_CMP, R11, CTX, _LO)
        a.jcc(_JB, self.fail_to(code, pc))

    def call_local(self, target: int) -> None:
        a = self.a
        self.save_args()
        a.mov_rr(R9, CTX)
        a.call_label(("fn", target))
        self.restore_args()

    def call_native(self, pc: int, target: CallTarget) -> None:
        """A helper or kfunc: native C (at its address), Python trampoline or missing."""
        a = self.a
        if target.kind == "missing":
            self.fail(ERR_NO_HELPER, pc)
            return
        self.save_args()
        if target.kind == "python":
            a.store_imm(CTX, _ERR_PC, pc, 8)
            self.load_slot(R11, target.key, pc)
        else:
            a.mov_ri(R11, self.natives[target.symbol] if target.symbol else target.address)
        a.call_r(R11)
        self.restore_args()
        self.check_error()
        if target.unwind:
            self._n += 1
            go = ("go", self._n)
            a.test_rr(RAX, RAX, True)
            a.jcc(_JNE, go)
            a.store_imm(CTX, _ERR, ERR_UNWIND, 8)
            a.jmp(self.err)
            a.label(go)

    def callx(self, pc: int, insn: Insn) -> None:
        """``callx rX``: a subprogram's thunk address (compared with each) or a helper id
        (looked up in the instance's callx table; 0 there: no such helper)."""
        a = self.a
        self._n += 1
        n = self._n
        done, bad = ("cx_done", n), ("cx_bad", n)
        a.mov_rr(R11, REG[insn.dst])
        for k, start in enumerate(self.starts):
            miss = ("cx_miss", n, k)
            self.load_slot(R10, ("thunk", k), pc)
            a.alu_rr(ALU_CMP, R11, R10, True)
            a.jcc(_JNE, miss)
            self.room_check(ERR_DEPTH, pc)
            self.call_local(start)
            a.jmp(done)
            a.label(miss)
        self.load_slot(R10, ("callx_length",), pc)
        a.alu_rr(ALU_CMP, R11, R10, True)
        a.jcc(CC["ae"], bad)
        self.load_slot(R10, ("callx_table",), pc)
        a.shift_ri(SHL, R11, 3, True)
        a.alu_rr(ALU_ADD, R10, R11, True)
        a.shift_ri(SHR, R11, 3, True)
        a.load(R10, R10, 0, 8)
        a.test_rr(R10, R10, True)
        a.jcc(_JE, bad)
        a.store_imm(CTX, _ERR_PC, pc, 8)
        self.save_args()
        a.call_r(R10)
        self.restore_args()
        a.jmp(done)
        a.label(bad)
        a.store(CTX, _ERR_ADDR, R11, 8)
        self.fail(ERR_CALLX, pc)
        a.label(done)
        self.check_error()

    # -- memory ------------------------------------------------------------------------------

    def atomic(self, pc: int, insn: Insn) -> None:
        a = self.a
        w = insn.size == isa.DW
        size = 8 if w else 4
        base, off, s = REG[insn.dst], insn.off, REG[insn.src]
        code = insn.imm
        self.check_access(base, off, size, False, pc)   # read first, as the interpreter reports
        self.check_access(base, off, size, True, pc)
        if code == isa.CMPXCHG:
            a.lock_cmpxchg(base, off, s, w)
            if not w:
                a.mov_rr(RAX, RAX, False)               # r0 = zero-extended old value
        elif code == isa.XCHG:
            a.xchg(base, off, s, w)
        elif code == isa.ATOMIC_ADD | isa.FETCH:
            a.lock_xadd(base, off, s, w)
        elif not code & isa.FETCH:
            a.lock_alu(_ATOMIC_ALU[code], base, off, s, w)
        else:
            # fetch_or/and/xor: a cmpxchg loop (rax is r0: kept in r10; the address in r9
            # in case the base is r0; the operand read from r10 if it is r0).
            self._n += 1
            again = ("cas", self._n)
            a.mov_rr(R10, RAX)
            a.lea(R9, base, off)
            operand = R10 if s == RAX else s
            a.load(RAX, R9, 0, size)
            a.label(again)
            a.mov_rr(R11, RAX)
            a.alu_rr(_ATOMIC_ALU[code & ~isa.FETCH], R11, operand, w)
            a.lock_cmpxchg(R9, 0, R11, w)
            a.jcc(_JNE, again)
            a.mov_rr(R11, RAX, w)
            a.mov_rr(RAX, R10)
            a.mov_rr(s, R11)

    def ld_packet(self, pc: int, insn: Insn) -> None:
        """LD_ABS / LD_IND: r0 = the big-endian value at r6 + offset; outside [0, entry r2)
        the function returns with r0 = 0 (as the LLVM code and the interpreter)."""
        a = self.a
        size = isa.SIZE_BYTES[insn.size]
        self._n += 1
        out, inside = ("pkt_out", self._n), ("pkt_in", self._n)
        if insn.mode == isa.IND:
            a.mov_rr(R11, REG[insn.src], False)
            a.alu_ri(ALU_ADD, R11, insn.imm, False)
            a.movsx_rr(R11, R11, 32, True)
        else:
            a.mov_ri(R11, insn.imm)
        a.test_rr(R11, R11, True)
        a.jcc(_JS, out)
        a.lea(R10, R11, size)
        a.alu_rm(ALU_CMP, R10, RSP, 8)
        a.jcc(CC["be"], inside)
        a.label(out)
        a.alu_rr(ALU_XOR, RAX, RAX, False)
        self.epilogue()
        a.label(inside)
        a.alu_rr(ALU_ADD, R11, RBX, True)
        if self.checked:
            a.store(RSP, 16, R11, 8)           # the call of jitrt_check takes r9-r11
            self.check_r11(size, False, pc)
            a.load(R11, RSP, 16, 8)
        a.load(RAX, R11, 0, size)
        if size == 2:
            a.rol16_8(RAX)
        elif size == 4:
            a.bswap(RAX, False)

    def lddw(self, pc: int, insn: Insn) -> None:
        a = self.a
        d = REG[insn.dst]
        src = insn.src
        if src == 0:
            a.mov_ri(d, isa.lddw_imm64(self.insns, pc))
        elif src in (isa.PSEUDO_MAP_IDX, isa.PSEUDO_MAP_IDX_VALUE):
            key = ("map" if src == isa.PSEUDO_MAP_IDX else "map_value", insn.imm)
            # a map value's offset is the second half's imm; folded into the constant
            # (one movabs, not movabs + add); 64-bit wrap as the add did
            addend = self.insns[pc + 1].imm if src == isa.PSEUDO_MAP_IDX_VALUE else 0
            pin = self.pins.get(key)
            if pin is None:
                self.load_slot(d, key, pc, addend)
            elif addend:
                self.a.lea(d, pin, addend)       # lea wraps at 64 bits like the add
            else:
                self.a.mov_rr(d, pin)
        elif src == isa.PSEUDO_FUNC:
            k = self.starts.index(pc + insn.imm + 1)
            self.load_slot(d, ("thunk", k), pc)
        else:
            kind = {isa.PSEUDO_MAP_FD: "map fd", isa.PSEUDO_MAP_VALUE: "map value",
                    isa.PSEUDO_BTF_ID: "BTF id"}.get(src, f"src {src}")
            raise JitError(f"unrelocated lddw {kind} form (load the object to relocate it)", pc)
