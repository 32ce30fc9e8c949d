"""Reference interpreter for eBPF (RFC 9669 + cpu v4), with checked memory accesses.

Why it is built this way:

* **Pre-decoded basic blocks.**  At construction every basic block (split at jump
  targets, after jumps, calls and exits) is turned into the Python source of one small
  function and compiled once; a run is a loop ``pc = block[pc](regs)``.  Straight-line
  code then costs one Python statement per instruction instead of a decode + dispatch,
  which makes this several times faster than a ``match`` loop while staying plain
  Python (the JIT is the fast engine; this one is the reference).
* **Real addresses.**  Registers hold real pointers, as in the kernel: the stack is a
  native buffer per run, ``lddw`` map forms load ``Map.addr`` / ``Map.value_addr``,
  helpers receive the same pointers the JIT would pass.  Every load/store is checked
  against the run's stack and ``runtime.mem`` (an :class:`AddressSpace`); anything else
  raises :class:`BpfMemoryError` naming the instruction — never a segfault.
* **Defined corner cases** (RFC 9669): division by zero gives 0, modulo by zero keeps
  the dividend (zero-extended for 32-bit ops), shift counts are masked, 32-bit ALU
  results are zero-extended, ``sdiv INT_MIN, -1`` is INT_MIN and ``smod`` of it is 0.
* **Calls.**  Helpers by id (``runtime.platform.get_helper(id).impl(runtime, r1..r5)``, or a
  table passed in), kfuncs through ``program.kfuncs[imm]``, BPF-to-BPF calls with their
  own 512-byte frame (r6-r9 and r10 restored on exit), at most ``max_depth`` frames,
  ``callx`` to a helper id or to a subprogram address taken with ``lddw func()``.
* **may_goto.**  Each frame has a hidden loop counter (``r[11]`` of the register list,
  saved and set anew at every call, as the kernel's prologue sets the stack slot below the
  frame): ``may_goto`` jumps once it is 0, else counts it down and falls through.  It starts
  at ``may_goto_loops`` (the kernel's BPF_MAX_LOOPS, 8M).
  Such an address is a real native function pointer (a ctypes trampoline into this
  interpreter) so a C helper like ``bpf_loop`` can call the callback directly.

Threads: each thread that runs a program gets its own stacks and call state (issue #13
item 8: one loaded program called from two threads must not share a stack), so one
:class:`Interpreter` may run on several threads at once; re-entrant runs from helper
callbacks on the same thread nest on that thread's stacks.  Atomics are performed under the GIL, which makes
them atomic with respect to other Python threads but not to native code running
concurrently on the same memory.
"""

from __future__ import annotations

import ctypes
import struct
import threading
from typing import Any, Callable, Mapping

from . import isa
from .isa import Insn
from . import helpers as helpers_mod
from ..callbacks import barrier, route_escapes
from ..errors import MapError
from .helpers import Runtime
from .maps import MAP_TYPE_ARENA
from .memory import BpfMemoryError, BpfRuntimeError, Buffer

__all__ = ["Interpreter", "BpfRuntimeError", "BpfMemoryError", "DEFAULT_MAX_INSNS"]

M64 = isa.U64
M32 = isa.U32
SB64 = 1 << 63
SB32 = 1 << 31
DEFAULT_MAX_INSNS = 1 << 26

_EXIT = -1
_UNWIND = -3
_CALL_BASE = -4  # a local call to pc T returns _CALL_BASE - T

_CALLBACK_TYPE = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64,
                                  ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64)

_UNPACK = {1: struct.Struct("<B").unpack_from, 2: struct.Struct("<H").unpack_from,
           4: struct.Struct("<I").unpack_from, 8: struct.Struct("<Q").unpack_from}
_PACK = {1: struct.Struct("<B").pack_into, 2: struct.Struct("<H").pack_into,
         4: struct.Struct("<I").pack_into, 8: struct.Struct("<Q").pack_into}


# ---------------------------------------------------------------------------------------
# Arithmetic helpers used by the generated code


def _sdiv(a: int, b: int, bits: int) -> int:
    """Signed division truncating toward zero; b == 0 gives 0 (RFC 9669)."""
    mask = (1 << bits) - 1
    sign = 1 << (bits - 1)
    a &= mask
    b &= mask
    if b == 0:
        return 0
    a = (a ^ sign) - sign
    b = (b ^ sign) - sign
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        q = -q
    return q & mask


def _smod(a: int, b: int, bits: int) -> int:
    """Signed remainder with the sign of the dividend; b == 0 keeps the dividend."""
    mask = (1 << bits) - 1
    sign = 1 << (bits - 1)
    a &= mask
    b &= mask
    if b == 0:
        return a
    sa = (a ^ sign) - sign
    sb = (b ^ sign) - sign
    r = abs(sa) % abs(sb)
    if sa < 0:
        r = -r
    return r & mask


