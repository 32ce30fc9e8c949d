"""Memory checks: map values, helper memory, the data buffer, the context, the stack."""

from __future__ import annotations

from .. import isa, progtypes
from . import scalar as sc
from . import sanity
from ..isa import (  # names: cheaper than module attributes, per instruction
    ALU, ALU64, ARENA_ZEXT, ATOMIC, ATOMIC_AND, ATOMIC_LOAD_STORE, ATOMIC_OR, ATOMIC_XOR,
    CMPXCHG, FETCH, LOAD_ACQ, MEMSX, OP_JA, PROBE_ATOMIC, PROBE_MEM32, PROBE_MEM32SX,
    SIZE_BYTES, ST, STACK_SIZE, STX,
)
from .cfg import reached_fault
from .state import (
    ADD_CONST, NOT_INIT, PTR_ARENA, PTR_BUF, PTR_CTX, PTR_MAP_VALUE, PTR_MEM, PTR_STACK,
    PTR_TRUSTED, SCALAR, UNKNOWN_SCALAR, Frame, Reg, State, const_reg, copy_reg, scalar,
)
from .calls import CallsMixin
from .common import MEM_ARG_TYPES
from .common import (
    MAX_VAR_OFF, Num, _Reject, _check_aligned, _frozen_map_read, _is_arena_ptr, _sized_unknown,
    _unknown_load,
)


def _slot_kind(slot) -> str:
    """The kind (:meth:`MemoryMixin._byte_kind`) of every byte of a stack slot that is not
    a bytes slot ("B"/"H"): none ("u"), a spill (a scalar's "0"/"m", a released
    reference's "u", a pointer's "p") or an iterator/dynptr ("o")."""
    if slot is None:
        return "u"
    if slot[0] == "S":
        r = slot[1]
        if r.t == SCALAR:
            return "0" if r.var[5] == 0 and r.var[4] == 0 else "m"
        if r.t == NOT_INIT:
            return "u"
        return "p"
    return "o"


