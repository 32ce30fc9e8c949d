"""eBPF instructions to LLVM IR text (the code generator behind :mod:`uringbpf.bpf.jit`).

Why text and not ``llvmlite.ir``: building IR objects in Python costs several times more
than formatting strings, and the compile-time budget (50 ms for 1,000 instructions,
optimisation and machine code included) is dominated by what we do in Python.

Shape of the generated code
---------------------------
* Every BPF function (the entry and each ``PSEUDO_CALL`` / ``PSEUDO_FUNC`` target) becomes an
  LLVM function ``i64 (i64 r1, ..., i64 r5, i64 env)``. ``env`` is the address of the
  instance's context (``struct jitrt_ctx``); each instance gets tiny thunks
  ``i64 (i64 r1..r5)`` that load ``env`` into the sixth argument register and jump, so a
  native driver or a helper taking a callback calls the C signature of a helper. The machine
  code itself is instance-independent and can be cached by program hash.
* Instance values (map addresses, Python-helper callbacks, thunk addresses, the callx table)
  are read from the context's ``vars`` table with ``!invariant.load`` so LLVM hoists them;
  native helpers are called at their (process-wide) address directly.
* Registers are ``alloca i64`` slots that the optimiser promotes to SSA values; r6-r9 are
  callee-saved for free because each function has its own slots.
* Accesses through any register but r10 are ``volatile`` (one BPF access = one machine
  access, in order: ring memory is shared with the kernel); r10-based ones optimise freely.
* Frames: each function takes 512 bytes below the context's stack pointer on entry and gives
  them back on return. The stack lives in one buffer per program that is also a region of
  ``runtime.mem``, so helpers implemented in Python can read keys and strings on it.
  Running out of frames (calls nested too deep, recursion) sets ``JITRT_ERR_DEPTH`` at the
  call or callx (``JITRT_ERR_DEPTH_CALLBACK`` when entered through a thunk: tested by
  ``jitrt_gate``, so functions have no entry tests of their own).
* The ISA's corner cases are spelled out so LLVM never sees undefined behaviour: divisors
  are made safe before ``udiv``/``sdiv`` (div by 0 -> 0, mod by 0 -> dividend,
  ``INT_MIN / -1`` -> ``INT_MIN``, ``INT_MIN % -1`` -> 0), shift counts are masked, ALU32
  results are zero-extended.
* Errors (a Python helper raised, checked access failed, callx to nowhere) set the context's
  error word and return 0 from every active BPF function; the caller raises in Python. A
  function entered through its thunk while the word is set returns 0 at once (the gate).
* Checked mode: ``jitrt_check`` before every access, and backward jumps spend the run's
  instruction budget (reset when the outermost frame is entered).
* Every address we call is a 64-bit constant or a loaded value, so the machine code has no
  relocations to resolve and no code-model limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from . import isa
from .isa import Insn
from .maps import ARENA_BASE_OFFSET, MAP_TYPE_ARENA
from ..errors import JitError

# Offsets (in u64 words) of struct jitrt_ctx fields; see native/jitrt.h.
CTX_ERROR, CTX_ERR_PC, CTX_ERR_ADDR, CTX_ERR_SIZE, CTX_ERR_WRITE, CTX_SP, CTX_STACK_LO, \
    CTX_STACK_HI = range(8)
CTX_VARS = 11
CTX_BUDGET = 12
CTX_LIMIT = 13

#: Checked mode bounds each run (from the outermost entry) like the interpreter's max_insns.
DEFAULT_INSN_LIMIT = 1 << 26

ERR_MEMORY = 1
ERR_HELPER = 2
ERR_DEPTH = 3
ERR_CALLX = 4
ERR_NO_HELPER = 5
ERR_FELL_OFF = 6
ERR_UNWIND = 7       # not an error: bpf_conformance's "unwind" helper stopped the program
ERR_DEPTH_CALLBACK = 8   # a function entered through its thunk found no free frame
ERR_LEGACY = 9       # LD ABS/IND reached (refused at run time, as the interpreter does)
ERR_LIMIT = 10       # checked mode: the instruction budget of the run is spent

_ICMP = {
    isa.JEQ: "eq", isa.JNE: "ne", isa.JGT: "ugt", isa.JGE: "uge", isa.JLT: "ult",
    isa.JLE: "ule", isa.JSGT: "sgt", isa.JSGE: "sge", isa.JSLT: "slt", isa.JSLE: "sle",
}
_SIMPLE_ALU = {isa.ADD: "add", isa.SUB: "sub", isa.MUL: "mul", isa.OR: "or", isa.AND: "and",
               isa.XOR: "xor"}
_SHIFTS = {isa.LSH: "shl", isa.RSH: "lshr", isa.ARSH: "ashr"}
_ATOMIC_RMW = {isa.ATOMIC_ADD: "add", isa.ATOMIC_OR: "or", isa.ATOMIC_AND: "and",
               isa.ATOMIC_XOR: "xor"}
_ITYPE = {1: "i8", 2: "i16", 4: "i32", 8: "i64"}




@dataclass(frozen=True)
class CallTarget:
    """What a helper/kfunc call compiles to.

    ``kind`` is "native" (call ``address`` directly: a C function, the same in every
    instance), "python" (a ctypes callback, per instance: its address comes from the vars
    slot ``key``; the call site records its pc first so a raised exception names it) or
    "missing" (sets ``ERR_NO_HELPER`` at run time, as the interpreter raises only when the
    call is reached). ``unwind``: a 0 return stops the whole program with r0 = 0.
    """

    kind: str
    address: int = 0
    key: tuple = ()
    unwind: bool = False
    symbol: str = ""     # native: the IR name the call uses (bound to ``address`` at load)


@dataclass
class Bindings:
    """How calls resolve; everything else instance-specific goes through vars slots."""

    helper: Callable[[int], CallTarget]           # helper id -> target
    kfunc: Callable[[int], CallTarget]            # index into program.kfuncs -> target
    check_addr: int = 0                           # jitrt_check, for checked mode
    check_symbol: str = ""                        # its IR name (bound at load), if any
    checked: bool = False
    frame_size: int = isa.STACK_SIZE
    symbol_prefix: str = "ubpf"


def _volatile(base_reg: int) -> str:
    """Accesses through anything but r10 are volatile: one BPF load/store is one machine
    access, in program order, as with the kernel's JIT. Programs poll ring memory that the
    kernel writes (CQ tail) and publish SQEs before moving the SQ tail; LLVM must not hoist,
    merge or reorder those. Stack accesses (r10-based) stay plain so they optimise freely."""
    return "" if base_reg == isa.R10 else " volatile"


def _s64(value: int) -> int:
    return isa.to_s64(value)


def _ptr(addr: int) -> str:
    return f"inttoptr (i64 {_s64(addr)} to ptr)"


def validate(insns: list[Insn], xlated: bool = False) -> list[bool]:
    """Refuse what the interpreter refuses up front, with its messages; return placeholders."""
    n = len(insns)
    if n == 0:
        raise JitError("empty program")
    placeholder = [False] * n
    for pc, insn in enumerate(insns):
        if placeholder[pc]:
            continue
        if insn.is_lddw:
            if pc + 1 >= n:
                raise JitError("lddw is missing its second slot", pc)
            placeholder[pc + 1] = True
        reason = isa.invalid_reason(insn, xlated)
        if reason is not None:
            raise JitError(reason, pc)
    for pc, insn in enumerate(insns):
        if placeholder[pc]:
            continue
        target = None
        if insn.is_jump:
            target, what = pc + 1 + insn.jump_offset(), "jump"
        elif insn.opcode == isa.OP_CALL and insn.src == isa.PSEUDO_CALL:
            target, what = pc + 1 + insn.imm, "call"
        elif insn.is_lddw and insn.src == isa.PSEUDO_FUNC:
            target, what = pc + 1 + insn.imm, "function address"
        if target is not None:
            if not 0 <= target < n:
                raise JitError(f"{what} out of bounds (target {target})", pc)
            if placeholder[target]:
                raise JitError(f"{what} into the middle of lddw (target {target})", pc)
    return placeholder


def split_functions(insns: list[Insn]) -> list[int]:
    """Start indexes of the BPF functions: 0 plus every local call / PSEUDO_FUNC target."""
    starts = {0}
    skip = False
    for pc, insn in enumerate(insns):
        if skip:
            skip = False
            continue
        if insn.is_lddw:
            skip = True
            if insn.src == isa.PSEUDO_FUNC:
                starts.add(pc + insn.imm + 1)
        elif insn.is_call and insn.src == isa.PSEUDO_CALL:
            starts.add(pc + insn.imm + 1)
    return sorted(starts)


@dataclass
class _Func:
    index: int
    start: int
    end: int
    name: str
    lines: list[str] = field(default_factory=list)


class ModuleGen:
    """Generates one LLVM module for one program."""

    def __init__(self, program: isa.Program, bindings: Bindings):
        self.program = program
        self.insns = program.insns
        self.b = bindings
        validate(self.insns, program.arena_xlated)
        self.starts = split_functions(self.insns)
        ends = self.starts[1:] + [len(self.insns)]
        self.funcs = [_Func(i, s, e, f"{bindings.symbol_prefix}_f{i}")
                      for i, (s, e) in enumerate(zip(self.starts, ends))]
        self.func_at = {f.start: f for f in self.funcs}
        self._tmp = 0
        self._intrinsics: set[str] = set()
        #: vars table layout: slot i holds the value for key slots[i] (see jit.py).
        self.slots: list[tuple] = []
        self.slot_pcs: list[int] = []         # first instruction using each slot
        self._slot_index: dict[tuple, int] = {}

    # -- small emitters -------------------------------------------------------------------

    def tmp(self) -> str:
        """A fresh SSA value name."""
        self._tmp += 1
        return f"%t{self._tmp}"

    def emit(self, line: str) -> None:
        """Append one instruction line to the current function."""
        self.out.append("  " + line)

    def label(self, name: str) -> None:
        """Start basic block ``name`` (no fall-through is implied)."""
        self.out.append(f"{name}:")
        self.truncs.clear()

    # Registers live in alloca slots, but within one BPF basic block their current SSA
    # values are remembered here: reads after the first are free and writes are stored back
    # only when control leaves the block (``flush``). That keeps the IR (and the work of
    # parsing it and of SROA) to a fraction of a load/store per register access.

    def reg(self, r: int) -> str:
        """The current SSA value of BPF register ``r`` (loaded from its slot once per block)."""
        value = self.cache.get(r)
        if value is not None:
            return value
        if not 0 <= r <= 10:
            raise JitError(f"register r{r} does not exist", self.pc)
        t = self.tmp()
        self.emit(f"{t} = load i64, ptr %r{r}")
        self.cache[r] = t
        return t

    def set_reg(self, r: int, value: str) -> None:
        """Make ``value`` the register's current value (stored at the block's end)."""
        if not 0 <= r <= 10:
            raise JitError(f"register r{r} does not exist", self.pc)
        self.cache[r] = value
        self.dirty.add(r)

    def flush(self) -> None:
        """Store the registers written in this block (before any branch to another block)."""
        for r in sorted(self.dirty):
            self.emit(f"store i64 {self.cache[r]}, ptr %r{r}")
        self.dirty.clear()

    def new_block(self, name: str) -> None:
        """Start a block that other blocks may branch to: forget cached values."""
        self.label(name)
        self.cache.clear()
        self.dirty.clear()
        self.truncs.clear()

    def op(self, text: str) -> str:
        """Emit ``%t = text`` and return ``%t``."""
        t = self.tmp()
        self.emit(f"{t} = {text}")
        return t

    # ALU32 code is mostly ``trunc`` / op / ``zext`` chains. Each 64-bit value made by
    # zero-extending an i32 remembers that i32 (``narrow``: the i32 is defined just before
    # it, so it dominates every use of it), and a truncation already done in this block is
    # reused (``truncs``, forgotten at every label: it need not dominate the next block).
    # Fewer IR lines to format, parse and select (issue #19); the machine code is the same.

    def trunc32(self, v: str) -> str:
        """The low 32 bits of a 64-bit value."""
        low = self.narrow.get(v) or self.truncs.get(v)
        if low is not None:
            return low
        if v.lstrip("-").isdigit():
            return str(isa.to_s32(int(v) & 0xFFFFFFFF))
        low = self.truncs[v] = self.op(f"trunc i64 {v} to i32")
        return low

    def zext64(self, v: str, ty: str = "i32") -> str:
        """Zero-extend a narrower value to 64 bits."""
        wide = self.op(f"zext {ty} {v} to i64")
        if ty == "i32":
            self.narrow[wide] = v
        return wide

    def slot(self, key: tuple) -> str:
        """Load the instance value of ``key`` from the vars table (invariant during a run)."""
        index = self._slot_index.get(key)
        if index is None:
            index = self._slot_index[key] = len(self.slots)
            self.slots.append(key)
            self.slot_pcs.append(self.pc)
        # Loaded once per function, in the entry block (so it dominates every use).
        self._func_slots.add(index)
        return f"%slot{index}"

    def set_error(self, code: int, pc: int) -> None:
        """Set the error word and its pc unless an earlier error is already recorded."""
        old = self.op("load i64, ptr %p_err")
        keep = self.op(f"icmp ne i64 {old}, 0")
        new = self.op(f"select i1 {keep}, i64 {old}, i64 {code}")
        self.emit(f"store i64 {new}, ptr %p_err")
        pc_old = self.op("load i64, ptr %p_errpc")
        pc_new = self.op(f"select i1 {keep}, i64 {pc_old}, i64 {pc}")
        self.emit(f"store i64 {pc_new}, ptr %p_errpc")

    def fail(self, code: int, pc: int) -> None:
        """Set the error word (first error wins) and leave the function."""
        self.set_error(code, pc)
        self.emit("br label %err")

    def check_error(self, pc: int) -> None:
        """After a call that can fail: leave the function if the error word is set."""
        e = self.op("load i64, ptr %p_err")
        bad = self.op(f"icmp ne i64 {e}, 0")
        cont = f"L{pc}_ok{self._tmp}"
        self.emit(f"br i1 {bad}, label %err, label %{cont}")
        self.label(cont)

    def intrinsic(self, decl: str) -> None:
        """Declare an external function or intrinsic once per module."""
        self._intrinsics.add(decl)

    # -- module ---------------------------------------------------------------------------

    def generate(self) -> str:
        """The whole module's IR text: one LLVM function per BPF function."""
        parts = []
        for func in self.funcs:
            parts.append(self.gen_function(func))
        header = [f"; program {self.program.name!r}"]
        header.extend(sorted(self._intrinsics))
        return ("\n".join(header) + "\n\n" + "\n\n".join(parts) + "\n\n!0 = !{}\n")

    def gen_function(self, func: _Func) -> str:
        """IR of one BPF function (prologue, frame check, body, exits)."""
        self.out = out = []
        self.cache: dict[int, str] = {}
        self.dirty: set[int] = set()
        self.narrow: dict[str, str] = {}     # zext'ed i64 value -> its i32 source
        self.truncs: dict[str, str] = {}     # i64 value -> its trunc in this block
        self.pc = func.start
        b = self.b
        leaders = self.find_leaders(func)
        out.append(f"define i64 @{func.name}(i64 %a1, i64 %a2, i64 %a3, i64 %a4, i64 %a5, "
                   f"i64 %env) nounwind {{")
        self.label("entry")
        for r in range(11):
            self.emit(f"%r{r} = alloca i64, align 8")
        has_may_goto = any(self.insns[pc].is_may_goto for pc in range(func.start, func.end))
        if has_may_goto:
            self.emit("%mg = alloca i64, align 8")    # the frame's hidden may_goto counter
        for r in (0, 6, 7, 8, 9):
            self.emit(f"store i64 0, ptr %r{r}")
        for r in range(1, 6):
            self.emit(f"store i64 %a{r}, ptr %r{r}")
        self.emit("%p_err = inttoptr i64 %env to ptr")
        self.emit(f"%p_errpc = getelementptr i64, ptr %p_err, i64 {CTX_ERR_PC}")
        self.emit(f"%p_erraddr = getelementptr i64, ptr %p_err, i64 {CTX_ERR_ADDR}")
        self.emit(f"%p_sp = getelementptr i64, ptr %p_err, i64 {CTX_SP}")
        self.emit(f"%p_lo = getelementptr i64, ptr %p_err, i64 {CTX_STACK_LO}")
        self.emit(f"%p_vars = getelementptr i64, ptr %p_err, i64 {CTX_VARS}")
        self.emit("%vars = load ptr, ptr %p_vars, !invariant.load !0")
        self._func_slots: set[int] = set()
        slot_marker = len(out)
        # No entry tests here (issue #19: they were 3 of the 5 blocks of a small function,
        # ~100 µs of machine-code generation each). A function is entered either through
        # its thunk, where jitrt_gate refuses a run already abandoned (a callback invoked
        # again by a helper after an error) and an entry with no room for a frame
        # (JITRT_ERR_DEPTH_CALLBACK), or by a direct call, which tests the room at the call
        # site and is never reached with the error word set (every failing operation
        # leaves the function at once).
        self.emit("%fp = load i64, ptr %p_sp")
        self.emit("%lo = load i64, ptr %p_lo")
        self.emit(f"%frame = sub i64 %fp, {b.frame_size}")
        self.emit("store i64 %frame, ptr %p_sp")
        self.emit("store i64 %fp, ptr %r10")
        if b.checked:
            # Checked mode counts instructions on backward jumps; the outermost entry of a
            # run (no live frame yet) starts a fresh budget. Every other entry (a local
            # call, callx, a callback) spends the function's length, as the direct tier
            # does: a tree of calls (f0 calls f1 k times, f1 calls f2 k times, ...) has
            # no backward jump and would otherwise run k**depth functions unbounded.
            self.emit(f"%p_budget = getelementptr i64, ptr %p_err, i64 {CTX_BUDGET}")
            self.emit(f"%p_limit = getelementptr i64, ptr %p_err, i64 {CTX_LIMIT}")
            self.emit(f"%p_hi = getelementptr i64, ptr %p_err, i64 {CTX_STACK_HI}")
            self.emit("%hi = load i64, ptr %p_hi")
            self.emit("%outer = icmp eq i64 %fp, %hi")
            self.emit("br i1 %outer, label %new_budget, label %nested")
            self.label("new_budget")
            self.emit("%limit = load i64, ptr %p_limit")
            self.emit("store i64 %limit, ptr %p_budget")
            self.emit("br label %body")
            self.label("nested")
            self.spend(func.start, func.end - func.start, "_entry")
            self.emit("br label %body")
            self.label("body")
        if has_may_goto:
            # set on every entry, as the kernel's prologue store of BPF_MAX_LOOPS; the start
            # value is a vars slot (``may_goto_loops``), so the code does not depend on it
            self.emit(f"store i64 {self.slot(('may_goto_loops',))}, ptr %mg")
        self.emit(f"br label %L{func.start}")

        pc = func.start
        self._fell_off = False
        terminated = True  # the prologue ended with its own branch
        while pc < func.end:
            insn = self.insns[pc]
            if pc in leaders:
                if not terminated:
                    self.flush()
                    self.emit(f"br label %L{pc}")
                self.new_block(f"L{pc}")
            elif terminated:
                # Dead code after an unconditional transfer: still needs a block to live in.
                self.new_block(f"L{pc}")
            self.pc = pc
            terminated = self.gen_insn(func, pc, insn)
            pc += 2 if insn.is_lddw else 1
        if not terminated:
            self.fail(ERR_FELL_OFF, func.end - 1)
        if self._fell_off:
            # a conditional jump or may_goto as the function's last instruction: its
            # fall-through leaves the function (the next one's first instruction has no
            # block here), the same error as running off its end
            self.new_block("fell_off")
            self.fail(ERR_FELL_OFF, func.end - 1)

        self.label("exit")
        self.emit("%ret = load i64, ptr %r0")
        self.emit("store i64 %fp, ptr %p_sp")
        self.emit("ret i64 %ret")
        self.label("err")
        self.emit("store i64 %fp, ptr %p_sp")
        self.emit("ret i64 0")
        out.append("}")
        out[slot_marker:slot_marker] = [
            f"  %slot{i}.p = getelementptr i64, ptr %vars, i64 {i}\n"
            f"  %slot{i} = load i64, ptr %slot{i}.p, !invariant.load !0"
            for i in sorted(self._func_slots)]
        return "\n".join(out)

    def find_leaders(self, func: _Func) -> set[int]:
        """Instructions that start a basic block in ``func``."""
        leaders = {func.start}
        pc = func.start
        while pc < func.end:
            insn = self.insns[pc]
            step = 2 if insn.is_lddw else 1
            if insn.cls in (isa.JMP, isa.JMP32) and insn.op not in (isa.CALL,):
                if insn.op != isa.EXIT:
                    target = pc + insn.jump_offset() + 1
                    if not func.start <= target < func.end:
                        raise JitError(f"jump to {target} leaves its function "
                                       f"[{func.start}, {func.end})", pc)
                    leaders.add(target)
                if pc + step < func.end:
                    leaders.add(pc + step)
            pc += step
        return leaders

    # -- instructions ---------------------------------------------------------------------

    def gen_insn(self, func: _Func, pc: int, insn: Insn) -> bool:
        """Emit one instruction; return True when it ends its block unconditionally."""
        cls = insn.cls
        if cls in (isa.ALU, isa.ALU64):
            self.gen_alu(pc, insn)
            return False
        if cls in (isa.JMP, isa.JMP32):
            return self.gen_jmp(func, pc, insn)
        if cls == isa.LDX:
            self.gen_ldx(pc, insn)
            return False
        if cls == isa.ST:
            if insn.mode not in (isa.MEM, isa.PROBE_MEM32):
                raise JitError(f"unsupported st mode {insn.mode:#x}", pc)
            self.gen_store(pc, insn.dst, insn.off, insn.size, str(insn.imm), imm=True,
                           arena=insn.mode == isa.PROBE_MEM32)
            return False
        if cls == isa.STX:
            if insn.mode in (isa.MEM, isa.PROBE_MEM32):
                self.gen_store(pc, insn.dst, insn.off, insn.size, None, imm=False,
                               src=insn.src, arena=insn.mode == isa.PROBE_MEM32)
            elif insn.mode in (isa.ATOMIC, isa.PROBE_ATOMIC) and insn.imm in isa.ATOMIC_LOAD_STORE:
                self.gen_load_acquire_store_release(pc, insn)
            elif insn.mode in (isa.ATOMIC, isa.PROBE_ATOMIC):
                self.gen_atomic(pc, insn)
            else:
                raise JitError(f"unsupported stx mode {insn.mode:#x}", pc)
            return False
        if cls == isa.LD:
            if insn.is_lddw:
                self.gen_lddw(pc, insn)
                return False
            if insn.mode in (isa.ABS, isa.IND) and insn.size != isa.DW:
                self.gen_ld_packet(pc, insn)
                return False
            # Other legacy loads: refused when reached, as the interpreter does.
            self.fail(ERR_LEGACY, pc)
            self.new_block(f"L{pc}_dead{self._tmp}")
            return False
        raise JitError(f"unknown opcode {insn.opcode:#04x}", pc)

    # ALU --------------------------------------------------------------------------------

    def gen_alu(self, pc: int, insn: Insn) -> None:
        """One ALU/ALU64 instruction (RFC 9669 semantics, no undefined behaviour)."""
        if self.program.arena_xlated and isa.is_arena_zext(insn):
            # 64-bit ALU on an arena pointer: the result keeps its low 32 bits (needs_zext)
            self.gen_alu(pc, isa.plain_access(insn))
            self.set_reg(insn.dst, self.zext64(self.trunc32(self.reg(insn.dst))))
            return
        is64 = insn.cls == isa.ALU64
        op = insn.op
        ty = "i64" if is64 else "i32"
        bits = 64 if is64 else 32

        if op == isa.END:
            self.gen_end(pc, insn, is64)
            return
        if op == isa.NEG:
            d = self.operand_dst(insn.dst, is64)
            self.store_result(insn.dst, self.op(f"sub {ty} 0, {d}"), is64)
            return

        if op == isa.MOV:
            if is64 and insn.source == isa.X and insn.off == isa.ADDR_SPACE_CAST:
                self.gen_addr_space_cast(pc, insn)
                return
            if insn.source == isa.X and insn.off in (8, 16, 32):
                if insn.off == 32 and not is64:
                    raise JitError("movsx32 from 32 bits is not an instruction", pc)
                s = self.reg(insn.src)
                small = self.op(f"trunc i64 {s} to i{insn.off}")
                self.store_result(insn.dst, self.op(f"sext i{insn.off} {small} to {ty}"), is64)
                return
            if insn.off != 0:
                raise JitError(f"invalid movsx offset {insn.off}", pc)
            self.store_result(insn.dst, self.operand_src(insn, is64), is64)
            return

        if op in (isa.DIV, isa.MOD) and insn.off not in (0, 1):
            raise JitError(f"invalid offset {insn.off} for {isa.ALU_OP_NAMES[op]}", pc)

        if op in _SIMPLE_ALU:
            d = self.operand_dst(insn.dst, is64)
            s = self.operand_src(insn, is64)
            self.store_result(insn.dst, self.op(f"{_SIMPLE_ALU[op]} {ty} {d}, {s}"), is64)
        elif op in _SHIFTS:
            d = self.operand_dst(insn.dst, is64)
            if insn.source == isa.X:
                s = self.operand_src(insn, is64)
                count = self.op(f"and {ty} {s}, {bits - 1}")
            else:
                count = str(insn.imm & (bits - 1))
            self.store_result(insn.dst, self.op(f"{_SHIFTS[op]} {ty} {d}, {count}"), is64)
        elif op in (isa.DIV, isa.MOD):
            d = self.operand_dst(insn.dst, is64)
            s = self.operand_src(insn, is64)
            self.store_result(insn.dst, self.divmod(op, insn.off == 1, ty, bits, d, s), is64)
        else:
            raise JitError(f"unknown alu operation {op:#x}", pc)

    def divmod(self, op: int, signed: bool, ty: str, bits: int, d: str, s: str) -> str:
        """Division or modulo made safe for 0 and INT_MIN / -1, as RFC 9669 defines."""
        zero = self.op(f"icmp eq {ty} {s}, 0")
        if not signed:
            safe = self.op(f"select i1 {zero}, {ty} 1, {ty} {s}")
            if op == isa.DIV:
                q = self.op(f"udiv {ty} {d}, {safe}")
                return self.op(f"select i1 {zero}, {ty} 0, {ty} {q}")
            r = self.op(f"urem {ty} {d}, {safe}")
            return self.op(f"select i1 {zero}, {ty} {d}, {ty} {r}")
        minus1 = self.op(f"icmp eq {ty} {s}, -1")
        special = self.op(f"or i1 {zero}, {minus1}")
        safe = self.op(f"select i1 {special}, {ty} 1, {ty} {s}")
        if op == isa.DIV:
            q = self.op(f"sdiv {ty} {d}, {safe}")
            neg = self.op(f"sub {ty} 0, {d}")            # x / -1 wraps like the kernel's
            q1 = self.op(f"select i1 {minus1}, {ty} {neg}, {ty} {q}")
            return self.op(f"select i1 {zero}, {ty} 0, {ty} {q1}")
        r = self.op(f"srem {ty} {d}, {safe}")
        r1 = self.op(f"select i1 {minus1}, {ty} 0, {ty} {r}")
        return self.op(f"select i1 {zero}, {ty} {d}, {ty} {r1}")

    def gen_end(self, pc: int, insn: Insn, is64: bool) -> None:
        """Byte swaps (``le``, ``be``, ``bswap``)."""
        width = insn.imm
        if width not in (16, 32, 64):
            raise JitError(f"byte swap of width {width}", pc)
        if insn.off:
            raise JitError("byte swap with offset", pc)
        if is64 and insn.source != 0:
            raise JitError("bswap with the source bit set", pc)
        swap = is64 or insn.source == isa.TO_BE
        v = self.reg(insn.dst)
        if width < 64:
            v = self.op(f"trunc i64 {v} to i{width}")
        if swap:
            self.intrinsic(f"declare i{width} @llvm.bswap.i{width}(i{width})")
            v = self.op(f"call i{width} @llvm.bswap.i{width}(i{width} {v})")
        if width < 64:
            v = self.op(f"zext i{width} {v} to i64")
        self.set_reg(insn.dst, v)

    def operand_dst(self, r: int, is64: bool) -> str:
        """The destination register's value at the instruction's width."""
        v = self.reg(r)
        return v if is64 else self.trunc32(v)

    def operand_src(self, insn: Insn, is64: bool) -> str:
        """The source operand (register or immediate) at the instruction's width."""
        if insn.source == isa.X:
            v = self.reg(insn.src)
            return v if is64 else self.trunc32(v)
        # K: sign-extended to 64 bits for ALU64, the 32-bit pattern for ALU32.
        return str(isa.to_s32(insn.imm))

    def store_result(self, r: int, value: str, is64: bool) -> None:
        """Write an ALU result back, zero-extending 32-bit results."""
        self.set_reg(r, value if is64 else self.zext64(value))

    # Jumps and calls ----------------------------------------------------------------------

    def gen_jmp(self, func: _Func, pc: int, insn: Insn) -> bool:
        """One JMP/JMP32 instruction; returns True when it ends the block."""
        op = insn.op
        if op == isa.EXIT:
            if insn.opcode != isa.OP_EXIT:
                raise JitError(f"unknown opcode {insn.opcode:#04x}", pc)
            self.flush()
            self.emit("br label %exit")
            return True
        if op == isa.CALL:
            if insn.cls != isa.JMP:
                raise JitError(f"unknown opcode {insn.opcode:#04x}", pc)
            self.gen_call(pc, insn)
            return False
        target = pc + insn.jump_offset() + 1
        if self.b.checked and target <= pc:
            self.spend(pc, pc - target + 1)
        if insn.is_may_goto:
            self.gen_may_goto(pc, target, self.fall_through(func, pc))
            return True
        if op == isa.JA:
            if insn.opcode not in (isa.OP_JA, isa.OP_JA32):
                raise JitError(f"unknown opcode {insn.opcode:#04x}", pc)
            self.flush()
            self.emit(f"br label %L{target}")
            return True
        if op not in _ICMP and op != isa.JSET:
            raise JitError(f"unknown jump operation {op:#x}", pc)
        is64 = insn.cls == isa.JMP
        ty = "i64" if is64 else "i32"
        d = self.operand_dst(insn.dst, is64)
        s = self.operand_src(insn, is64)
        if op == isa.JSET:
            m = self.op(f"and {ty} {d}, {s}")
            c = self.op(f"icmp ne {ty} {m}, 0")
        else:
            c = self.op(f"icmp {_ICMP[op]} {ty} {d}, {s}")
        self.flush()
        self.emit(f"br i1 {c}, label %L{target}, label %{self.fall_through(func, pc)}")
        return True

    def fall_through(self, func: _Func, pc: int) -> str:
        """The label of the instruction after the jump at ``pc``: past the function's end,
        a block that fails with ERR_FELL_OFF (emitted once, after the body)."""
        if pc + 1 < func.end:
            return f"L{pc + 1}"
        self._fell_off = True
        return "fell_off"

    def gen_may_goto(self, pc: int, target: int, step: str) -> None:
        """``may_goto``: jump once the frame's counter is spent, else count one down and fall
        through (the kernel's rewrite in do_misc_fixups: ``if cnt == 0 goto target;
        cnt -= 1``, the count in a stack slot below the frame; here a slot of its own)."""
        self.flush()
        left = self.op("load i64, ptr %mg")
        spent = self.op(f"icmp eq i64 {left}, 0")
        go = f"L{pc}_mg"
        self.emit(f"br i1 {spent}, label %L{target}, label %{go}")
        self.label(go)
        less = self.op(f"sub i64 {left}, 1")
        self.emit(f"store i64 {less}, ptr %mg")
        self.emit(f"br label %{step}")

    def spend(self, pc: int, count: int, tag: str = "") -> None:
        """Checked mode: take ``count`` instructions (a loop body, or a function on entry)
        from the run's budget; ``tag`` keeps the labels apart when one pc spends twice."""
        left = self.op("load i64, ptr %p_budget")
        now = self.op(f"sub i64 {left}, {count}")
        self.emit(f"store i64 {now}, ptr %p_budget")
        out = self.op(f"icmp slt i64 {now}, 0")
        ok, spent = f"L{pc}_budget{tag}", f"L{pc}_spent{tag}"
        self.emit(f"br i1 {out}, label %{spent}, label %{ok}")
        self.label(spent)
        self.fail(ERR_LIMIT, pc)
        self.label(ok)

    def call_args(self) -> str:
        """r1..r5 and the context, as the arguments of a BPF-to-BPF call."""
        return ", ".join(f"i64 {self.reg(r)}" for r in range(1, 6)) + ", i64 %env"

    def call_native(self, pc: int, target: CallTarget) -> None:
        """A helper or kfunc call: native (by name or address), Python callback or missing."""
        if target.kind == "missing":
            self.fail(ERR_NO_HELPER, pc)
            self.new_block(f"L{pc}_dead{self._tmp}")
            return
        args = ", ".join(f"i64 {self.reg(r)}" for r in range(1, 6))
        if target.kind == "python":
            self.emit(f"store i64 {pc}, ptr %p_errpc")
            fn = self.op(f"inttoptr i64 {self.slot(target.key)} to ptr")
        elif target.symbol:
            # By name, bound to the C address when the object is loaded: the machine code
            # then depends on no address of this process (it can be cached on disk).
            self.intrinsic(f"declare i64 @{target.symbol}(i64, i64, i64, i64, i64)")
            fn = f"@{target.symbol}"
        else:
            fn = _ptr(target.address)
        r0 = self.op(f"call i64 {fn}({args})")
        self.set_reg(0, r0)
        # Every call can end in an error: a Python helper raised, or a callback it ran failed.
        self.check_error(pc)
        if target.unwind:
            stop = self.op(f"icmp eq i64 {r0}, 0")
            cont, halt = f"L{pc}_go", f"L{pc}_unwind"
            self.emit(f"br i1 {stop}, label %{halt}, label %{cont}")
            self.label(halt)
            self.emit(f"store i64 {ERR_UNWIND}, ptr %p_err")
            self.emit("br label %err")
            self.label(cont)

    def gen_call(self, pc: int, insn: Insn) -> None:
        """``call``: helper, kfunc, BPF-to-BPF call (with its frame check) or callx."""
        if insn.source == isa.X:
            self.gen_callx(pc, insn)
            return
        if insn.src == isa.CALL_HELPER:
            self.call_native(pc, self.b.helper(insn.imm))
        elif insn.src == isa.PSEUDO_KFUNC_CALL:
            self.call_native(pc, self.b.kfunc(insn.imm))
        elif insn.src == isa.PSEUDO_CALL:
            callee = self.func_at[pc + insn.imm + 1]
            # Checked here too, so the error names the call (the callee checks again).
            sp = self.op("load i64, ptr %p_sp")
            need = self.op(f"sub i64 {sp}, {self.b.frame_size}")
            deep = self.op(f"icmp ult i64 {need}, %lo")
            ok, bad = f"L{pc}_room", f"L{pc}_deep"
            self.emit(f"br i1 {deep}, label %{bad}, label %{ok}")
            self.label(bad)
            self.fail(ERR_DEPTH, pc)
            self.label(ok)
            args = self.call_args()
            r0 = self.op(f"call i64 @{callee.name}({args})")
            self.set_reg(0, r0)
            self.check_error(pc)
        else:
            raise JitError(f"call with unknown src {insn.src}", pc)

    def gen_callx(self, pc: int, insn: Insn) -> None:
        """``callx rX``: rX holds a subprogram address (from a PSEUDO_FUNC lddw) or a helper id."""
        target = self.reg(insn.dst)
        args = self.call_args()
        hargs = ", ".join(f"i64 {self.reg(r)}" for r in range(1, 6))
        thunks = [self.slot(("thunk", f.index)) for f in self.funcs]
        table = self.slot(("callx_table",))
        length = self.slot(("callx_length",))
        # The paths below merge again: registers go to their slots first, r0 is stored on
        # each path and reloaded after the merge.
        self.flush()
        done = f"L{pc}_cx_done"
        # A subprogram is called directly (not through its thunk): the room for its frame
        # is tested here, as for `call local` (the callee does not test it).
        sp = self.op("load i64, ptr %p_sp")
        need = self.op(f"sub i64 {sp}, {self.b.frame_size}")
        deep = self.op(f"icmp ult i64 {need}, %lo")
        too_deep = f"L{pc}_cx_deep"
        # Subprograms: compare with each function's thunk address.
        for f, thunk in zip(self.funcs, thunks):
            hit = self.op(f"icmp eq i64 {target}, {thunk}")
            yes, no = f"L{pc}_cx_f{f.index}", f"L{pc}_cx_n{f.index}"
            self.emit(f"br i1 {hit}, label %{yes}, label %{no}")
            self.label(yes)
            room = f"L{pc}_cx_room{f.index}"
            self.emit(f"br i1 {deep}, label %{too_deep}, label %{room}")
            self.label(room)
            r0 = self.op(f"call i64 @{f.name}({args})")
            self.emit(f"store i64 {r0}, ptr %r0")
            self.emit(f"br label %{done}")
            self.label(no)
        # Helper ids: an address table made by jit.py (0 = no such helper).
        inrange = self.op(f"icmp ult i64 {target}, {length}")
        look, bad = f"L{pc}_cx_look", f"L{pc}_cx_bad"
        self.emit(f"br i1 {inrange}, label %{look}, label %{bad}")
        self.label(look)
        tp = self.op(f"inttoptr i64 {table} to ptr")
        entry = self.op(f"getelementptr i64, ptr {tp}, i64 {target}")
        fn = self.op(f"load i64, ptr {entry}")
        known = self.op(f"icmp ne i64 {fn}, 0")
        call = f"L{pc}_cx_call"
        self.emit(f"br i1 {known}, label %{call}, label %{bad}")
        self.label(call)
        self.emit(f"store i64 {pc}, ptr %p_errpc")
        fptr = self.op(f"inttoptr i64 {fn} to ptr")
        r0 = self.op(f"call i64 {fptr}({hargs})")
        self.emit(f"store i64 {r0}, ptr %r0")
        self.emit(f"br label %{done}")
        self.label(bad)
        self.emit(f"store i64 {target}, ptr %p_erraddr")
        self.fail(ERR_CALLX, pc)
        self.label(too_deep)
        self.fail(ERR_DEPTH, pc)
        self.label(done)
        self.cache.pop(0, None)        # r0 differs per path: reload it from its slot
        self.check_error(pc)

    # Memory -----------------------------------------------------------------------------

    def arena_window(self, pc: int) -> str:
        """The program's arena window (4 GiB aligned), read from its map's ``arena_base``
        (instance data: the machine code stays shareable between instances)."""
        for i, m in enumerate(self.program.maps):
            if getattr(m, "type", None) == MAP_TYPE_ARENA:
                break
        else:
            raise JitError("arena access or addr_space_cast in a program without an arena map", pc)
        field = self.op(f"add i64 {self.slot(('map', i))}, {ARENA_BASE_OFFSET}")
        base = self.op(f"load i64, ptr {self.op(f'inttoptr i64 {field} to ptr')}, align 8")
        return self.op(f"and i64 {base}, -4294967296")

    def gen_addr_space_cast(self, pc: int, insn: Insn) -> None:
        """BPF_ADDR_SPACE_CAST as the kernel's JIT does it: imm 1 keeps the low 32 bits;
        imm 1 << 16 puts the window's upper half on them, 0 staying 0."""
        low = self.zext64(self.trunc32(self.reg(insn.src)))
        if insn.imm == 1:
            self.set_reg(insn.dst, low)
            return
        user = self.op(f"or i64 {low}, {self.arena_window(pc)}")
        zero = self.op(f"icmp eq i64 {low}, 0")
        self.set_reg(insn.dst, self.op(f"select i1 {zero}, i64 0, i64 {user}"))

    def address(self, base_reg: int, off: int, arena: bool = False) -> str:
        """``reg + off`` as an i64 value; for an arena access (PROBE_MEM32) the window +
        the register's low 32 bits + off, which never leaves the window's mapping."""
        if arena:
            low = self.zext64(self.trunc32(self.reg(base_reg)))
            where = self.op(f"add i64 {self.arena_window(self.pc)}, {low}")
            return self.op(f"add i64 {where}, {off}") if off else where
        base = self.reg(base_reg)
        if off == 0:
            return base
        return self.op(f"add i64 {base}, {off}")

    def checked_access(self, pc: int, addr: str, size: int, write: bool) -> None:
        """Checked mode: call jitrt_check before the access; fail the run if refused."""
        if not self.b.checked:
            return
        if self.b.check_symbol:
            self.intrinsic(f"declare i64 @{self.b.check_symbol}(i64, i64, i64, i64, i64)")
            check = f"@{self.b.check_symbol}"
        else:
            check = _ptr(self.b.check_addr)
        bad = self.op(f"call i64 {check}(i64 %env, "
                      f"i64 {addr}, i64 {size}, i64 {int(write)}, i64 {pc})")
        isbad = self.op(f"icmp ne i64 {bad}, 0")
        cont = f"L{pc}_acc{self._tmp}"
        self.emit(f"br i1 {isbad}, label %err, label %{cont}")
        self.label(cont)

    def gen_ldx(self, pc: int, insn: Insn) -> None:
        """A load (zero- or sign-extending)."""
        mode = insn.mode
        arena = isa.is_arena_access(insn)
        if arena:
            mode = isa.MEMSX if mode == isa.PROBE_MEM32SX else isa.MEM
        if mode not in (isa.MEM, isa.MEMSX):
            raise JitError(f"unsupported ldx mode {mode:#x}", pc)
        size = isa.SIZE_BYTES[insn.size]
        if mode == isa.MEMSX and size == 8:
            raise JitError("sign-extending load of 8 bytes is not an instruction", pc)
        ty = _ITYPE[size]
        addr = self.address(insn.src, insn.off, arena)
        self.checked_access(pc, addr, size, False)
        p = self.op(f"inttoptr i64 {addr} to ptr")
        v = self.op(f"load{_volatile(insn.src)} {ty}, ptr {p}, align 1")
        if size < 8:
            if mode == isa.MEMSX:
                v = self.op(f"sext {ty} {v} to i64")
            else:
                v = self.zext64(v, ty)
        self.set_reg(insn.dst, v)

    def gen_store(self, pc: int, dst: int, off: int, size_code: int, value: str | None,
                  imm: bool, src: int = 0, arena: bool = False) -> None:
        """A store of a register or an immediate (``arena``: PROBE_MEM32)."""
        size = isa.SIZE_BYTES[size_code]
        ty = _ITYPE[size]
        addr = self.address(dst, off, arena)
        if imm:
            # The immediate is sign-extended to 64 bits, then truncated to the store size.
            v = str(isa.sign_extend(int(value), size * 8)) if size < 8 else value
        else:
            v = self.reg(src)
            if size < 8:
                v = self.op(f"trunc i64 {v} to {ty}")
        self.checked_access(pc, addr, size, True)
        p = self.op(f"inttoptr i64 {addr} to ptr")
        self.emit(f"store{_volatile(dst)} {ty} {v}, ptr {p}, align 1")

    def gen_load_acquire_store_release(self, pc: int, insn: Insn) -> None:
        """Load-acquire / store-release (any size; PROBE_ATOMIC: through the arena).  The
        access is the plain load or store, with an acquire fence after the load and a
        release fence before the store: on x86-64 the fences emit no instruction (its
        ordinary loads and stores already have these semantics, as the kernel's JIT
        relies on) but keep LLVM from moving other accesses across.  Fences rather than
        ``load atomic``: an arena address may be unaligned, which an atomic access in
        LLVM IR may not be."""
        arena = insn.mode == isa.PROBE_ATOMIC
        mem = isa.PROBE_MEM32 if arena else isa.MEM
        if insn.imm == isa.LOAD_ACQ:
            self.gen_ldx(pc, Insn(isa.LDX | insn.size | mem, insn.dst, insn.src, insn.off))
            self.emit("fence acquire")
            return
        self.emit("fence release")
        self.gen_store(pc, insn.dst, insn.off, insn.size, None, imm=False, src=insn.src,
                       arena=arena)

    def gen_atomic(self, pc: int, insn: Insn) -> None:
        """An atomic read-modify-write, exchange or compare-exchange."""
        if insn.size not in (isa.W, isa.DW):
            raise JitError("atomic operations are 32 or 64 bits wide", pc)
        size = isa.SIZE_BYTES[insn.size]
        ty = _ITYPE[size]
        code = insn.imm
        if code not in isa.ATOMIC_OPS:
            raise JitError(f"unknown atomic operation {code:#x}", pc)
        # PROBE_ATOMIC (an arena pointer): window + low 32 bits + off, as loads and stores
        addr = self.address(insn.dst, insn.off, insn.mode == isa.PROBE_ATOMIC)
        self.checked_access(pc, addr, size, False)   # read first, as the interpreter reports
        self.checked_access(pc, addr, size, True)
        p = self.op(f"inttoptr i64 {addr} to ptr")
        src = self.reg(insn.src)
        if size == 4:
            src = self.trunc32(src)
        expected = ""
        if code == isa.CMPXCHG:
            expected = self.reg(0)
            if size == 4:
                expected = self.trunc32(expected)
        if insn.mode == isa.PROBE_ATOMIC:
            old = self.arena_atomic(pc, addr, p, ty, code, src, expected)
        else:
            old = self.atomic_op(p, ty, code, src, expected)
        if code == isa.CMPXCHG:
            self.set_reg(0, old if size == 8 else self.zext64(old))
        elif code & isa.FETCH:
            self.set_reg(insn.src, old if size == 8 else self.zext64(old))

    def atomic_op(self, p: str, ty: str, code: int, src: str, expected: str) -> str:
        """The locked operation ``code`` on ``ty`` at ``p``; returns the old value."""
        size = int(ty[1:]) // 8
        if code == isa.CMPXCHG:
            pair = self.op(f"cmpxchg ptr {p}, {ty} {expected}, {ty} {src} seq_cst seq_cst, "
                           f"align {size}")
            return self.op(f"extractvalue {{ {ty}, i1 }} {pair}, 0")
        rmw = "xchg" if code == isa.XCHG else _ATOMIC_RMW[code & ~isa.FETCH]
        return self.op(f"atomicrmw {rmw} ptr {p}, {ty} {src} seq_cst, align {size}")

    def arena_atomic(self, pc: int, addr: str, p: str, ty: str, code: int, src: str,
                     expected: str) -> str:
        """An arena atomic (PROBE_ATOMIC).  The verifier cannot know an arena address's
        alignment (nor does the kernel's), so the address may straddle a cache line: a
        locked instruction there is a split lock, which a host with split-lock detection
        answers with SIGBUS.  Such an access is done as a plain load, operation and store
        (the result the interpreter gives; only its atomicity against other threads is
        lost); every other one is the locked instruction."""
        size = int(ty[1:]) // 8
        n = self._tmp
        line = self.op(f"and i64 {addr}, 63")
        crosses = self.op(f"icmp ugt i64 {line}, {64 - size}")
        split, locked, join = f"L{pc}_split{n}", f"L{pc}_lock{n}", f"L{pc}_joined{n}"
        self.emit(f"br i1 {crosses}, label %{split}, label %{locked}")
        self.label(split)
        old_s = self.op(f"load {ty}, ptr {p}, align 1")
        if code == isa.CMPXCHG:
            same = self.op(f"icmp eq {ty} {old_s}, {expected}")
            new = self.op(f"select i1 {same}, {ty} {src}, {ty} {old_s}")
        elif code == isa.XCHG:
            new = src
        else:
            new = self.op(f"{_ATOMIC_RMW[code & ~isa.FETCH]} {ty} {old_s}, {src}")
        self.emit(f"store {ty} {new}, ptr {p}, align 1")
        self.emit(f"br label %{join}")
        self.label(locked)
        old_l = self.atomic_op(p, ty, code, src, expected)
        self.emit(f"br label %{join}")
        self.label(join)
        return self.op(f"phi {ty} [ {old_s}, %{split} ], [ {old_l}, %{locked} ]")

    def gen_ld_packet(self, pc: int, insn: Insn) -> None:
        """LD_ABS / LD_IND (socket filters): r0 = the big-endian value at r6 + offset (an
        ``int``: imm, plus src for IND); outside [0, entry r2) the function returns 0 (the
        kernel's bpf_gen_ld_abs emits ``r0 = 0; exit``: in a subprogram its caller goes on).
        ``%a2`` is the function's entry r2: the main function's is the data length."""
        size = isa.SIZE_BYTES[insn.size]
        ty = _ITYPE[size]
        if insn.mode == isa.IND:
            low = self.op(f"add i32 {self.trunc32(self.reg(insn.src))}, {isa.to_s32(insn.imm)}")
            off = self.op(f"sext i32 {low} to i64")
        else:
            off = str(isa.to_s32(insn.imm))
        end = self.op(f"add i64 {off}, {size}")
        neg = self.op(f"icmp slt i64 {off}, 0")
        past = self.op(f"icmp ugt i64 {end}, %a2")
        out = self.op(f"or i1 {neg}, {past}")
        n = self._tmp
        self.flush()
        self.emit(f"br i1 {out}, label %L{pc}_pkt_out{n}, label %L{pc}_pkt_in{n}")
        self.label(f"L{pc}_pkt_out{n}")
        self.emit("store i64 0, ptr %r0")
        self.emit("br label %exit")
        self.label(f"L{pc}_pkt_in{n}")
        addr = self.op(f"add i64 {self.reg(6)}, {off}")
        self.checked_access(pc, addr, size, False)
        ptr = self.op(f"inttoptr i64 {addr} to ptr")
        v = self.op(f"load {ty}, ptr {ptr}, align 1")
        if size > 1:
            self.intrinsic(f"declare {ty} @llvm.bswap.{ty}({ty})")
            v = self.op(f"call {ty} @llvm.bswap.{ty}({ty} {v})")
        self.set_reg(0, self.zext64(v, ty))

    def gen_lddw(self, pc: int, insn: Insn) -> None:
        """``lddw``: a 64-bit immediate, a map, a map value or a function address."""
        src = insn.src
        if pc + 1 >= len(self.insns):
            raise JitError("lddw is missing its second slot", pc)
        if src == 0:     # the kernel's fields, as the interpreter reads them (not imm64)
            value = str(_s64(isa.lddw_imm64(self.insns, pc)))
        elif src == isa.PSEUDO_MAP_IDX:
            value = self.slot(("map", insn.imm))
        elif src == isa.PSEUDO_MAP_IDX_VALUE:
            offset = self.insns[pc + 1].imm
            base = self.slot(("map_value", insn.imm))
            value = self.op(f"add i64 {base}, {offset}") if offset else base
        elif src == isa.PSEUDO_FUNC:
            callee = self.func_at[pc + insn.imm + 1]
            value = self.slot(("thunk", callee.index))
        else:
            kind = {isa.PSEUDO_MAP_FD: "map fd", isa.PSEUDO_MAP_VALUE: "map value",
                    isa.PSEUDO_BTF_ID: "BTF id"}.get(src, f"src {src}")
            raise JitError(f"unrelocated lddw {kind} form (load the object to relocate it)", pc)
        self.set_reg(insn.dst, value)