def _bswap(value: int, nbytes: int) -> int:
    return int.from_bytes((value & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little"), "big")


# ---------------------------------------------------------------------------------------
# Code generation


def _imm64(insn: Insn) -> int:
    return insn.imm & M64


def _leaders(insns: list[Insn], n: int, placeholder: list[bool]) -> tuple[set[int], set[int]]:
    """Block leaders and the set of subprogram entry points."""
    leaders = {0}
    entries = {0}
    for pc, insn in enumerate(insns):
        if placeholder[pc]:
            continue
        if insn.is_lddw:
            if insn.src == isa.PSEUDO_FUNC:
                target = pc + 1 + insn.imm
                leaders.add(target)
                entries.add(target)
            continue
        cls = insn.cls
        if cls not in (isa.JMP, isa.JMP32):
            continue
        nxt = pc + 1
        if insn.opcode == isa.OP_CALL:
            if insn.src == isa.PSEUDO_CALL:
                target = pc + 1 + insn.imm
                leaders.add(target)
                entries.add(target)
                leaders.add(nxt)
            continue
        if insn.opcode == isa.OP_CALL | isa.X:
            leaders.add(nxt)
            continue
        if insn.opcode == isa.OP_EXIT:
            leaders.add(nxt)
            continue
        leaders.add(pc + 1 + insn.jump_offset())
        leaders.add(nxt)
    return {p for p in leaders if p < n}, entries


class _Gen:
    """Emits the Python source of one basic block, statement by statement."""

    def __init__(self, interp: "Interpreter"):
        self.it = interp
        self.lines: list[str] = []

    def emit(self, text: str) -> None:
        self.lines.append("    " + text)

    # operands -----------------------------------------------------------------------
    @staticmethod
    def addr(reg: int, off: int) -> str:
        if off > 0:
            return f"r[{reg}] + {off}"
        if off < 0:
            return f"r[{reg}] - {-off}"
        return f"r[{reg}]"

    def alu(self, insn: Insn) -> None:
        if self.it.program.arena_xlated and isa.is_arena_zext(insn):
            # 64-bit ALU on an arena pointer: the result keeps its low 32 bits (needs_zext)
            self.alu(isa.plain_access(insn))
            self.emit(f"r[{insn.dst}] &= {M32}")
            return
        d = insn.dst
        is64 = insn.cls == isa.ALU64
        op = insn.op
        M = M64 if is64 else M32
        if insn.source == isa.X:
            s = f"r[{insn.src}]"
            const = None
        else:
            const = insn.imm & M
            s = str(const)
        D = f"r[{d}]"
        e = self.emit
        if op == isa.ADD:
            e(f"{D} = ({D} + {s}) & {M}")
        elif op == isa.SUB:
            e(f"{D} = ({D} - {s}) & {M}")
        elif op == isa.MUL:
            e(f"{D} = ({D} * {s}) & {M}")
        elif op in (isa.OR, isa.AND, isa.XOR):
            sym = {isa.OR: "|", isa.AND: "&", isa.XOR: "^"}[op]
            if is64:
                e(f"{D} {sym}= {s}")
            else:
                e(f"{D} = ({D} {sym} {s}) & {M}")
        elif op == isa.LSH:
            n = f"({s} & {63 if is64 else 31})" if const is None else str(const & (63 if is64 else 31))
            e(f"{D} = ({D} << {n}) & {M}")
        elif op == isa.RSH:
            n = f"({s} & {63 if is64 else 31})" if const is None else str(const & (63 if is64 else 31))
            e(f"{D} >>= {n}" if is64 else f"{D} = ({D} & {M}) >> {n}")
        elif op == isa.ARSH:
            n = f"({s} & {63 if is64 else 31})" if const is None else str(const & (63 if is64 else 31))
            sb = SB64 if is64 else SB32
            e(f"{D} = (((({D} & {M}) ^ {sb}) - {sb}) >> {n}) & {M}")
        elif op == isa.NEG:
            e(f"{D} = -{D} & {M}")
        elif op == isa.MOV:
            if is64 and insn.off == isa.ADDR_SPACE_CAST and insn.source == isa.X:
                # the kernel JIT's BPF_ADDR_SPACE_CAST: to the arena side keeps the low 32
                # bits; back to a user address puts the window's upper half on them (0
                # stays 0)
                if insn.imm == 1:
                    e(f"{D} = {s} & {M32}")
                else:
                    e(f"t = {s} & {M32}")
                    e(f"{D} = ({self.it.arena_window(None)} | t) if t else 0")
            elif insn.off and insn.source == isa.X:
                bits = insn.off
                sb = 1 << (bits - 1)
                e(f"{D} = ((({s} & {(1 << bits) - 1}) ^ {sb}) - {sb}) & {M}")
            elif is64:
                e(f"{D} = {s}")
            else:
                e(f"{D} = {s} & {M}" if const is None else f"{D} = {const}")
        elif op in (isa.DIV, isa.MOD):
            bits = 64 if is64 else 32
            if insn.off == 1:
                fn = "_sdiv" if op == isa.DIV else "_smod"
                e(f"{D} = {fn}({D}, {s}, {bits})")
            elif const is not None:
                if op == isa.DIV:
                    e(f"{D} = ({D} & {M}) // {const}" if const else f"{D} = 0")
                else:
                    e(f"{D} = ({D} & {M}) % {const}" if const else f"{D} &= {M}")
            else:
                e(f"t = {s} & {M}")
                if op == isa.DIV:
                    e(f"{D} = ({D} & {M}) // t if t else 0")
                else:
                    e(f"{D} = ({D} & {M}) % t if t else {D} & {M}")
        elif op == isa.END:
            width = insn.imm
            nbytes = width // 8
            if insn.cls == isa.ALU64 or insn.source == isa.TO_BE:
                e(f"{D} = _bswap({D}, {nbytes})")
            elif width < 64:
                e(f"{D} &= {(1 << width) - 1}")
        else:  # pragma: no cover - validated before
            raise AssertionError(op)

    def cond(self, insn: Insn) -> str:
        is64 = insn.cls == isa.JMP
        M = M64 if is64 else M32
        sb = SB64 if is64 else SB32
        op = insn.op
        D = f"r[{insn.dst}]" if is64 else f"(r[{insn.dst}] & {M})"
        signed = op in (isa.JSGT, isa.JSGE, isa.JSLT, isa.JSLE)
        if insn.source == isa.X:
            S = f"r[{insn.src}]" if is64 else f"(r[{insn.src}] & {M})"
            if signed:
                S = f"({S} ^ {sb})"
        else:
            c = insn.imm & M
            S = str(c ^ sb if signed else c)
        if signed:
            D = f"({D} ^ {sb})"
        sym = {isa.JEQ: "==", isa.JNE: "!=", isa.JGT: ">", isa.JGE: ">=", isa.JLT: "<",
               isa.JLE: "<=", isa.JSGT: ">", isa.JSGE: ">=", isa.JSLT: "<", isa.JSLE: "<="}
        if op == isa.JSET:
            return f"{D} & {S}"
        return f"{D} {sym[op]} {S}"

    def arena_addr(self, pc: int, reg: int, off: int) -> str:
        """PROBE_MEM32: arena window + low 32 bits of the register + off (always inside the
        window's mapping, guards included)."""
        return f"{self.it.arena_window(pc) + off} + (r[{reg}] & {M32})"

    def mem(self, pc: int, insn: Insn) -> None:
        size = isa.SIZE_BYTES[insn.size]
        e = self.emit
        arena = isa.is_arena_access(insn)
        if insn.cls == isa.STX and insn.imm == isa.LOAD_ACQ and insn.mode in (isa.ATOMIC,
                                                                             isa.PROBE_ATOMIC):
            # load-acquire: a plain load (zero-extending).  Each instruction here runs to
            # its end under the GIL, so no later access can be seen before it.
            a = self.arena_addr(pc, insn.src, insn.off) if arena else self.addr(insn.src, insn.off)
            e(f"r[{insn.dst}] = LD{size}({a}, {pc})")
            return
        if insn.cls == isa.LDX:
            a = self.arena_addr(pc, insn.src, insn.off) if arena else self.addr(insn.src, insn.off)
            if insn.mode in (isa.MEMSX, isa.PROBE_MEM32SX):
                bits = size * 8
                sb = 1 << (bits - 1)
                e(f"r[{insn.dst}] = ((LD{size}({a}, {pc}) ^ {sb}) - {sb}) & {M64}")
            else:
                e(f"r[{insn.dst}] = LD{size}({a}, {pc})")
            return
        a = self.arena_addr(pc, insn.dst, insn.off) if arena else self.addr(insn.dst, insn.off)
        mask = (1 << (8 * size)) - 1
        if insn.cls == isa.ST:
            e(f"ST{size}({a}, {insn.imm & mask}, {pc})")
            return
        if insn.mode in (isa.MEM, isa.PROBE_MEM32) or insn.imm == isa.STORE_REL:
            # (store-release: a plain store, ordered after every earlier access as above)
            v = f"r[{insn.src}]" if size == 8 else f"r[{insn.src}] & {mask}"
            e(f"ST{size}({a}, {v}, {pc})")
            return
        # atomics
        imm = insn.imm
        if imm == isa.CMPXCHG:
            e(f"r[0] = ATOMIC({a}, {size}, {imm}, r[{insn.src}], r[0], {pc})")
        elif imm & isa.FETCH:
            e(f"r[{insn.src}] = ATOMIC({a}, {size}, {imm}, r[{insn.src}], 0, {pc})")
        else:
            e(f"ATOMIC({a}, {size}, {imm}, r[{insn.src}], 0, {pc})")


class _Context:
    """One stack and the compiled blocks bound to it (re-entrant runs get their own)."""

    __slots__ = ("stack", "blocks", "region", "reset")

    def __init__(self, stack: Buffer, blocks: list, reset: Callable[[], None]):
        self.stack = stack
        self.blocks = blocks
        self.region = None
        self.reset = reset  # forget cached region views (regions may change between runs)


class _PerThread(threading.local):
    """A thread's run state: its stacks (one context per nesting level), the nesting
    depth, the current call state and the exception parked by a native-entry run."""

    def __init__(self) -> None:
        self.pending: BaseException | None = None
        self.contexts: list[_Context] = []
        self.active = 0
        # [current call depth, current register list, instructions run by the callbacks
        # of the current run (helpers call them in runs of their own: each starts from this
        # count and adds its own, so a tree of callbacks shares the run's budget)]
        self.state = [0, None, 0]
        self.pkt_len = 0         # r2 of the outermost run: the data length LD_ABS/LD_IND see


def _thread_attr(name: str) -> property:
    def get(self):
        return getattr(self._tls, name)

    def put(self, value) -> None:
        setattr(self._tls, name, value)
    return property(get, put)


class Interpreter:
    """Run one program.  ``run(r1..r5)`` returns r0 (unsigned 64-bit).

    ``helpers`` overrides the helper table (a mapping id -> :class:`Helper` or
    ``impl(runtime, r1..r5)``); by default the runtime's platform is asked
    (``helpers.runtime_helper``).
    ``unwind_helper`` names a helper id that stops the program with r0 = 0 when it returns
    0 (bpf_conformance's helper 5).  ``max_insns`` bounds each run so that a looping
    program ends with a clear :class:`BpfRuntimeError` instead of hanging.
    ``may_goto_loops``: how many times each frame's ``may_goto`` falls through before it
    jumps (the kernel's BPF_MAX_LOOPS; smaller only to test the exhaustion path quickly).
    """

    def __init__(self, program: Any, runtime: Any = None, *,
                 helpers: Mapping[int, Any] | None = None,
                 unwind_helper: int | None = None,
                 max_insns: int = DEFAULT_MAX_INSNS,
                 stack_size: int = isa.STACK_SIZE,
                 max_depth: int = isa.MAX_CALL_DEPTH,
                 may_goto_loops: int = isa.BPF_MAX_LOOPS):
        if isinstance(program, (bytes, bytearray, memoryview)):
            program = isa.Program("prog", isa.decode(program))
        elif isinstance(program, list):
            program = isa.Program("prog", program)
        if runtime is None:
            runtime = Runtime()
        self.program = program
        self.runtime = runtime
        self.max_insns = max_insns
        self.stack_size = stack_size
        self.max_depth = max_depth
        self.may_goto_loops = may_goto_loops
        self._helper_table = helpers
        self._unwind = unwind_helper
        self._tls = _PerThread()
        self._func_addrs: dict[int, int] = {}   # trampoline address -> entry pc
        self._trampolines: dict[int, Any] = {}  # entry pc -> ctypes callback (kept alive)
        self._entry_cb = None
        self._compile()

    _pending = _thread_attr("pending")
    _contexts = _thread_attr("contexts")
    _active = _thread_attr("active")
    _state = _thread_attr("state")
    _pkt_len = _thread_attr("pkt_len")

    # ---------------------------------------------------------------- compilation ---
    def _fail(self, message: str, pc: int | None) -> BpfRuntimeError:
        return BpfRuntimeError(message, pc)

    def _resolve_helper(self, helper_id: int, pc: int) -> tuple[Callable, str]:
        if self._helper_table is not None:
            h = self._helper_table.get(helper_id)
        else:
            h = helpers_mod.runtime_helper(self.runtime, helper_id)
        if h is None:
            raise self._fail(f"call to unknown helper {helper_id}", pc)
        impl = getattr(h, "impl", h)
        name = getattr(h, "name", f"helper#{helper_id}")
        if not callable(impl):
            raise self._fail(f"helper {helper_id} has no implementation", pc)
        return impl, name

    def _resolve_kfunc(self, index: int, pc: int) -> tuple[Callable, str]:
        kfuncs = getattr(self.program, "kfuncs", None) or []
        if not 0 <= index < len(kfuncs):
            raise self._fail(f"kfunc call index {index} is not in the program's kfunc list", pc)
        entry = kfuncs[index]
        if isinstance(entry, str):
            h = helpers_mod.runtime_kfunc(self.runtime, entry)
            if h is None:
                raise self._fail(f"call to unknown kfunc {entry!r}", pc)
        else:
            h = entry
        impl = getattr(h, "impl", h)
        return impl, getattr(h, "name", str(entry))

    def arena_window(self, pc: int | None) -> int:
        """The 4 GiB window of the program's arena (the kernel allows one per program)."""
        for m in self.program.maps:
            if getattr(m, "type", None) == MAP_TYPE_ARENA:
                return m.arena_window
        raise self._fail("arena access or addr_space_cast in a program without an arena map", pc)

    def _lddw_value(self, pc: int, insn: Insn) -> int:
        """What ``lddw`` at ``pc`` loads. The pseudo forms read the fields the kernel (and
        the verifier and the JIT) read: the value, map index, fd or function offset from
        ``imm``, the value's upper half or a map value's offset from the second slot's
        ``imm``; never ``imm64``, which a hand-built instruction may leave stale."""
        src = insn.src
        if src == 0:
            return isa.lddw_imm64(self.program.insns, pc)
        idx = insn.imm
        off = isa.to_s32(self.program.insns[pc + 1].imm)
        maps = getattr(self.program, "maps", None) or []
        if src in (isa.PSEUDO_MAP_IDX, isa.PSEUDO_MAP_IDX_VALUE):
            if not 0 <= idx < len(maps):
                raise self._fail(f"lddw map index {idx} out of range ({len(maps)} maps)", pc)
            m = maps[idx]
            if src == isa.PSEUDO_MAP_IDX:
                return int(m.addr) & M64
            try:
                value_addr = getattr(m, "value_addr", None)
            except MapError as exc:  # a closed map
                raise self._fail(f"lddw map value of map {idx}: {exc}", pc) from exc
            if value_addr is None:
                raise self._fail(f"lddw map value of map {idx} which has no direct value", pc)
            return (int(value_addr) + off) & M64
        if src == isa.PSEUDO_FUNC:
            return self._trampoline(pc + 1 + idx)
        if src in (isa.PSEUDO_MAP_FD, isa.PSEUDO_MAP_VALUE):
            # Bytecode that names maps by fd (as the kernel's bpf() does): resolve it against
            # the maps of the runtime that carry that fd.
            for m in getattr(self.runtime, "maps", None) or []:
                if getattr(m, "fd", None) == idx:
                    if src == isa.PSEUDO_MAP_FD:
                        return int(m.addr) & M64
                    value_addr = getattr(m, "value_addr", None)
                    if value_addr is None:
                        raise self._fail(f"lddw map value of map fd {idx} which has no direct value", pc)
                    return (int(value_addr) + off) & M64
            kind = "map fd" if src == isa.PSEUDO_MAP_FD else "map value"
            raise self._fail(f"unrelocated lddw {kind} form: no map with fd {idx} in the runtime "
                             "(load the object to relocate it)", pc)
        kind = {isa.PSEUDO_BTF_ID: "BTF id"}.get(src, f"src {src}")
        raise self._fail(f"unrelocated lddw {kind} form (load the object to relocate it)", pc)

    def _trampoline(self, entry_pc: int) -> int:
        """A native function pointer that runs the subprogram at ``entry_pc``."""
        cb = self._trampolines.get(entry_pc)
        if cb is None:
            def callback(a1, a2, a3, a4, a5, _entry=entry_pc):
                return self._call_function(_entry, (a1, a2, a3, a4, a5))

            def park(exc: BaseException, _args: tuple) -> int:   # re-raised after the helper returns
                if self._pending is None:
                    self._pending = exc
                return 0
            cb = _CALLBACK_TYPE(barrier(callback, park))
            self._trampolines[entry_pc] = cb
            self._func_addrs[ctypes.cast(cb, ctypes.c_void_p).value] = entry_pc
        return ctypes.cast(cb, ctypes.c_void_p).value

    def function_for_address(self, addr: int) -> int | None:
        """Entry pc of the subprogram whose ``lddw func()`` address is ``addr``."""
        return self._func_addrs.get(addr)

    def _compile(self) -> None:
        insns = list(self.program.insns)
        n = len(insns)
        if n == 0:
            raise self._fail("empty program", None)
        placeholder = [False] * n
        for pc, insn in enumerate(insns):
            if placeholder[pc]:
                continue
            if insn.is_lddw:
                if pc + 1 >= n:
                    raise self._fail("lddw is missing its second slot", pc)
                placeholder[pc + 1] = True
            reason = isa.invalid_reason(insn, self.program.arena_xlated)
            if reason is not None:
                raise self._fail(reason, pc)
        for pc, insn in enumerate(insns):
            if placeholder[pc]:
                continue
            target = None
            if insn.is_jump:
                target = pc + 1 + insn.jump_offset()
                what = "jump"
            elif insn.opcode == isa.OP_CALL and insn.src == isa.PSEUDO_CALL:
                target = pc + 1 + insn.imm
                what = "call"
            elif insn.is_lddw and insn.src == isa.PSEUDO_FUNC:
                target = pc + 1 + insn.imm
                what = "function address"
            if target is not None:
                if not 0 <= target < n:
                    raise self._fail(f"{what} out of bounds (target {target})", pc)
                if placeholder[target]:
                    raise self._fail(f"{what} into the middle of lddw (target {target})", pc)
        leaders, entries = _leaders(insns, n, placeholder)
        self._entries = entries
        starts = sorted(leaders)
        gen_src = ["def __make():"]
        self._ns_funcs: dict[str, Any] = {}
        self._ends = [0] * (n + 1)
        self._lens = [0] * (n + 1)
        helper_calls: dict[str, tuple[Callable, str, int, bool]] = {}
        for bi, start in enumerate(starts):
            end_limit = starts[bi + 1] if bi + 1 < len(starts) else n
            g = _Gen(self)
            pc = start
            terminated = False
            while pc < end_limit:
                insn = insns[pc]
                if placeholder[pc]:
                    pc += 1
                    continue
                cls = insn.cls
                if cls in (isa.ALU, isa.ALU64):
                    g.alu(insn)
                elif insn.is_lddw:
                    g.emit(f"r[{insn.dst}] = {self._lddw_value(pc, insn)}")
                elif cls == isa.LD and insn.mode in (isa.ABS, isa.IND) and insn.size != isa.DW:
                    src = insn.src if insn.mode == isa.IND else -1
                    # out of bounds: the current function returns 0, as the kernel's
                    # rewrite (bpf_gen_ld_abs: a hidden ``r0 = 0; exit``) does; its caller
                    # goes on (selftests verifier_ld_ind.c, "subprog early exit")
                    g.emit(f"if LDPKT(r, {isa.SIZE_BYTES[insn.size]}, {src}, {insn.imm}, {pc}): "
                           f"return {_EXIT}")
                elif cls == isa.LD:
                    g.emit(f"LEGACY({pc})")
                elif cls in (isa.LDX, isa.ST, isa.STX):
                    g.mem(pc, insn)
                elif insn.opcode == isa.OP_EXIT:
                    g.emit(f"return {_EXIT}")
                    terminated = True
                elif insn.opcode == isa.OP_CALL:
                    if insn.src == isa.PSEUDO_CALL:
                        g.emit(f"return {_CALL_BASE - (pc + 1 + insn.imm)}")
                        terminated = True
                    else:
                        if insn.src == isa.PSEUDO_KFUNC_CALL:
                            impl, name = self._resolve_kfunc(insn.imm, pc)
                            key = f"K{pc}"
                            unwind = False
                        else:
                            impl, name = self._resolve_helper(insn.imm, pc)
                            key = f"H{pc}"
                            unwind = self._unwind is not None and insn.imm == self._unwind
                        helper_calls[key] = (impl, name, pc, unwind)
                        g.emit(f"r[0] = {key}(r[1], r[2], r[3], r[4], r[5])")
                        if unwind:
                            g.emit(f"if r[0] == 0: return {_UNWIND}")
                elif insn.opcode == isa.OP_CALL | isa.X:
                    g.emit(f"return CALLX(r, {insn.dst}, {pc})")
                    terminated = True
                elif insn.is_jump:
                    target = pc + 1 + insn.jump_offset()
                    if insn.is_may_goto:   # r[11]: the frame's hidden counter
                        g.emit(f"if r[11] == 0: return {target}")
                        g.emit("r[11] -= 1")
                        g.emit(f"return {pc + 1}")
                    elif insn.op == isa.JA:
                        g.emit(f"return {target}")
                    else:
                        g.emit(f"return {target} if {g.cond(insn)} else {pc + 1}")
                    terminated = True
                else:  # pragma: no cover - validated above
                    raise self._fail(f"unsupported opcode {insn.opcode:#04x}", pc)
                pc += 1
                if terminated:
                    break
            self._ends[start] = pc
            self._lens[start] = max(1, pc - start)
            if not terminated:
                g.emit(f"return {pc}")
            gen_src.append(f"  def b{start}(r):")
            gen_src.extend("  " + line for line in g.lines)
        gen_src.append("  return {" + ", ".join(f"{s}: b{s}" for s in starts) + "}")
        self._source = "\n".join(gen_src)
        self._code = compile(self._source, f"<bpf {getattr(self.program, 'name', 'prog')}>", "exec")
        self._starts = starts
        self._helper_calls = helper_calls
        self._n = n

    # ------------------------------------------------------------ run contexts ------
    def _new_context(self) -> _Context:
        total = self.stack_size * self.max_depth
        stack = Buffer(total, align=16, guard=True)   # no user pointer may name it
        smv = stack.view()
        lo = stack.addr
        space = self.runtime.mem
        # The last runtime.mem region touched, as closure cells the loads/stores read
        # directly: [c_lo, c_hi) readable through c_mv, and writable when c_wr.
        c_lo = c_hi = 0
        c_mv: memoryview | None = None
        c_wr = False
        views: dict[int, memoryview] = {}

        def find_view(a: int, size: int, write: bool, pc: int) -> tuple[memoryview, int]:
            nonlocal c_lo, c_hi, c_mv, c_wr
            a &= M64  # address arithmetic wraps at 64 bits, as on the machine
            region = space.find(a, size)
            if region is None:
                kind = "store" if write else "load"
                raise BpfMemoryError(f"out of bounds memory {kind} of {size} bytes at {a:#x}", pc)
            if write and not region.writable:
                raise BpfMemoryError(
                    f"store of {size} bytes to read-only {region.name} at {a:#x}", pc)
            mv = views.get(id(region))
            if mv is None:
                mv = memoryview((ctypes.c_ubyte * region.size).from_address(region.base)).cast("B")
                views[id(region)] = mv
            c_lo, c_hi, c_mv, c_wr = region.base, region.end, mv, region.writable
            return mv, a - region.base

        def reset_cache() -> None:
            nonlocal c_lo, c_hi, c_mv, c_wr
            c_lo = c_hi = 0
            c_mv = None
            c_wr = False
            views.clear()

        def make_load(size: int):
            unpack = _UNPACK[size]
            lim = total - size

            def load(a: int, pc: int) -> int:
                o = a - lo
                if 0 <= o <= lim:
                    return unpack(smv, o)[0]
                o = a - c_lo
                if 0 <= o and a + size <= c_hi:
                    return unpack(c_mv, o)[0]
                mv, off = find_view(a, size, False, pc)
                return unpack(mv, off)[0]
            return load

        def make_store(size: int):
            pack = _PACK[size]
            lim = total - size

            def store(a: int, v: int, pc: int) -> None:
                o = a - lo
                if 0 <= o <= lim:
                    pack(smv, o, v)
                    return
                o = a - c_lo
                if c_wr and 0 <= o and a + size <= c_hi:
                    pack(c_mv, o, v)
                    return
                mv, off = find_view(a, size, True, pc)
                pack(mv, off, v)
            return store

        loads = {s: make_load(s) for s in (1, 2, 4, 8)}
        stores = {s: make_store(s) for s in (1, 2, 4, 8)}

        def atomic(a: int, size: int, op: int, src: int, r0: int, pc: int) -> int:
            mask = (1 << (8 * size)) - 1
            old = loads[size](a, pc)
            src &= mask
            if op == isa.CMPXCHG:
                if old == r0 & mask:
                    stores[size](a, src, pc)
                return old
            if op == isa.XCHG:
                stores[size](a, src, pc)
                return old
            base = op & ~isa.FETCH
            if base == isa.ATOMIC_ADD:
                new = (old + src) & mask
            elif base == isa.ATOMIC_OR:
                new = old | src
            elif base == isa.ATOMIC_AND:
                new = old & src
            else:
                new = old ^ src
            stores[size](a, new, pc)
            return old

        def legacy(pc: int) -> None:
            raise BpfRuntimeError("legacy packet access (LD ABS/IND) is not supported", pc)

        def ld_packet(r: list, size: int, src: int, imm: int, pc: int) -> bool:
            """LD_ABS (``src`` < 0) / LD_IND: r0 = the big-endian value at r6 + offset, the
            offset an ``int`` as the kernel's skb load helpers take it; True when it is
            outside the run's data length (entry r2): the function then returns 0."""
            off = (imm if src < 0 else r[src] + imm) & 0xFFFFFFFF
            off = off - (1 << 32) if off & 0x80000000 else off
            if off < 0 or off + size > self._pkt_len:
                r[0] = 0
                return True
            r[0] = int.from_bytes(loads[size](r[6] + off, pc).to_bytes(size, "little"), "big")
            return False

        def callx(r: list, reg: int, pc: int) -> int:
            target = r[reg]
            entry = self._func_addrs.get(target)
            if entry is not None:
                return _CALL_BASE - entry
            try:
                impl, name = self._resolve_helper(target, pc) if target < (1 << 31) else (None, "")
            except BpfRuntimeError:
                impl = None
            if impl is None:
                raise BpfRuntimeError(f"callx to invalid target {target:#x}", pc)
            call = wrap(impl, name, pc, self._unwind is not None and target == self._unwind)
            r[0] = call(r[1], r[2], r[3], r[4], r[5])
            if self._unwind is not None and target == self._unwind and r[0] == 0:
                return _UNWIND
            return pc + 1

        runtime = self.runtime

        def wrap(impl: Callable, name: str, pc: int, unwind: bool):
            def call(a1: int, a2: int, a3: int, a4: int, a5: int) -> int:
                try:
                    # A helper may call native code that calls back into Python (this
                    # interpreter's callback trampolines, or barriers of its own): a Ctrl-C
                    # that arrived in that native code fires as the callback's frame starts,
                    # before its barrier's try; route_escapes hands it to that barrier's
                    # on_error (a trampoline parks it in _pending, raised below).  Per
                    # helper call, not per instruction.
                    with route_escapes():
                        value = impl(runtime, a1, a2, a3, a4, a5)
                except BpfRuntimeError as exc:
                    if exc.pc is None:
                        raise type(exc)(str(exc), pc) from exc
                    raise
                except Exception as exc:  # why: helpers are user-registered callables too; the program sees any failure as a runtime error at its pc
                    raise BpfRuntimeError(f"{name} failed: {exc}", pc) from exc
                finally:
                    reset_cache()
                if self._pending is not None:
                    exc, self._pending = self._pending, None
                    raise exc
                return 0 if value is None else int(value) & M64
            return call

        ns: dict[str, Any] = {
            "_sdiv": _sdiv, "_smod": _smod, "_bswap": _bswap,
            "ATOMIC": atomic, "LEGACY": legacy, "LDPKT": ld_packet, "CALLX": callx,
        }
        for s in (1, 2, 4, 8):
            ns[f"LD{s}"] = loads[s]
            ns[f"ST{s}"] = stores[s]
        for key, (impl, name, pc, unwind) in self._helper_calls.items():
            ns[key] = wrap(impl, name, pc, unwind)
        exec(self._code, ns)
        table = ns["__make"]()
        blocks: list = [None] * (self._n + 1)
        for start, fn in table.items():
            blocks[start] = fn
        n = self._n

        def fell_off(r: list) -> int:
            raise BpfRuntimeError("execution fell off the end of the program", n - 1)
        blocks[n] = fell_off
        return _Context(stack, blocks, reset_cache)

    def _acquire(self) -> _Context:
        depth = self._active
        while len(self._contexts) <= depth:
            self._contexts.append(self._new_context())
        ctx = self._contexts[depth]
        ctx.region = self.runtime.mem.add(ctx.stack.addr, ctx.stack.size, True, "stack")
        ctx.reset()
        self._active += 1
        return ctx

    def _release(self, ctx: _Context) -> None:
        self._active -= 1
        if ctx.region is not None:
            self.runtime.mem.remove(ctx.region)
            ctx.region = None
        ctx.reset()

    # ------------------------------------------------------------------ running -----
    def run(self, r1: int = 0, r2: int = 0, r3: int = 0, r4: int = 0, r5: int = 0) -> int:
        """Run from instruction 0 with r1..r5 as given; returns r0."""
        ctx = self._acquire()
        saved = self._state[:]
        self._state[2] = 0     # a fresh budget for this run's callbacks
        saved_len = self._pkt_len
        # a socket filter's data length (r2; r1 = data): what LD_ABS/LD_IND bound against
        self._pkt_len = r2 & M64
        try:
            top = ctx.stack.addr + ctx.stack.size
            r = [0, r1 & M64, r2 & M64, r3 & M64, r4 & M64, r5 & M64, 0, 0, 0, 0, top,
                 self.may_goto_loops]
            return self._execute(ctx, r, 0, 0)
        finally:
            self._state[:] = saved
            self._pkt_len = saved_len
            self._release(ctx)

    __call__ = run

    def _call_function(self, entry: int, args: tuple[int, ...]) -> int:
        """Run the subprogram at ``entry`` as a callback (from a helper) in a new frame."""
        depth, caller_regs = self._state[:2]
        if caller_regs is None or self._active == 0:
            # Called outside a run (e.g. a test calling the trampoline): own context.
            ctx = self._acquire()
            try:
                top = ctx.stack.addr + ctx.stack.size
                r = [0, *(a & M64 for a in args), 0, 0, 0, 0, top, self.may_goto_loops]
                return self._execute(ctx, r, entry, 0)
            finally:
                self._release(ctx)
        if depth + 1 >= self.max_depth:
            raise BpfRuntimeError(f"callback exceeds the call depth limit of {self.max_depth}", None)
        ctx = self._contexts[self._active - 1]
        r = [0, *(a & M64 for a in args), 0, 0, 0, 0, caller_regs[10] - self.stack_size,
             self.may_goto_loops]
        state = self._state
        saved = state[:]
        try:
            return self._execute(ctx, r, entry, depth + 1, saved[2])
        finally:
            spent = state[2]
            state[:] = saved
            state[2] = spent

    def _execute(self, ctx: _Context, r: list, pc: int, depth: int, steps: int = 0) -> int:
        """Run from ``pc`` until the frame it started in returns; ``steps``: instructions
        the run has already spent (a callback's start). Adds what it ran to the count of
        the run's callbacks (``state[2]``), also when it fails."""
        blocks = ctx.blocks
        lens = self._lens
        ends = self._ends
        limit = self.max_insns
        frame = self.stack_size
        max_depth = self.max_depth
        loops = self.may_goto_loops
        state = self._state
        frames: list[tuple] = []
        if steps > limit:
            # a callback entered after the run's callbacks spent the budget (one that is a
            # single block would make no checked transition)
            raise BpfRuntimeError(f"instruction limit of {limit} exceeded", pc)
        state[0] = depth
        state[1] = r
        base = steps
        try:
            while True:
                nxt = blocks[pc](r)
                steps += lens[pc]
                if nxt >= 0:
                    pc = nxt
                    if steps > limit:
                        raise BpfRuntimeError(f"instruction limit of {limit} exceeded", pc)
                    continue
                if nxt == _EXIT:
                    if not frames:
                        state[1] = None
                        return r[0]
                    pc, r[6], r[7], r[8], r[9], r[10], r[11] = frames.pop()
                    state[0] -= 1
                    continue
                if nxt == _UNWIND:
                    state[1] = None
                    return r[0]
                ret = ends[pc]
                pc = _CALL_BASE - nxt
                # Calls are checked too: a tree of calls without a backward jump (f0 calls
                # f1 k times, f1 calls f2 k times, ...) makes no block-to-block jump. The
                # error's pc is the callee's first instruction, as on both JIT tiers.
                if steps > limit:
                    raise BpfRuntimeError(f"instruction limit of {limit} exceeded", pc)
                if depth + len(frames) + 1 >= max_depth:
                    raise BpfRuntimeError(
                        f"call depth limit of {max_depth} frames exceeded", ret - 1)
                frames.append((ret, r[6], r[7], r[8], r[9], r[10], r[11]))
                state[0] += 1
                r[10] -= frame
                r[11] = loops
        finally:
            state[2] += steps - base

    # ------------------------------------------------------------ native entry ------
    @property
    def entry_address(self) -> int:
        """A native ``uint64_t (*)(uint64_t r1, ..., uint64_t r5)`` that runs this program.

        Exceptions cannot cross the native boundary: they are kept and re-raised by
        :meth:`take_error` (the caller should check it); the call itself returns 0.
        """
        if self._entry_cb is None:
            def park(exc: BaseException, _args: tuple) -> int:
                self._pending = exc
                return 0
            self._entry_cb = _CALLBACK_TYPE(barrier(self.run, park))
        return ctypes.cast(self._entry_cb, ctypes.c_void_p).value

    def take_error(self) -> BaseException | None:
        """The exception of the last failed native-entry or callback run, cleared."""
        exc, self._pending = self._pending, None
        return exc

    @property
    def source(self) -> str:
        """The generated Python source of the basic blocks (for debugging)."""
        return self._source