class MemoryMixin(CallsMixin):
    """Loads, stores, atomics: bounds, permissions, the byte-precise stack, the context."""

    # ------------------------------------------------------------ memory

    def _note_arena_access(self, ptr: Reg) -> None:
        """Remember whether the instruction at ``self.pc`` goes through an arena pointer
        (it becomes PROBE_MEM32, see arena_rewrite); one instruction serves one kind of
        pointer only, as the kernel's save_aux_ptr_type demands.  The kind of each
        instruction's pointer is a byte (``_access_kind``: 0 not yet, 1 other, 2 arena:
        every load and store comes here)."""
        kind = 2 if ptr.t == PTR_ARENA else 1
        seen = self._access_kind[self.pc]
        if seen == 0:
            self._access_kind[self.pc] = kind
        elif seen != kind:
            raise _Reject("same insn cannot be used with different pointers")

    def arena_rewrite(self) -> None:
        """After a successful verification: rewrite the loads and stores through arena
        pointers to the PROBE_MEM32 modes (the kernel's convert_ctx_accesses), which the
        engines perform at arena window + low 32 bits of the register + off, so they cannot
        leave the window.  The program is marked (``arena_xlated``) so that verifying it
        again undoes the rewrite first (:func:`arena_unrewrite`)."""
        insns = self.program.insns
        done = False
        for pc in self.arena_zext:
            insn = insns[pc]
            insns[pc] = isa.Insn(insn.opcode, insn.dst, insn.src, insn.off | ARENA_ZEXT,
                                 insn.imm, insn.imm64)
            done = True
        for pc, kind in enumerate(self._access_kind):
            if kind != 2:           # (2: through an arena pointer, _note_arena_access)
                continue
            insn = insns[pc]
            mode = PROBE_MEM32SX if insn.mode == MEMSX else PROBE_MEM32
            if insn.cls == STX and insn.mode == ATOMIC:
                mode = PROBE_ATOMIC      # the kernel's BPF_PROBE_ATOMIC
            insns[pc] = isa.Insn((insn.opcode & ~0xE0) | mode, insn.dst, insn.src, insn.off,
                                 insn.imm, insn.imm64)
            done = True
        if done:
            self.program.arena_xlated = True

    def _first_visit(self, st: State, insn: isa.Insn, pc: Num) -> None:
        """The first time a path reaches ``pc``: mark it seen and make the checks Linux 7.2
        makes only on reached instructions (:func:`~.cfg.reached_fault`), after the
        destination register's read check as check_alu_op orders them."""
        self.seen[pc] = 1
        fault = reached_fault(insn.insn)
        if fault is not None:
            if insn.cls in (ALU, ALU64):
                self.read_reg(st, insn.dst)
            raise _Reject(fault)

    def sanitize_dead_code(self) -> None:
        """After a successful verification: every instruction no explored path reached
        becomes ``ja -1``, as the kernel's sanitize_dead_code does.  Dead code passed only
        the checks made on every instruction (fields that the kernel checks when reached
        were never looked at), so neither engine may see it: a jump to itself compiles and
        interprets like any jump and is never executed.  The originals are kept in
        ``Program.dead_code`` and put back before the program is verified again
        (:func:`dead_code_restore`), so a second verification sees the program as given."""
        insns = self.program.insns
        seen = self.seen
        second = self.cfg.second_slot
        dead = {}
        for pc, insn in enumerate(insns):
            if seen[pc] or (second[pc] and seen[pc - 1]):
                continue
            dead[pc] = insn
            insns[pc] = isa.Insn(OP_JA, 0, 0, -1, 0)
        self.program.dead_code = dead

    #: the memory an atomic may go through (besides the arena), with the word the kernel's
    #: check_ptr_alignment puts in its "misaligned ... access" message
    _ATOMIC_MEM = {PTR_STACK: "stack ", PTR_MAP_VALUE: "value ", PTR_MEM: "", PTR_BUF: "packet "}

    def _do_atomic_load_store(self, st: State, insn: isa.Insn) -> None:
        """Load-acquire (``dst = load_acquire(src + off)``) and store-release
        (``store_release(dst + off, src)``), any of the four sizes: the kernel's
        check_atomic_load/check_atomic_store.  The access is checked exactly as the load or
        store of that size (check_load_mem / check_store_reg: so a store-release of a
        pointer spills it on the stack and is refused elsewhere, our rule for every store),
        always aligned (strict_alignment_once), and only then is the pointer's type checked:
        the context, the data buffer (the kernel's ctx/packet of a socket filter) and kernel
        objects are refused.  Through an
        arena pointer it is the arena load or store (x86-64's bpf_jit_supports_insn allows
        both there)."""
        size = SIZE_BYTES[insn.size]
        load = insn.imm == LOAD_ACQ
        regno = insn.src if load else insn.dst
        ptr = self.read_reg(st, regno)
        value = None if load else self.read_reg(st, insn.src)
        self._note_arena_access(ptr)
        # the run-time data buffer stands for the kernel's ctx/packet there, where these
        # are refused
        what = None if ptr.t == PTR_BUF else self._ATOMIC_MEM.get(ptr.t)
        if what is not None and not ptr.null:
            _check_aligned(ptr, insn.off, size, what)
        if load:
            val = self._mem_access(st, ptr, regno, insn.off, size, write=False)
        else:
            self._mem_access(st, ptr, regno, insn.off, size, write=True, value=value,
                             value_regno=insn.src)
        if what is None and ptr.t != PTR_ARENA:
            raise _Reject(f"BPF_ATOMIC {'loads from' if load else 'stores into'} R{regno} "
                          f"{ptr.type_name()} is not allowed")
        if load:
            self.write_reg(st, insn.dst, val)

    def _do_ldx(self, st: State, insn: isa.Insn) -> None:
        size = SIZE_BYTES[insn.size]
        ptr = self.read_reg(st, insn.src)
        self._note_arena_access(ptr)
        signed = insn.mode == MEMSX
        # (every argument in place: a keyword that skips an optional one makes the compiled
        # core call _mem_access through Python)
        val = self._mem_access(st, ptr, insn.src, insn.off, size, False, None, -1, signed)
        self.write_reg(st, insn.dst, val)

    def _do_store(self, st: State, insn: isa.Insn) -> None:
        if insn.cls == STX and insn.mode == ATOMIC and insn.imm in ATOMIC_LOAD_STORE:
            self._do_atomic_load_store(st, insn)
            return
        size = SIZE_BYTES[insn.size]
        ptr = self.read_reg(st, insn.dst)
        if insn.cls == ST:
            value = const_reg(insn.imm)
        else:
            value = self.read_reg(st, insn.src)
        self._note_arena_access(ptr)
        if insn.cls == STX and insn.mode == ATOMIC:
            self._do_atomic(st, insn, ptr, value, size)
            return
        self._mem_access(st, ptr, insn.dst, insn.off, size, write=True, value=value, value_regno=insn.src)

    def _do_atomic(self, st: State, insn: isa.Insn, ptr: Reg, value: Reg, size: int) -> None:
        if value.t != SCALAR:
            raise _Reject(f"R{insn.src} leaks addr into mem")
        if ptr.t == PTR_ARENA:
            self._arena_atomic(st, insn)
            return
        # The data buffer of a socket filter / syscall program stands for the kernel's
        # ctx or packet, where check_atomic_rmw refuses every atomic (is_ctx_reg/is_pkt_reg),
        # and so does a struct_ops argument array.  A struct a context field points to
        # (loop_step's iou_loop_params) is the kernel's PTR_TO_BTF_ID: an atomic on a field
        # the program may write passes there, as a plain store does (_ctx_access).
        ctx_struct = self._is_btf_struct(ptr)
        if ptr.t not in (PTR_STACK, PTR_MAP_VALUE, PTR_MEM) and not ctx_struct:
            raise _Reject(f"BPF_ATOMIC stores into R{insn.dst} {ptr.type_name()} is not allowed")
        # atomics are aligned on every kind of memory (the kernel's strict_alignment_once)
        _check_aligned(ptr, insn.off, size, "" if ctx_struct else self._ATOMIC_MEM[ptr.t])
        if insn.imm == CMPXCHG:
            r0 = self.read_reg(st, 0)
            if r0.t != SCALAR:
                raise _Reject("R0 leaks addr into mem")
        if ptr.t == PTR_STACK:
            # The kernel lets a privileged loader do this; here a fetch or an xchg on a
            # spilled pointer would hand the program its address as a scalar, and any
            # atomic op would turn the slot into a forged pointer-sized scalar (#13 item 4).
            frame = self._frame_of(st, ptr)
            lo, hi = self._bounds(ptr, insn.dst, insn.off, size)
            for o in range(max(lo, -STACK_SIZE), min(hi, 0)):
                if self._byte_kind(frame, o) in "po":
                    raise _Reject(f"BPF_ATOMIC on the spilled pointer at fp{o} is not allowed "
                                  "(it would leak the pointer)")
        # an atomic op reads the old value, then writes an unknown one; the fetched
        # register gets what the read found, as the kernel's check_atomic_rmw reads it
        # into the load register (a constant spilled on the private stack stays known)
        old = self._mem_access(st, ptr, insn.dst, insn.off, size, write=False)
        self._mem_access(st, ptr, insn.dst, insn.off, size, write=True, value=UNKNOWN_SCALAR,
                         value_regno=insn.src)
        result = old if old is not None and old.t == SCALAR else scalar(_sized_unknown(size))
        if insn.imm == CMPXCHG:
            st.frames[-1].regs[0] = result
        elif insn.imm & FETCH:
            self.write_reg(st, insn.src, result)

    def _arena_atomic(self, st: State, insn: isa.Insn) -> None:
        """An atomic through an arena pointer (the kernel's PROBE_ATOMIC, x86-64 JIT): the
        engines do it at arena window + low 32 bits + off.  As the kernel: no alignment
        check (check_ptr_alignment skips PTR_TO_ARENA) and no bounds; the and/or/xor
        forms with FETCH are refused (x86's bpf_jit_supports_insn has no arena version of
        its cmpxchg loop).  The operands must be numbers, as for any atomic here."""
        if insn.imm in (ATOMIC_AND | FETCH, ATOMIC_OR | FETCH,
                        ATOMIC_XOR | FETCH):
            raise _Reject(f"BPF_ATOMIC stores into R{insn.dst} arena is not allowed")
        if insn.imm == CMPXCHG and self.read_reg(st, 0).t != SCALAR:
            raise _Reject("R0 leaks addr into mem")
        result = scalar(_sized_unknown(SIZE_BYTES[insn.size]))
        if insn.imm == CMPXCHG:
            st.frames[-1].regs[0] = result
        elif insn.imm & FETCH:
            self.write_reg(st, insn.src, result)

    def _bounds(self, ptr: Reg, regno: Num, off: Num, size: Num) -> tuple[int, int]:
        """Lowest and highest byte offsets (relative to the object) an access may touch."""
        v = ptr.var
        if v[2] <= -MAX_VAR_OFF or v[3] >= MAX_VAR_OFF:
            if v[2] < 0:
                raise _Reject(f"R{regno} min value is negative, either use unsigned index or do a if (index >=0) check.")
            raise _Reject(f"R{regno} unbounded memory access, make sure to bounds check any such access")
        lo = ptr.off + off + v[2]
        hi = ptr.off + off + v[3] + size
        return lo, hi

    def _mem_access(self, st: State, ptr: Reg, regno: Num, off: Num, size: Num, write: bool,
                    value: Reg | None = None, value_regno: Num = -1, signed: bool = False) -> Reg | None:
        t = ptr.t
        if ptr.null:
            raise _Reject(f"R{regno} invalid mem access '{ptr.type_name()}'")
        if t == PTR_STACK:
            # the kernel requires aligned stack accesses for every loader (its spill
            # tracking relies on it); other memory only for atomics (_do_atomic)
            _check_aligned(ptr, off, size, "stack ")
            return self._stack_access(st, ptr, regno, off, size, write, value, value_regno, signed)
        if write and value is not None and value.t >= PTR_CTX:     # (value.is_ptr)
            if t == PTR_CTX or not _is_arena_ptr(value):
                raise _Reject(f"R{value_regno} leaks addr into {'ctx' if t == PTR_CTX else 'mem'}")
            value = UNKNOWN_SCALAR   # an arena address is stored as plain data (see _is_arena_ptr)
        if t == PTR_CTX:
            return self._ctx_access(ptr, regno, off, size, write, signed)
        if t == PTR_ARENA:
            # any offset and size: the engines confine the access to the arena's window
            # (the kernel's check_mem_access for PTR_TO_ARENA checks nothing either)
            return None if write else _unknown_load(size, signed)
        if t == PTR_MAP_VALUE:
            vs = getattr(ptr.obj, "value_size", 0)
            lo, hi = self._bounds(ptr, regno, off, size)
            if lo < 0 or hi > vs:
                self._region_fault(ptr, regno, lo, hi, size, vs,
                                   f"invalid access to map value, value_size={vs}")
            sanity.check_var_not_negative(ptr, regno)
            if write and ptr.ro:
                raise _Reject(f"write into map forbidden, value_size={vs} off={lo} size={size}")
            if not write:
                known = _frozen_map_read(ptr, lo, size, signed)
                if known is not None:
                    return known
        elif t == PTR_MEM:
            lo, hi = self._bounds(ptr, regno, off, size)
            if lo < 0 or hi > ptr.size:
                self._region_fault(ptr, regno, lo, hi, size, ptr.size,
                                   f"invalid access to memory, mem_size={ptr.size}")
            sanity.check_var_not_negative(ptr, regno)
            if write and ptr.ro:
                raise _Reject(f"R{regno} cannot write into rdonly_mem")
        elif t == PTR_BUF:
            lo, hi = self._bounds(ptr, regno, off, size)
            if lo < 0 or hi > st.buf_min:
                # r1 is the kernel's context: its message last, our buffer's hint before
                raise _Reject(f"invalid bpf_context access off={lo} size={size}",
                              (f"R{regno}(r={st.buf_min}): compare the length (r2) against "
                               f"{hi} before the access",))
            if write and ptr.ro:
                raise _Reject(f"invalid bpf_context access off={lo} size={size}",
                              (f"R{regno} points to read-only data",))
        else:
            raise _Reject(f"R{regno} invalid mem access '{ptr.type_name()}'")
        if write:
            return None
        return _unknown_load(size, signed)

    @staticmethod
    def _region_fault(ptr: Reg, regno: int, lo: int, hi: int, size: int, limit: int,
                      what: str) -> None:
        """Refuse an access outside a map value or a memory region (``limit`` bytes) as the
        kernel's check_mem_region_access does: a variable part that may be negative and
        takes the access below the start is named as such; else the access at the lowest
        offset is tried, then at the highest, and the one that fails is printed (``what``
        names the region) with a last line naming that bound."""
        if ptr.var[2] < 0 and lo < 0:
            raise _Reject(f"R{regno} min value is negative, either use unsigned index or do "
                          "a if (index >=0) check.")
        side, at = ("min", lo) if lo < 0 or lo + size > limit else ("max", hi - size)
        raise _Reject(f"R{regno} {side} value is outside of the allowed memory range",
                      (f"{what} off={at} size={size}",))

    def _ctx_access(self, ptr: Reg, regno: int, off: int, size: int, write: bool, signed: bool) -> Reg | None:
        layout = ptr.obj
        if not sc.is_const(ptr.var):
            raise _Reject(f"variable ctx access var_off={sc.fmt(ptr.var)} disallowed")
        o = ptr.off + sc.s64(ptr.var[4]) + off
        fld = layout.field_at(o, size) if layout is not None else None
        if self._is_btf_struct(ptr):
            # the kernel's btf_struct_access on a PTR_TO_BTF_ID struct (7.2's texts)
            if write and (fld is None or o < 0 or not fld.write
                          or fld.value.kind != progtypes.SCALAR):
                raise _Reject(f"R{regno} cannot write into {ptr.type_name()} at off={o} "
                              f"size={size}")
            if o < 0 or o + size > layout.size:
                raise _Reject(f"access beyond struct {layout.name} at off {o} size {size}")
        if fld is None or o < 0:
            raise _Reject(f"invalid bpf_context access off={o} size={size}")
        if write:
            if not fld.write or fld.value.kind != progtypes.SCALAR:
                raise _Reject(f"invalid bpf_context access off={o} size={size} "
                              f"(field {fld.name} of {layout.name} is not writable)")
            return None
        if not fld.read:
            raise _Reject(f"invalid bpf_context access off={o} size={size} (field {fld.name} is not readable)")
        kind = fld.value
        if kind.kind == progtypes.SCALAR:
            return _unknown_load(size, signed)
        if o != fld.offset or size != 8 or signed:
            raise _Reject(f"invalid bpf_context access off={o} size={size} (pointer field {fld.name} must be read whole)")
        nid = self.new_id() if kind.nullable else 0
        if kind.kind == progtypes.TRUSTED:
            return Reg(PTR_TRUSTED, obj=kind.name, null=kind.nullable, id=nid)
        if kind.kind == progtypes.STRUCT:
            return Reg(PTR_CTX, obj=kind.layout, null=kind.nullable, id=nid)
        if kind.kind == progtypes.MEM:
            return Reg(PTR_MEM, size=kind.size, null=kind.nullable, id=nid, ro=not kind.writable)
        if kind.kind == progtypes.BUFFER:
            return Reg(PTR_BUF, null=kind.nullable, id=nid)
        raise _Reject(f"unsupported context field kind {kind.kind!r}")

    # ------------------------------------------------------------ stack

    def _frame_of(self, st: State, ptr: Reg) -> Frame:
        if ptr.frame >= len(st.frames):  # pragma: no cover - prevented at exit
            raise _Reject("stack pointer to a returned frame")
        return st.frames[ptr.frame]

    def _note_depth(self, frame: Frame, lo: Num) -> None:
        d = -lo
        if d > self.stack_depth.get(frame.subprog, 0):
            self.stack_depth[frame.subprog] = d

    def _stack_access(self, st: State, ptr: Reg, regno: Num, off: Num, size: Num, write: bool,
                      value: Reg | None, value_regno: Num, signed: bool) -> Reg | None:
        frame = self._frame_of(st, ptr)
        if sc.is_const(ptr.var):
            o = ptr.off + sc.s64(ptr.var[4]) + off
            if o < -STACK_SIZE or o + size > 0:
                raise _Reject(f"invalid {'write to' if write else 'read from'} stack R{regno} off={o} size={size}")
            self._note_depth(frame, o)
            if write:
                self._stack_write(st, frame, o, size, value, value_regno)
                return None
            return self._stack_read(frame, o, size, signed)
        lo, hi = self._bounds(ptr, regno, off, size)
        if lo < -STACK_SIZE or hi > 0:
            raise _Reject(f"invalid variable-offset {'write to' if write else 'read from'} stack "
                          f"R{regno} var_off={sc.fmt(ptr.var)} off={ptr.off + off} size={size}")
        self._note_depth(frame, lo)
        if write:
            if value is not None and value.is_ptr:
                raise _Reject(f"R{value_regno} spill of a pointer through a variable-offset stack pointer")
            self._stack_mark_written(frame, lo, hi, known=False)
            return None
        self._stack_check_init(frame, lo, hi, "invalid variable-offset read from stack R", regno)
        return _unknown_load(size, signed)

    @staticmethod
    def _byte_kind(frame: Frame, o: int) -> str:
        """What the stack byte at ``o`` holds: "0" (zero), "m" (data), "u" (unwritten),
        "p" (part of a spilled pointer) or "o" (part of an iterator/dynptr slot)."""
        k = (-o - 1) // 8
        slot = frame.stack.get(k)
        if slot is not None and (slot[0] == "B" or slot[0] == "H"):
            return slot[1][o - (-8 * (k + 1))]
        return _slot_kind(slot)

    def _stack_check_init(self, frame: Frame, lo: Num, hi: Num, what: str,
                          regno: Num = -1) -> None:
        """Every byte of [lo, hi) in ``frame`` holds data (:meth:`_byte_kind` "0" or "m");
        else the refusal names the lowest other byte, after ``what`` (and ``regno``, when
        given: the message is built only for a refusal).  Slot by slot: a bytes slot is
        searched for its first unwritten byte, a spill or object slot is one kind."""
        o = lo
        while o < hi:
            k = (-o - 1) // 8
            base = -8 * (k + 1)
            end = hi if hi < base + 8 else base + 8
            slot = frame.stack.get(k)
            if slot is not None and (slot[0] == "B" or slot[0] == "H"):
                j = slot[1].find("u", o - base, end - base)   # (bytes are "u", "m" or "0")
                bad = ""
                if j >= 0:
                    o = base + j
                    bad = "u"
            else:
                bad = _slot_kind(slot)      # one kind for all its bytes
                if bad == "0" or bad == "m":
                    bad = ""
            if bad:
                if regno >= 0:
                    what = f"{what}{regno}"
                if bad == "u":
                    raise _Reject(f"{what}: invalid read from stack off {o} (uninitialized)")
                if bad == "p":
                    raise _Reject(f"{what}: reading a spilled pointer at off {o} as bytes")
                raise _Reject(f"{what}: reading an iterator/dynptr slot at off {o}")
            o = end

    def _stack_mark_written(self, frame: Frame, lo: Num, hi: Num, known: bool, zero: bool = False) -> None:
        """Bytes [lo, hi) may have been written with unknown data (``known``: certainly written)."""
        for k in range((-hi) // 8, (-lo - 1) // 8 + 1):
            base = -8 * (k + 1)
            slot = frame.stack.get(k)
            if slot is not None and slot[0] == "O":
                raise _Reject(f"cannot overwrite {slot[1].kind} slot at fp{base}")
            if slot is None:
                cur = "uuuuuuuu"
            elif slot[0] == "B" or slot[0] == "H":
                cur = slot[1]
            else:
                r = slot[1]
                if r.t == SCALAR:
                    cur = "00000000" if r.var[5] == 0 and r.var[4] == 0 else "mmmmmmmm"
                else:
                    cur = "uuuuuuuu"    # leftover bytes of a pointer are not readable
            # the bytes of this slot in [lo, hi): slot[1] index j is address base + j
            j0 = lo - base if lo > base else 0
            j1 = hi - base if hi < base + 8 else 8
            if known:
                mid = ("0" if zero else "m") * (j1 - j0)
            else:
                mid = cur[j0:j1].replace("0", "m")
            frame.stack[k] = ("B", cur[:j0] + mid + cur[j1:])

    def _stack_write(self, st: State, frame: Frame, o: Num, size: Num, value: Reg, value_regno: Num) -> None:
        if value.t == PTR_STACK and value.frame > frame.frameno:
            raise _Reject("cannot spill pointers to stack into stack frame of the caller")
        if size == 8 and o % 8 == 0:
            k = (-o - 1) // 8
            slot = frame.stack.get(k)
            if slot is not None and slot[0] == "O":
                raise _Reject(f"cannot overwrite {slot[1].kind} slot at fp{o}")
            if value.t == SCALAR and 0 <= value_regno < 10 and st.frames[-1].regs[value_regno] is value:
                # a spill is a copy (the kernel's check_stack_write_fixed_off calls
                # assign_scalar_id_before_mov): the register and the slot share an id,
                # and a register linked with a delta gives that link up first
                value = self._id_before_mov(st, value_regno, value)
            frame.stack[k] = ("S", value)
            return
        if value.t >= PTR_CTX:      # (value.is_ptr: the fields, not the property)
            raise _Reject("invalid size of register spill")
        zero = (value.t == SCALAR and value.var[5] == 0
                and (value.var[4] & ((1 << (8 * size)) - 1)) == 0)
        k = (-o - 1) // 8
        old = frame.stack.get(k)
        self._stack_mark_written(frame, o, o + size, known=True, zero=zero)
        if size == 4 and o % 8 == 0 and value.t == SCALAR:
            # a 32-bit spill keeps its bounds (clang spills alu32 registers this way); like
            # the kernel, only at the start of a slot: a spill at fp-4 is plain data
            half = 0
            halves = list(old[2]) if old is not None and old[0] == "H" else [None, None]
            halves[half] = scalar(sc.trunc32(value.var))
            frame.stack[k] = ("H", frame.stack[k][1], tuple(halves))

    def _id_before_mov(self, st: State, regno: Num, src: Reg) -> Reg:
        """The kernel's assign_scalar_id_before_mov: a scalar copied by ``rX = rY`` gets
        an id shared with the copy, so a branch on either refines both.  A source that
        already has a delta link gives it up first (one delta per register: the copy
        would otherwise need a delta of a delta)."""
        r: Reg
        if src.id & ADD_CONST:
            r = copy_reg(src)
            r.id = 0
            r.off = 0
            src = r
            st.frames[-1].regs[regno] = src
        if src.id == 0 and src.var[5]:
            r = copy_reg(src)
            self.next_id += 1       # (new_id, inline)
            r.id = self.next_id
            src = r
            st.frames[-1].regs[regno] = src
        return src

    def _stack_read(self, frame: Frame, o: Num, size: Num, signed: bool) -> Reg:
        k = (-o - 1) // 8
        slot = frame.stack.get(k)
        if slot is not None and slot[0] == "S" and o % 8 == 0:
            r = slot[1]
            if size == 8:
                if r.t == NOT_INIT:
                    raise _Reject(f"invalid read from stack off {o}+0 size 8 (released reference)")
                return r
            if r.t != SCALAR:
                raise _Reject("invalid size of register fill")
            v = sc.truncate(r.var, size * 8)
            return scalar(sc.sext(v, size * 8) if signed else v)
        if slot is not None and slot[0] == "H" and size == 4 and o % 4 == 0:
            r = slot[2][0 if o % 8 == 0 else 1]
            if r is not None:
                return scalar(sc.sext(r.var, 32)) if signed else r
        kinds = [self._byte_kind(frame, x) for x in range(o, o + size)]
        for j, kd in enumerate(kinds):
            if kd == "u":
                raise _Reject(f"invalid read from stack off {o}+{j} size {size}")
            if kd == "p":
                raise _Reject("invalid size of register fill")
            if kd == "o":
                raise _Reject(f"cannot read iterator/dynptr slot at fp{o + j}")
        if kinds.count("0") == size:
            return const_reg(0)
        return _unknown_load(size, signed)

    # ------------------------------------------------------------ helper memory arguments

    def _check_mem_region(self, st: State, reg: Reg, regno: Num, size_lo: Num, size_hi: Num,
                          write: bool, init: bool, what: str = "") -> None:
        """A helper will read (``init``) or write ``size`` bytes, size in [size_lo, size_hi]."""
        if size_hi == 0:
            return
        if reg.null:
            raise _Reject(f"R{regno} type={reg.type_name()} expected={MEM_ARG_TYPES}")
        t = reg.t
        if t == PTR_STACK:
            frame = self._frame_of(st, reg)
            lo, _ = self._bounds(reg, regno, 0, 0)
            _, hi = self._bounds(reg, regno, 0, size_hi)
            if lo < -STACK_SIZE or hi > 0:
                # 7.2's check_stack_range_initialized names the helper's access like a load
                # or a store (6.x said "indirect access to")
                raise _Reject(f"invalid {'write to' if write else 'read from'} stack R{regno} "
                              f"off={lo} size={size_hi}")
            self._note_depth(frame, lo)
            if init:
                self._stack_check_init(frame, lo, hi, "invalid indirect read from stack R", regno)
            if write:
                # Like the kernel, a helper given "up to N bytes" of uninitialised stack is
                # taken to initialise all N (helpers clear what they do not fill).
                self._stack_mark_written(frame, lo, hi, known=sc.is_const(reg.var))
            return
        if t in (PTR_MAP_VALUE, PTR_MEM, PTR_BUF):
            lo, hi = self._bounds(reg, regno, 0, size_hi)
            limit = {PTR_MAP_VALUE: getattr(reg.obj, "value_size", 0), PTR_MEM: reg.size,
                     PTR_BUF: st.buf_min}[t]
            if lo < 0 or hi > limit:
                if t == PTR_BUF:
                    raise _Reject(f"invalid bpf_context access off={lo} size={size_hi}",
                                  (f"R{regno} helper memory past the proven length "
                                   f"({limit}){what}",))
                self._region_fault(reg, regno, lo, hi, size_hi, limit,
                                   f"invalid access to map value, value_size={limit}"
                                   if t == PTR_MAP_VALUE else
                                   f"invalid access to memory, mem_size={limit}")
            if write and reg.ro:
                # the kernel's check_map_access_type / the read-only memory's type name
                raise _Reject(f"write into map forbidden, value_size={limit} off={lo} "
                              f"size={size_hi}" if t == PTR_MAP_VALUE else
                              f"R{regno} cannot write into rdonly_mem" if t == PTR_MEM else
                              f"invalid bpf_context access off={lo} size={size_hi}")
            return
        if self._is_btf_struct(reg) and not reg.null and sc.is_const(reg.var) \
                and self._ctx_struct_bytes_ok(reg, size_hi, write):
            return      # a BTF struct the kernel reads and writes as memory (PTR_TO_BTF_ID)
        raise _Reject(f"R{regno} type={reg.type_name()} expected={MEM_ARG_TYPES}")

    def _is_btf_struct(self, reg: Reg) -> bool:
        """A struct that a context field points to (loop_step's ``iou_loop_params``): the
        kernel's PTR_TO_BTF_ID, memory as far as its fields allow, unlike the program's
        own context (r1 at entry), which atomics and memory arguments may not have."""
        return (reg.t == PTR_CTX and reg.obj is not None and reg.obj.kind == "struct"
                and reg.obj is not self.ptype.layout)

    @staticmethod
    def _ctx_struct_bytes_ok(reg: Reg, size: int, write: bool) -> bool:
        """Whether ``size`` bytes at a context struct pointer are all plain data fields the
        program may read (and, for ``write``, write): only then may memory-typed code (a
        global function's pointer parameter) have them.  Pointer fields and fields the
        program may not write stay out of reach, as in a direct access."""
        layout = reg.obj
        at = reg.off + sc.s64(reg.var[4])
        end = at + size
        if at < 0 or end > layout.size:
            return False
        while at < end:
            fld = next((f for f in layout.fields if f.offset <= at < f.offset + f.size), None)
            if (fld is None or not fld.read or fld.value.kind != progtypes.SCALAR
                    or (write and not fld.write)):
                return False
            at = fld.offset + fld.size
        return True


def arena_unrewrite(program: isa.Program) -> None:
    """Undo :meth:`MemoryMixin.arena_rewrite` before the program is verified again: the
    PROBE modes are the verifier's output, never its input."""
    if not program.arena_xlated:
        return
    program.insns[:] = [isa.plain_access(insn) for insn in program.insns]
    program.arena_xlated = False


def dead_code_restore(program: isa.Program) -> None:
    """Undo :meth:`MemoryMixin.sanitize_dead_code` before the program is verified again:
    the ``ja -1`` traps are the verifier's output, never its input."""
    for pc, insn in program.dead_code.items():
        program.insns[pc] = insn
    program.dead_code = {}
