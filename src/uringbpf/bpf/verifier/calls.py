"""Call checks: helpers and kfuncs (arguments, returns, references), BPF-to-BPF and
global functions, callbacks, iterators, dynptrs, spin locks, exit."""

from __future__ import annotations

from .. import isa
from ...errors import BpfLoadError
from ..helpers import Arg
from . import scalar as sc
from .scalar import (  # names: cheaper than module attributes, per instruction
    U32,
)
from ..isa import (  # names: cheaper than module attributes, per instruction
    CALL_HELPER, IND, MAX_CALL_DEPTH, PSEUDO_CALL, PSEUDO_KFUNC_CALL, STACK_SIZE,
)
from .state import (
    CONST_MAP, NOT_INIT, PTR_ARENA, PTR_BUF, PTR_CTX, PTR_FUNC, PTR_MAP_VALUE, PTR_MEM, PTR_STACK,
    PTR_TRUSTED, SCALAR, SLOT_UNINIT, UNINIT, UNKNOWN_SCALAR, Frame, ObjSlot, Reg, State,
    const_reg, copy_reg,
)
from .common import FUNC_ONLY_MAP_TYPES, MAP_TYPE_ONLY_FUNCS, MEM_ARG_TYPES
from .common import (
    Num, _BTF_KIND_ENUM, _BTF_KIND_ENUM64, _Checkpoint, _BTF_KIND_FUNC, _BTF_KIND_INT, _BTF_KIND_PTR,
    _BTF_KIND_STRUCT, ARENA_MEM, MAX_VAR_OFF, _BTF_FUNC_GLOBAL, _GlobalFunc,
    _MAP_TYPE_ARRAY, _MAP_TYPE_PERCPU_ARRAY, _RAW_READ_HELPERS, _Reject, _flag,
    _obj_type_name, _ArgK, _RetK, _DInsn, map_ro,
)

#: how often one verification recomputes the decided branches' precision (_branch_precision)
_BRANCH_PREC_RECOMPUTES = 16

#: the last line of a refusal for a reference still held at exit (the kernel's
#: check_resource_leak prefix); each held reference is named on a line before it
LEAK_AT_EXIT = "BPF_EXIT instruction in main prog would lead to reference leak"


def _iter_expected(what: str, tname: str, regno: int) -> str:
    """7.2's process_iter_arg refusal: an iterator constructor needs an uninitialised slot,
    every other iterator argument an initialised one of its type (``iter_num`` for
    ``bpf_iter_num``)."""
    kind = "iter_" + tname.removeprefix("bpf_iter_") if tname else "iter"
    if what.endswith("_new"):
        return f"expected uninitialized {kind} as R{regno}"
    return f"expected an initialized {kind} as R{regno}"


def _smin_smax(reg: Reg) -> str:
    """A return value as the kernel's verbose_invalid_scalar prints it: its signed bounds
    that are not the type's limits, else "unknown scalar value" (leading space included)."""
    smin, smax = reg.var[2], reg.var[3]
    text = (f" smin={smin}" if smin > -(1 << 63) else "") + (
        f" smax={smax}" if smax < (1 << 63) - 1 else "")
    return text or " unknown scalar value"


def _constant_array_key(st: State, key: Reg, size: Num) -> int | None:
    """The key of ``bpf_map_lookup_elem`` on an array map (of ``size``-byte keys) when the
    verifier knows it from the stack, as Linux 6.14+ reads it (get_constant_map_key): a
    key pointer into a frame at a constant offset, and there either key_size zero bytes
    from the key up to the top of its 8-byte slot, or a spilled constant scalar whose
    spilled bytes from the key to the top of the slot are exactly key_size (a 4-byte spill
    at the slot's start; the upper half of an 8-byte spill, which gives the whole spilled
    value, as there).  None: not known (the result stays nullable)."""
    if key.t != PTR_STACK or key.var[5] or key.frame >= len(st.frames) or size <= 0:
        return None
    o = key.off + sc.s64(key.var[4])
    k = (-o - 1) // 8
    base = -8 * (k + 1)
    top = base + 8                  # the key's bytes to the top of the slot: [o, top)
    slot = st.frames[key.frame].stack.get(k)
    if slot is None or size > top - o:
        return None
    kind = slot[0]
    if kind == "B" or kind == "H":
        kinds: str = slot[1]
        if kinds.count("0", o - base, o - base + size) == size:
            return 0
    if kind == "S" and top - o == size:
        r = slot[1]
    elif kind == "H" and o == base and size == 4:
        r = slot[2][0]              # the 32-bit spill at the slot's start
    else:
        return None
    if r is None or r.t != SCALAR or r.var[5]:
        return None
    return r.var[4]


# The argument kinds as _call_helper tells them apart (_CallPlan.kinds): small integers,
# compared in C in the compiled core, where Arg members would be Python compares
_K_ANYTHING, _K_SCALAR, _K_CTX, _K_MAP, _K_MAP_KEY, _K_MAP_VALUE, _K_MEM = range(7)
_K_SIZE, _K_SIZE_NONZERO, _K_ALLOC_SIZE, _K_RINGBUF_MEM, _K_TRUSTED, _K_FUNC = range(7, 13)
_K_STACK, _K_SPIN_LOCK, _K_UNSUPPORTED = range(13, 16)
_KIND_CODES = {
    Arg.ANYTHING: _K_ANYTHING, Arg.SCALAR: _K_SCALAR, Arg.CTX: _K_CTX,
    Arg.CONST_MAP_PTR: _K_MAP, Arg.MAP_KEY: _K_MAP_KEY, Arg.MAP_VALUE: _K_MAP_VALUE,
    Arg.MEM: _K_MEM, Arg.UNINIT_MEM: _K_MEM, Arg.MEM_OR_NULL: _K_MEM,
    Arg.CONST_SIZE: _K_SIZE_NONZERO, Arg.CONST_SIZE_OR_ZERO: _K_SIZE,
    Arg.CONST_ALLOC_SIZE: _K_ALLOC_SIZE, Arg.RINGBUF_MEM: _K_RINGBUF_MEM,
    Arg.TRUSTED_PTR: _K_TRUSTED, Arg.FUNC: _K_FUNC, Arg.STACK_PTR: _K_STACK,
    Arg.SPIN_LOCK: _K_SPIN_LOCK,
}


class _CallPlan:
    """What the checks of one helper or kfunc call instruction take from its prototype,
    worked out at the instruction's first visit (``_DInsn.call``): its flags parsed, its
    argument kinds as small integers, and the refusals that depend on nothing but the
    prototype and the program (type, sleepable).  A loop calls the same helper thousands
    of times; parsing the flags on each visit was a third of a call's checks.

    The map a call's map argument named last (``map``) comes with the facts the checks
    read from it (:meth:`set_map`), and ``map_checked`` is the map the helper/map-type
    verdict was last given for: the same map object on the next visit needs neither."""

    __slots__ = ("proto", "name", "is_kfunc", "helper_id", "args", "kinds", "refusal",
                 "ret", "ret_integer", "ret_void", "ret_map_value", "ret_mem", "ret_size",
                 "ret_size_arg", "special_args", "trusted_args", "release_idx", "raw_read",
                 "map_lookup", "iter_next", "iter_next_arg",
                 "slice_arg", "new_from_iter_arg", "nullable", "acquires", "elem_size",
                 "arena_ret", "map", "map_checked", "key_size", "value_size", "max_entries",
                 "array_map", "map_value")

    def __init__(self, proto, is_kfunc: bool, helper_id: int, ptype, sleepable: bool):
        name = self.name = proto.name
        self.proto = proto
        self.is_kfunc = is_kfunc
        self.helper_id = helper_id
        self.args = tuple(proto.args)
        self.kinds = tuple([_KIND_CODES.get(k, _K_UNSUPPORTED) for k in proto.args])
        # the refusals _call_helper makes before reading any argument, in its order
        self.refusal = None
        if proto.prog_types is not None and not (
                ({ptype.name} | set(ptype.groups)) & set(proto.prog_types)):
            self.refusal = (f"{'kfunc' if is_kfunc else 'helper'} {name} is not allowed in "
                            f"{ptype.name} programs")
        elif (proto.sleepable_only or _flag(proto, "KF_SLEEPABLE") is not None) and not sleepable:
            # the kernel's texts (check_kfunc_call / check_helper_call); a sleepable
            # program is one in a ".s" section
            self.refusal = (f"program must be sleepable to call sleepable kfunc {name}"
                            if is_kfunc else
                            f"sleepable helper {name}#{helper_id} in non-sleepable prog")
        elif len(proto.args) > 5:
            self.refusal = f"{name} has more than 5 arguments"
        self.ret = proto.ret
        # (what _ret_reg tells apart at every call, as C booleans)
        self.ret_integer = proto.ret == _RetK.INTEGER
        self.ret_void = proto.ret == _RetK.VOID
        self.ret_map_value = proto.ret == _RetK.MAP_VALUE_OR_NULL
        self.ret_mem = proto.ret in (_RetK.MEM_OR_NULL, _RetK.MEM, _RetK.RINGBUF_MEM_OR_NULL)
        self.ret_size = proto.ret_size
        self.ret_size_arg = -1 if proto.ret_size_arg is None else proto.ret_size_arg
        iter_new = _flag(proto, "ITER_NEW")
        iter_next = _flag(proto, "ITER_NEXT")
        iter_destroy = _flag(proto, "ITER_DESTROY")
        dyn_new = _flag(proto, "DYNPTR_NEW")
        dyn_use = _flag(proto, "DYNPTR")
        iter_arg = _flag(proto, "ITER_ARG")
        # the stack-object arguments (iterators, dynptrs), checked by _stack_object_arg
        special: dict[int, str] = {}
        if iter_new is not None:
            special[int(iter_new or 0)] = "iter_new"
        if iter_next is not None:
            special[int(iter_next or 0)] = "iter"
        if iter_destroy is not None:
            special[int(iter_destroy or 0)] = "iter"
        if iter_arg is not None:
            # ITER_ARG:n[:T] — arg n must be an initialised iterator (of type T), used
            # only as an argument: no next() loop point, no destroy (the kernel's __iter)
            special[int(iter_arg.split(":")[0] or 0)] = "iter_arg"
        if dyn_new is not None:
            special[int(dyn_new or 0)] = "dynptr_new"
        if dyn_use is not None:
            special[int(dyn_use or 0)] = "dynptr"
        self.special_args = special
        self.trusted_args = _flag(proto, "KF_TRUSTED_ARGS") is not None
        release_idx = proto.releases
        if release_idx is None and _flag(proto, "KF_RELEASE") is not None:
            release_idx = 0
        self.release_idx = release_idx
        self.raw_read = name in _RAW_READ_HELPERS
        self.map_lookup = name == "bpf_map_lookup_elem" and not is_kfunc
        self.iter_next = iter_next is not None
        self.iter_next_arg = int(iter_next or 0) if iter_next is not None else -1
        # a dynptr slice (tied to its dynptr), a dynptr made from an iterator's element
        self.slice_arg = (int(dyn_use or 0) if dyn_use is not None
                          and proto.ret in (_RetK.MEM_OR_NULL, _RetK.MEM) else -1)
        self.new_from_iter_arg = (int(iter_arg.split(":")[0] or 0)
                                  if dyn_new is not None and iter_arg is not None else -1)
        # the return value (_ret_reg)
        self.nullable = (_flag(proto, "RET_NULL") is not None
                         or _flag(proto, "KF_RET_NULL") is not None or self.iter_next)
        self.acquires = bool(proto.acquires or _flag(proto, "KF_ACQUIRE") is not None)
        self.elem_size = _flag(proto, "RET_ELEM_SIZE")
        self.arena_ret = _flag(proto, "ARENA_RET") is not None
        self.map = self.map_checked = self.map_value = None
        self.key_size = self.value_size = self.max_entries = 0
        self.array_map = False

    def set_map(self, m) -> None:
        """Read the facts the checks need from ``m``, the map the map argument names now."""
        self.map = m
        self.key_size = getattr(m, "key_size", 0)
        self.value_size = getattr(m, "value_size", 0)
        self.max_entries = getattr(m, "max_entries", 0)
        self.array_map = getattr(m, "type", None) in (_MAP_TYPE_ARRAY, _MAP_TYPE_PERCPU_ARRAY)
        # the value pointer a lookup returns, but for its id (_ret_reg)
        self.map_value = Reg(PTR_MAP_VALUE, obj=m, null=True, ro=map_ro(m))


class CallsMixin:
    """Helper, kfunc, BPF-to-BPF and global-function calls; iterators, dynptrs, spin
    locks, references; exit.

    The base of the verifier's class chain (``Verifier(TransferMixin(MemoryMixin(
    CallsMixin)))``): the compiled core makes each an extension type, with every
    attribute of the verifier declared here (calls.pxd), and the small helpers every
    part calls per instruction (registers, decided branches) defined here, so those
    calls are C calls from each subclass."""

    # ------------------------------------------------------------ registers

    def read_reg(self, st: State, regno: Num) -> Reg:
        """Register ``regno`` of the current frame; refuses an uninitialised one (``!read_ok``)."""
        f: Frame = st.frames[-1]    # (typed locals: struct reads in the compiled core)
        r: Reg = f.regs[regno]
        if r.t == NOT_INIT:
            raise _Reject(f"R{regno} !read_ok")
        return r

    def write_reg(self, st: State, regno: Num, reg: Reg) -> None:
        """Set register ``regno`` of the current frame; r10 is read-only."""
        if regno == 10:
            raise _Reject("frame pointer is read only")
        f: Frame = st.frames[-1]
        f.regs[regno] = reg

    def _branch_decided(self, st: State) -> None:
        """The conditional jump at ``self.pc`` went one way only because of register
        values: :meth:`_mark_decided`, and its operands count as precise from now on in
        comparisons against decided checkpoints (:meth:`_branch_precision`)."""
        if self.pc not in self.decided_pcs:
            self.decided_pcs.add(self.pc)
            self._branch_prec = None
        self._mark_decided(st)

    def _branch_precision(self) -> tuple:
        """``(precise registers, precise slots)`` per instruction for comparisons against
        a decided checkpoint: the operands of every branch decided so far count (all of
        those below a finished checkpoint were decided before it finished).  Recomputed
        when a new branch was decided; after :data:`_BRANCH_PREC_RECOMPUTES` recomputations
        every comparison counts (``Cfg.precise_branch_in``: more precise registers, always
        sound), so a program deciding many branches one by one pays a bounded cost."""
        if self._branch_prec is None:
            cfg = self.cfg
            if self._branch_recomputes >= _BRANCH_PREC_RECOMPUTES:
                self._branch_prec = (cfg.precise_branch_in, cfg.precise_slots_branch)
            else:
                self._branch_recomputes += 1
                self._branch_prec = cfg.branch_precision(frozenset(self.decided_pcs))
        return self._branch_prec

    def _mark_decided(self, st: State) -> None:
        """Some branch of the path of ``st`` was decided by register values: every
        checkpoint above it (up to one already marked) must be compared exactly."""
        c: _Checkpoint = st.checkpoint
        while c is not None and not c.decided:
            c.decided = True
            c = c.parent

    # ------------------------------------------------------------ calls

    def _do_call(self, st: State, insn: isa.Insn, pc: Num) -> int:
        if st.lock is not None:
            # like the kernel (6.10+): a static subprogram may run with the lock held (its
            # own calls meet this same rule, the lock state goes along); of the helpers and
            # kfuncs we have, only the unlock (the kernel's other exceptions are rbtree and
            # list kfuncs, which we do not provide)
            if insn.src == PSEUDO_CALL:
                if pc + insn.imm + 1 in self.global_funcs:
                    raise _Reject("global function calls are not allowed while holding a lock")
            else:
                h = self._callee(insn) if insn.src == CALL_HELPER else None
                if h is None or h.proto.name not in ("bpf_spin_unlock", "bpf_spin_lock"):
                    raise _Reject("function calls are not allowed while holding a lock")
        if insn.src == PSEUDO_CALL:
            return self._call_subprog(st, pc, pc + insn.imm + 1)
        h = self._callee(insn)
        if insn.src == CALL_HELPER:
            if h is None:
                raise _Reject(f"invalid func unknown#{insn.imm}")
        else:
            name = self.program.kfuncs[insn.imm]
            if h is None:
                raise _Reject(f"calling kernel function {name} is not allowed")
        self._call_helper(st, self._call_plan(insn, h), pc)
        return pc + 1

    @staticmethod
    def _check_map_func(m, name: str, helper_id: int) -> None:
        """The helper and the map type must go together (check_map_func_compatibility, after
        the arguments): a ring buffer only with the ringbuf helpers, those only with a ring
        buffer, the per-CPU lookup only with a per-CPU map.  The runtime checks the type as
        well; this is the kernel's verdict, at load time."""
        mtype = getattr(m, "type", None)
        only_funcs = MAP_TYPE_ONLY_FUNCS.get(mtype)
        only_types = FUNC_ONLY_MAP_TYPES.get(name)
        if (only_funcs is not None and name not in only_funcs) or (
                only_types is not None and mtype not in only_types):
            raise _Reject(f"cannot pass map_type {mtype} into func {name}#{helper_id}")

    def _call_subprog(self, st: State, pc: int, target: int) -> int:
        gf = self.global_funcs.get(target)
        if gf is not None:
            return self._call_global(st, pc, gf)
        if len(st.frames) >= MAX_CALL_DEPTH:
            raise _Reject(f"the call stack of {len(st.frames) + 1} frames is too deep")
        caller = st.cur
        f = Frame(len(st.frames), target, pc)
        for i in range(1, 6):
            f.regs[i] = caller.regs[i]
        f.regs[10] = Reg(PTR_STACK, frame=f.frameno)
        st.frames.append(f)
        if self.log_level:
            self.log(f"caller:\n {st.frames[-2].frameno}: {self.state.fmt_regs(caller)}\ncallee:\n {st.fmt_regs()}")
        return target

    # ------------------------------------------------------------ global functions

    def _find_global_funcs(self) -> dict[int, "_GlobalFunc"]:
        """Subprograms with global (non-static) linkage in BTF: the kernel verifies each
        once, on its own, against its BTF signature, and a caller sees only that
        signature (arguments checked, r0 an unknown scalar)."""
        names = getattr(self.program, "func_names", None) or {}
        btf = getattr(self.program, "btf", None)
        out: dict[int, _GlobalFunc] = {}
        if btf is None:
            return out
        for idx, entry in enumerate(sorted(self.cfg.entries)):
            name = names.get(entry)
            if entry == 0 or name is None:
                continue
            t = btf.find(name, _BTF_KIND_FUNC)
            if t is None or t.linkage != _BTF_FUNC_GLOBAL:
                continue
            out[entry] = _GlobalFunc(idx, name, entry, self._global_args(btf, t, idx, name),
                                     void=btf.resolve(t.ref).ref == 0)
        return out

    def _global_args(self, btf, func, idx: int, name: str) -> list[tuple]:
        proto = btf.resolve(func.ref)
        if len(proto.params) > 5:
            raise _Reject(f"Global function {name}() has more than 5 arguments")
        args: list[tuple] = []
        ctx_names = {"__sk_buff"}
        layout = self.ptype.layout
        if layout is not None and getattr(layout, "name", ""):
            ctx_names.add(layout.name)
        for i, p in enumerate(proto.params):
            t = btf.resolve(p.type)
            if t.kind in (_BTF_KIND_INT, _BTF_KIND_ENUM, _BTF_KIND_ENUM64):
                args.append(("scalar",))
                continue
            if t.kind == _BTF_KIND_PTR:
                pointee = btf.resolve(t.ref)
                if pointee.kind == _BTF_KIND_STRUCT and pointee.name in ctx_names:
                    args.append(("ctx",))
                    continue
                try:
                    size = btf.size_of(pointee.id) if pointee.id else 0
                except BpfLoadError:    # void, a function, a forward declaration: no size
                    size = 0
                if size > 0:
                    args.append(("mem", size))
                    continue
                raise _Reject(f"func#{idx} '{name}' arg#{i} reference type('{btf.type_name(p.type)}') "
                              "size cannot be determined")
            raise _Reject(f"func#{idx} '{name}' arg#{i} type {btf.type_name(p.type)} is not supported")
        return args

    def _call_global(self, st: State, pc: int, gf: "_GlobalFunc") -> int:
        regs = st.frames[-1].regs
        for i, kind in enumerate(gf.args):
            regno = i + 1
            reg = self.read_reg(st, regno)
            bad = None
            if kind[0] == "scalar":
                if reg.t != SCALAR:
                    bad = f"R{regno} is not a scalar"
            elif kind[0] == "ctx":
                if reg.t not in (PTR_CTX, PTR_BUF) or reg.off or not sc.is_const(reg.var) \
                        or reg.var[4] or reg.null:
                    bad = f"arg#{i} expected pointer to ctx, but got {reg.type_name()}"
            else:
                size = kind[1]
                if reg.t == SCALAR and reg.is_const and reg.value == 0:
                    pass        # NULL is a valid argument: the callee must check
                elif not reg.is_ptr:
                    bad = f"R{regno} type={reg.type_name()} expected pointer to {size} bytes"
                else:
                    # the callee may read and write all of it; the parameter is
                    # PTR_TO_MEM | PTR_MAYBE_NULL, so a pointer that may be NULL is checked
                    # as if it were not (the kernel's check_mem_reg)
                    if reg.null:
                        reg = reg.replace(null=False)
                    try:
                        self._check_mem_region(st, reg, regno, size, size, write=True, init=True)
                    except _Reject as exc:      # the kernel names the call on the last line
                        bad = "\n".join((*exc.pre, exc.message))
            if bad is not None:
                raise _Reject(f"Caller passes invalid args into func#{gf.idx} ('{gf.name}')",
                              (bad,))
        for i in range(1, 6):
            regs[i] = UNINIT
        regs[0] = UNKNOWN_SCALAR
        return pc + 1

    def _verify_global_func(self, entry: int) -> None:
        """Explore a global function from its entry with only its signature known."""
        gf = self.global_funcs[entry]
        st = State()
        f = Frame(0, entry, -1)
        f.regs[10] = Reg(PTR_STACK, frame=0)
        base = self._entry_state().frames[0]
        for i, kind in enumerate(gf.args):
            if kind[0] == "scalar":
                f.regs[i + 1] = UNKNOWN_SCALAR
            elif kind[0] == "ctx":
                f.regs[i + 1] = base.regs[1]
            else:   # possibly NULL memory of the declared size
                f.regs[i + 1] = Reg(PTR_MEM, size=kind[1], null=True, id=self.new_id())
        st.frames.append(f)
        if self.ptype.ctx == "buffer":
            st.buf_min = self.ptype.buffer_min_size
        self._in_global = entry
        if self.log_level:
            self.log(f"Validating {gf.name}() func#{gf.idx}...")
        self._explore(st, entry)
        self._in_global = None

    def _enter_callback(self, st: State, callsite: int, entry: int, ctx_reg: Reg, instance: int) -> None:
        """Push the frame of a helper-called callback: r1 = iteration index, r2 = its ctx.

        The caller's r0 slot keeps the ctx argument (as ``obj``) while the callback runs,
        so that the next call can pass it again."""
        if len(st.frames) >= MAX_CALL_DEPTH:
            raise _Reject(f"the call stack of {len(st.frames) + 1} frames is too deep")
        st.cb_steps += 1
        caller = st.cur
        for i in range(1, 6):
            caller.regs[i] = UNINIT
        caller.regs[0] = Reg(NOT_INIT, obj=ctx_reg)
        f = Frame(len(st.frames), entry, callsite, callback=instance)
        f.regs[1] = Reg(SCALAR, sc.urange(0, U32))
        f.regs[2] = ctx_reg
        f.regs[10] = Reg(PTR_STACK, frame=f.frameno)
        st.frames.append(f)

    def _do_ld_abs(self, st: State, insn: isa.Insn) -> None:
        """BPF_LD | ABS/IND (the kernel's check_ld_abs): r0 = the big-endian value at data +
        imm (+ src), read through R6, which must be the unmodified context (our data
        buffer); out of bounds the program ends with 0, so no reference may be held.
        R1-R5 become unreadable and r0 an unknown scalar, as in the kernel."""
        if self.ptype.name != "socket_filter":
            raise _Reject("BPF_LD_[ABS|IND] instructions not allowed for this program type")
        regs = st.frames[-1].regs
        ctx = self.read_reg(st, 6)
        if st.refs:
            raise _Reject("BPF_LD_[ABS|IND] would lead to reference leak")
        if st.lock is not None:
            raise _Reject("BPF_LD_[ABS|IND] cannot be used inside bpf_spin_lock-ed region")
        if ctx.t != PTR_BUF:
            raise _Reject("at the time of BPF_LD_ABS|IND R6 != pointer to skb")
        if insn.mode == IND:
            off = self.read_reg(st, insn.src)
            if off.t != SCALAR:
                # the kernel (root) takes any register; an address as the offset would
                # tell, by ending the program or not, whether it is below the length
                raise _Reject(f"R{insn.src} pointer as LD_IND offset")
        if ctx.off or not sc.is_const(ctx.var) or ctx.var[4]:
            off = ctx.off + sc.s64(ctx.var[4])
            raise _Reject(f"dereference of modified ctx ptr R6 off={off} disallowed")
        for i in range(1, 6):
            regs[i] = UNINIT
        regs[0] = UNKNOWN_SCALAR

    def _do_exit(self, st: State) -> int | None:
        if st.lock is not None and (len(st.frames) == 1 or st.cur.callback):
            # the kernel checks the lock at the main program's exit only (a static
            # subprogram may return with it held, its caller unlocks); a callback that
            # returned holding it would take it again on its next call
            raise _Reject("bpf_spin_unlock is missing")
        f = st.cur
        r0 = f.regs[0]
        if r0.t == PTR_ARENA and len(st.frames) == 1:
            r0 = UNKNOWN_SCALAR   # program exit: an arena pointer is a number (Linux 7.2)
        if len(st.frames) == 1 and (self.ptype.ret_void or (
                self._in_global is not None and self.global_funcs[self._in_global].void)):
            # check_return_code: a void struct_ops member's or global function's R0 is
            # never read (the caller sees an unknown scalar)
            if st.refs:
                rid, (kind, at) = next(iter(st.refs.items()))
                raise _Reject(LEAK_AT_EXIT, (f"Unreleased reference id={rid} alloc_insn={at}",))
            return None
        # a static subprogram hands R0 back as it is, even unset (the kernel's
        # prepare_func_exit): clang drops the return value nobody reads; the caller's
        # read of it is what fails then
        if r0.t == NOT_INIT and not (len(st.frames) > 1 and not f.callback):
            raise _Reject("R0 !read_ok")
        if len(st.frames) > 1 and f.callback:
            if r0.t != SCALAR or r0.var[2] < 0 or r0.var[3] > 1:
                raise _Reject(f"At callback return the register R0 has{_smin_smax(r0)} "
                              "should have been in [0, 1]")
            st.frames.pop()
            caller = st.cur
            # the helper may call the callback again ...
            again = st.copy()
            if again.checkpoint is not None:
                again.checkpoint.live += 1
            self._enter_callback(again, f.callsite, f.subprog, caller.regs[0].obj, f.callback)
            self._push(f.subprog, again, self.pc)
            # ... or return
            caller.regs[0] = UNKNOWN_SCALAR
            for i in range(1, 6):
                caller.regs[i] = UNINIT
            return f.callsite + 1
        if len(st.frames) > 1:
            if r0.t == PTR_STACK and r0.frame >= f.frameno:
                raise _Reject("cannot return stack pointer to the caller")
            st.frames.pop()
            caller = st.cur
            caller.regs[0] = r0
            for i in range(1, 6):
                caller.regs[i] = UNINIT
            return f.callsite + 1
        if self._in_global is not None:
            if r0.t != SCALAR:
                raise _Reject("At subprogram exit the register R0 is not a scalar value")
            if st.refs:
                rid, (kind, at) = next(iter(st.refs.items()))
                raise _Reject(LEAK_AT_EXIT, (f"Unreleased reference id={rid} alloc_insn={at}",))
            return None
        if r0.t != SCALAR:
            raise _Reject("R0 leaks addr as return value")
        rr = self.ptype.ret_range
        if rr is not None:
            lo, hi = rr
            if r0.var[2] < lo or r0.var[3] > hi:
                raise _Reject(f"At program exit the register R0 has{_smin_smax(r0)} "
                              f"should have been in [{lo}, {hi}]")
        if st.refs:
            rid, (kind, at) = next(iter(st.refs.items()))
            raise _Reject(LEAK_AT_EXIT, (f"Unreleased reference id={rid} alloc_insn={at}",))
        return None

    def _release(self, st: State, ref: int) -> None:
        st.refs.pop(ref, None)
        for f, where, r in list(st.all_regs()):
            if r.ref == ref:
                st.set_reg_anywhere(f, where, UNINIT)

    def _callee(self, insn: isa.Insn):
        """The helper or kfunc a call instruction names (None: unknown), from the platform,
        asked once per verification and (kind, id): the CFG's analyses and every visit of
        the call ask again."""
        key = (insn.src, insn.imm)
        if key in self._callees:
            return self._callees[key]
        h = self._callees[key] = self._find_callee(insn)
        return h

    def _find_callee(self, insn: isa.Insn):
        if insn.src == CALL_HELPER:
            return self.platform.get_helper(insn.imm)
        if insn.src == PSEUDO_KFUNC_CALL:
            if not 0 <= insn.imm < len(self.program.kfuncs):
                return None
            return self.platform.get_kfunc(self.program.kfuncs[insn.imm])
        return None

    def _check_mem_region(self, st: State, reg: Reg, regno: Num, size_lo: Num, size_hi: Num,
                          write: bool, init: bool, what: str = "") -> None:
        """A helper will read (``init``) or write ``size`` bytes of the memory ``reg`` points
        to, size in [size_lo, size_hi]: MemoryMixin's check.  (Declared on the base link so
        that the call checks here reach it as a C call in the compiled core.)"""
        raise NotImplementedError("MemoryMixin._check_mem_region")

    def _call_plan(self, insn: _DInsn, h) -> _CallPlan:
        """The call instruction's :class:`_CallPlan`, made at its first visit."""
        plan = insn.call
        if plan is None:
            plan = insn.call = _CallPlan(h.proto, h.is_kfunc, insn.imm, self.ptype,
                                         self.sleepable)
        return plan

    def _call_helper(self, st: State, plan: _CallPlan, pc: Num) -> None:
        proto = plan.proto
        name = plan.name
        self._ret_size_value = None
        if plan.ret_size_arg >= 0:
            sreg: Reg = st.frames[-1].regs[plan.ret_size_arg + 1]
            if sreg.t == SCALAR and sreg.var[5] == 0:
                self._ret_size_value = sreg.var[4]
            elif plan.ret_mem:
                # the kernel's texts: a kfunc's size argument (check_kfunc_args), a
                # helper's (check_func_arg, stray quote included)
                raise _Reject(f"R{plan.ret_size_arg + 1} is not a const" if plan.is_kfunc else
                              f"R{plan.ret_size_arg + 1} is not a known constant'")
        if plan.refusal is not None:
            raise _Reject(plan.refusal)
        regs = st.frames[-1].regs
        special_args = plan.special_args
        meta_map = None
        const_key = None        # an array lookup's key, when the verifier knows it
        alloc_size = None
        callback = None
        pending = -1            # the register of a memory argument waiting for its size
        pending_kind = None
        release_idx = plan.release_idx
        kinds = plan.kinds
        for i in range(len(kinds)):
            regno = i + 1
            if i in special_args:
                self.read_reg(st, regno)
                continue
            reg = self.read_reg(st, regno)
            code = kinds[i]
            kind = plan.args[i]
            if code == _K_SIZE or code == _K_SIZE_NONZERO:
                if reg.t != SCALAR:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=scalar")
                v = reg.var
                if v[2] < 0:
                    raise _Reject(f"R{regno} min value is negative, either use unsigned or 'var &= const'")
                if v[1] >= MAX_VAR_OFF:
                    raise _Reject(f"R{regno} unbounded memory access, use 'var &= const' or 'if (var < const)'")
                if code == _K_SIZE_NONZERO and v[0] == 0:
                    raise _Reject(f"R{regno} invalid zero-sized read: u64=[0,0]")
                if pending >= 0:
                    preg = regs[pending]
                    if pending_kind == _ArgK.MEM_OR_NULL and preg.t == SCALAR:
                        if not (preg.is_const and preg.value == 0) or v[1] != 0:
                            raise _Reject(f"R{pending} NULL memory needs a zero size")
                    else:
                        self._check_mem_region(st, preg, pending, v[0], v[1],
                                               write=pending_kind == _ArgK.UNINIT_MEM,
                                               init=pending_kind != _ArgK.UNINIT_MEM)
                    pending = -1
                continue
            if pending >= 0:
                self._check_fixed_mem(st, pending, pending_kind, regs)
                pending = -1
            if code == _K_ANYTHING:
                continue
            if code == _K_SCALAR:
                if reg.t != SCALAR:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=scalar")
            elif code == _K_CTX:
                if reg.t != PTR_CTX or reg.off or not sc.is_const(reg.var) or reg.var[4] or reg.null:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=ctx (unmodified)")
            elif code == _K_MAP:
                if reg.t != CONST_MAP:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=map_ptr")
                meta_map = reg.obj
                if meta_map is not plan.map:
                    plan.set_map(meta_map)
            elif code == _K_MAP_KEY or code == _K_MAP_VALUE:
                if meta_map is None:
                    raise _Reject(f"R{regno} map key/value argument without a map argument before it")
                size = plan.key_size if code == _K_MAP_KEY else plan.value_size
                if size == 0:
                    # a ring buffer's key/value (check_stack_range_initialized)
                    raise _Reject("invalid zero-sized read")
                self._check_mem_region(st, reg, regno, size, size, write=False, init=True)
                if code == _K_MAP_KEY and plan.map_lookup and plan.array_map:
                    const_key = _constant_array_key(st, reg, size)
            elif code == _K_MEM:
                if kind != _ArgK.MEM_OR_NULL or reg.t != SCALAR:
                    if reg.t == SCALAR:
                        raise _Reject(f"R{regno} type=scalar expected={MEM_ARG_TYPES}")
                pending = regno
                pending_kind = kind
            elif code == _K_ALLOC_SIZE:
                if not reg.is_const or reg.value == 0 or reg.value >= MAX_VAR_OFF:
                    raise _Reject(f"R{regno} must be a known constant size > 0")
                alloc_size = reg.value
            elif code == _K_RINGBUF_MEM:
                if reg.t != PTR_MEM or not reg.ref or reg.null:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=ringbuf_mem")
                if reg.off or not sc.is_const(reg.var) or reg.var[4]:
                    raise _Reject(f"R{regno} must have zero offset when passed to release func or trusted arg to kfunc")
                if release_idx is None:
                    release_idx = i
            elif code == _K_TRUSTED:
                if reg.t != PTR_TRUSTED or reg.null:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=trusted_ptr")
                if plan.trusted_args and (reg.off or reg.var[4]):
                    raise _Reject(f"R{regno} must be an unmodified trusted pointer")
            elif code == _K_FUNC:
                if reg.t != PTR_FUNC:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=func")
                if callback is not None:
                    raise _Reject(f"{name}: more than one callback argument")
                nxt = regs[regno + 1] if regno < 5 and i + 1 < len(kinds) else UNINIT
                callback = (reg.size, nxt)
            elif code == _K_STACK:
                if reg.t != PTR_STACK:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=fp")
            elif code == _K_SPIN_LOCK:
                if reg.t != PTR_MAP_VALUE:
                    raise _Reject(f"R{regno} type={reg.type_name()} expected=map_value (spin lock)")
                self._check_mem_region(st, reg, regno, 4, 4, write=True, init=False)
                self._spin_lock_arg(st, name, reg, regno)
            else:
                raise _Reject(f"R{regno} argument kind {kind} is not supported by the verifier")
        if pending >= 0:
            self._check_fixed_mem(st, pending, pending_kind, regs)
        if meta_map is not None and not plan.is_kfunc and plan.map_checked is not meta_map:
            # (a verdict on the pair: once per call instruction and map)
            self._check_map_func(meta_map, name, plan.helper_id)
            plan.map_checked = meta_map
        if plan.raw_read:
            self._check_raw_read_src(st, regs)
        # releases
        if release_idx is not None:
            reg = regs[release_idx + 1]
            if reg.t == NOT_INIT or not reg.ref or reg.ref not in st.refs or reg.null:
                raise _Reject(f"R{release_idx + 1} must be referenced (and non-null) when passed to "
                              f"release function {name}")
            self._release(st, reg.ref)
        # stack objects (iterators, dynptrs)
        iter_reg = regs[plan.iter_next_arg + 1] if plan.iter_next_arg >= 0 else None
        slice_of = None
        if plan.slice_arg >= 0:
            slice_of = self._stack_obj_at(st, regs[plan.slice_arg + 1])
        iter_of_new = None
        if plan.new_from_iter_arg >= 0:
            iter_of_new = self._stack_obj_at(st, regs[plan.new_from_iter_arg + 1])
        self._new_dynptr_parent = iter_of_new.ref if iter_of_new is not None else 0
        for i, what in special_args.items():
            self._stack_object_arg(st, proto, pc, i + 1, what)
        if callback is not None:
            # one path runs the callback (again and again, see _do_exit); this one
            # returns from the helper without calling it
            cb_state = st.copy()
            if cb_state.checkpoint is not None:
                cb_state.checkpoint.live += 1
            self._enter_callback(cb_state, pc, callback[0], callback[1], self.new_id())
            self._push(callback[0], cb_state, pc)
        # clobber caller-saved registers, set r0
        for i in range(1, 6):
            regs[i] = UNINIT
        r0 = self._ret_reg(st, plan, pc, meta_map, alloc_size)
        if const_key is not None and 0 <= const_key < plan.max_entries:
            # an array element that exists: never NULL (the kernel's elided nullness,
            # Linux 6.14+, check_helper_call); it keeps its id for bpf_spin_lock pairing
            r0 = copy_reg(r0)
            r0.null = False
        if slice_of is not None and r0.t >= PTR_CTX:
            # tied to its dynptr, like the kernel's dynptr_id (#13 item 7)
            r0 = r0.replace(dyn=slice_of.id)
        regs[0] = r0
        if iter_reg is not None:
            it = self._iter_obj(st, iter_reg)
            if it is not None:
                # the element's page changes: dynptrs made from it, and their slices, go
                self._invalidate_iter_children(st, it.ref)
            self._iter_next_fork(st, iter_reg, pc)

    @staticmethod
    def _spin_lock_arg(st: State, name: str, reg: Reg, regno: int) -> None:
        """Lock/unlock pairing on every path, like the kernel: one lock at a time, the
        unlock names the same lock (same map value, same offset), none held at exit."""
        if not sc.is_const(reg.var):
            raise _Reject(f"R{regno} bpf_spin_lock at a variable offset is not allowed")
        lock = (reg.obj, reg.id, reg.off + sc.s64(reg.var[4]))
        if name == "bpf_spin_lock":
            if st.lock is not None:
                raise _Reject("Locking two bpf_spin_locks are not allowed")
            st.lock = lock
        elif name == "bpf_spin_unlock":
            if st.lock is None:
                raise _Reject("bpf_spin_unlock without taking a lock")
            if st.lock[0] is not lock[0] or st.lock[1] != lock[1] or st.lock[2] != lock[2]:
                raise _Reject("bpf_spin_unlock of different lock")
            st.lock = None

    def _check_raw_read_src(self, st: State, regs) -> None:
        """``bpf_probe_read*(dst, size, src)`` copies from any address.  Given an address
        the verifier knows (the stack, the context), it must not copy pointer bytes or
        stale bytes that may hold an old pointer: that would turn a pointer into data
        (#13 item 4).  Plain addresses are checked at run time (docs/verifier.md)."""
        src, size = regs[3], regs[2]
        if src.t == PTR_CTX:
            raise _Reject("R3 bpf_probe_read of the context would leak its pointers")
        if src.t != PTR_STACK or size.t != SCALAR:
            return
        hi_size = size.var[1]
        if hi_size == 0:
            return
        if hi_size >= MAX_VAR_OFF:
            raise _Reject("R2 unbounded memory access, use 'var &= const' or 'if (var < const)'")
        frame = self._frame_of(st, src)
        lo, hi = self._bounds(src, 3, 0, hi_size)
        if lo < -STACK_SIZE or hi > 0:
            raise _Reject(f"invalid read from stack R3 off={lo} size={hi_size}")
        self._stack_check_init(frame, lo, hi, "invalid indirect read from stack R3")

    def _check_fixed_mem(self, st: State, regno: int, kind: Arg, regs) -> None:
        """A memory argument with no size argument after it: at least one byte."""
        reg = regs[regno]
        if kind == _ArgK.MEM_OR_NULL and reg.t == SCALAR and reg.is_const and reg.value == 0:
            return
        self._check_mem_region(st, reg, regno, 1, 1, write=kind == _ArgK.UNINIT_MEM,
                               init=kind != _ArgK.UNINIT_MEM)

    def _stack_object_arg(self, st: State, proto, pc: int, regno: int, what: str):
        reg = self.read_reg(st, regno)
        if reg.t != PTR_STACK or not sc.is_const(reg.var):
            raise _Reject(f"R{regno} expected a pointer to a stack slot for {proto.name}")
        o = reg.off + sc.s64(reg.var[4])
        objkind = "iter" if what.startswith("iter") else "dynptr"
        size_flag = _flag(proto, "ITER_SIZE" if objkind == "iter" else "DYNPTR_SIZE")
        size = int(size_flag) if size_flag else (8 if objkind == "iter" else 16)
        nslots = max(1, (size + 7) // 8)
        if o % 8 or o < -STACK_SIZE or o + 8 * nslots > 0:
            if objkind == "iter" and what != "iter_arg":
                # 7.2's process_iter_arg: the slot is not a valid (un)initialised iterator
                raise _Reject(_iter_expected(what, _obj_type_name(proto.name), regno))
            raise _Reject(f"R{regno} misaligned or out of range {objkind} slot fp{o}")
        frame = self._frame_of(st, reg)
        self._note_depth(frame, o)
        first = (-o - 1) // 8
        if what == "iter_arg":
            want = (_flag(proto, "ITER_ARG") or "").partition(":")[2]
            slot = frame.stack.get(first)
            if (slot is None or slot[0] != "O" or slot[1].first != first
                    or slot[1].kind != "iter" or (want and slot[1].type != want)):
                raise _Reject(_iter_expected("iter", want, regno))
            return None
        keys = [first - j for j in range(nslots)]
        tname = _obj_type_name(proto.name)
        if what.endswith("_new"):
            stale: list[ObjSlot] = []
            for k in keys:
                slot = frame.stack.get(k)
                if slot is not None and slot[0] == "O":
                    old = slot[1]
                    # like the kernel, a new dynptr may overwrite a dynptr that holds no
                    # reference (nothing to release, so nothing leaks); an iterator or
                    # an acquired dynptr must be destroyed/released first
                    if objkind == "dynptr" and old.kind == "dynptr" and not old.ref:
                        stale.append(old)
                        continue
                    if objkind == "iter":
                        raise _Reject(_iter_expected(what, tname, regno))
                    raise _Reject(f"{objkind} at fp{o} is already initialized (destroy it first)")
                if slot is not None and slot[0] == "S" and slot[1].is_ptr:
                    raise _Reject(f"{objkind} at fp{o} would overwrite a spilled pointer")
            for old in stale:
                # the whole old dynptr goes, also the slots the new one does not cover,
                # and every slice taken from it
                for k in range(old.first, old.first - old.nslots, -1):
                    frame.stack[k] = SLOT_UNINIT
                self._invalidate_slices(st, old.id)
            ref = self.new_id() if objkind == "iter" or _flag(proto, "KF_ACQUIRE") is not None else 0
            if objkind == "dynptr":
                obj = ObjSlot(objkind, tname, ref, first, nslots, id=self.new_id(),
                              parent=self._new_dynptr_parent)
            else:
                obj = ObjSlot(objkind, tname, ref, first, nslots)
            for k in keys:
                frame.stack[k] = ("O", obj)
            if ref:
                st.refs[ref] = (f"{objkind} {tname}", pc)
            return None
        slot = frame.stack.get(first)
        if slot is None or slot[0] != "O" or slot[1].first != first or slot[1].kind != objkind:
            if objkind == "iter":
                raise _Reject(_iter_expected(what, tname, regno))
            raise _Reject(f"expected an initialized {objkind} as arg #{regno - 1} of {proto.name}")
        obj = slot[1]
        if objkind == "iter" and obj.type != tname:
            raise _Reject(_iter_expected(what, tname, regno))
        if _flag(proto, "ITER_DESTROY") is not None and objkind == "iter":
            self._invalidate_iter_children(st, obj.ref)
            for k in keys:
                frame.stack[k] = SLOT_UNINIT
            if obj.ref:
                st.refs.pop(obj.ref, None)
        return None

    def _ret_reg(self, st: State, plan: _CallPlan, pc: Num, meta_map, alloc_size) -> Reg:
        r: Reg
        if plan.ret_integer:
            if plan.iter_next and plan.ret_size:
                # read-only, as in the kernel: the element belongs to the iterator
                return Reg(PTR_MEM, size=plan.ret_size, null=True, id=self.new_id(), ro=True)
            return UNKNOWN_SCALAR
        if plan.ret_void:
            return UNINIT
        acquires = plan.acquires
        if plan.ret_map_value:
            if meta_map is None:
                raise _Reject(f"{plan.name} returns a map value but has no map argument")
            # (the map argument set plan.map and its value pointer, set_map)
            r = copy_reg(plan.map_value)
            self.next_id += 1       # (new_id, inline)
            r.id = self.next_id
        elif plan.ret_mem:
            size = plan.ret_size
            if plan.ret_size_arg >= 0:
                # the size argument was checked above; its register is clobbered now, so
                # it was recorded before clobbering (see _call_helper)
                size = self._ret_size_value
            if size is None and alloc_size is not None:
                size = alloc_size
            ro = plan.iter_next
            elem = plan.elem_size
            if size == 0 and elem:
                # the kernel's rule for `T *f(..., rdwr_buf_size)` returning a pointer to a
                # scalar T: size 0 means sizeof(T) read-only bytes
                size, ro = int(elem), True
            if size is None or size <= 0:
                raise _Reject(f"{plan.name}: size of the returned memory must be a known constant")
            null = plan.ret != _RetK.MEM or plan.nullable
            r = Reg(PTR_MEM, size=size, null=null, id=self.new_id() if null else 0,
                    obj=ARENA_MEM if plan.arena_ret else None, ro=ro)
            if plan.ret == _RetK.RINGBUF_MEM_OR_NULL:
                acquires = True
        else:
            return UNKNOWN_SCALAR
        if acquires:
            ref = self.new_id()
            st.refs[ref] = (plan.name, pc)
            r = r.replace(ref=ref)
        return r

    # ------------------------------------------------------------ stack objects

    def _loop_point_converges(self, st: State, pc: int) -> bool:
        if pc in self.callback_entries:
            return True
        obj = self._iter_obj(st, st.frames[-1].regs[1 + int(self._iter_next_arg.get(pc, 0))])
        return obj is not None and obj.state == "active"

    @staticmethod
    def _stack_obj_at(st: State, reg: Reg) -> ObjSlot | None:
        if reg.t != PTR_STACK or not sc.is_const(reg.var) or reg.frame >= len(st.frames):
            return None
        slot = st.frames[reg.frame].stack.get((-(reg.off + sc.s64(reg.var[4])) - 1) // 8)
        return slot[1] if slot is not None and slot[0] == "O" else None

    @staticmethod
    def _invalidate_slices(st: State, dyn_id: int) -> None:
        if not dyn_id:
            return
        for f, where, r in list(st.all_regs()):
            if r.dyn == dyn_id:
                st.set_reg_anywhere(f, where, UNINIT)

    def _invalidate_iter_children(self, st: State, iter_ref: int) -> None:
        """Dynptrs made from an iterator's current element (and their slices) are
        destroyed when the iterator moves on or goes away."""
        if not iter_ref:
            return
        for f in st.frames:
            for k, slot in list(f.stack.items()):
                if slot[0] == "O" and slot[1].kind == "dynptr" and slot[1].parent == iter_ref:
                    f.stack[k] = SLOT_UNINIT
                    self._invalidate_slices(st, slot[1].id)

    @staticmethod
    def _iter_obj(st: State, reg: Reg) -> ObjSlot | None:
        if reg.t != PTR_STACK or not sc.is_const(reg.var) or reg.frame >= len(st.frames):
            return None
        slot = st.frames[reg.frame].stack.get((-(reg.off + sc.s64(reg.var[4])) - 1) // 8)
        if slot is None or slot[0] != "O" or slot[1].kind != "iter":
            return None
        return slot[1]

    def _iter_next_fork(self, st: State, ireg: Reg, pc: int) -> None:
        """next() of an active iterator: one path gets an element (active, depth + 1,
        non-NULL r0), this one the end (drained, r0 = 0).  A drained iterator only ends."""
        obj = self._iter_obj(st, ireg)
        if obj is None:  # pragma: no cover - checked by _stack_object_arg
            return
        r0 = st.frames[-1].regs[0]
        if obj.state == "active":
            active = st.copy()
            if active.checkpoint is not None:
                active.checkpoint.live += 1
            self._replace_obj(active.frames[ireg.frame], obj, obj.replace(depth=obj.depth + 1))
            active.cur.regs[0] = r0.replace(null=False, id=0) if r0.is_ptr else UNKNOWN_SCALAR
            cp = active.checkpoint
            self._widen(active, pc, cp.parent if cp is not None and cp.pc == pc else cp, obj, ireg.frame)
            self._push(pc + 1, active, pc)
        self._replace_obj(st.frames[ireg.frame], obj, obj.replace(state="drained"))
        st.frames[-1].regs[0] = const_reg(0)

    @staticmethod
    def _replace_obj(frame: Frame, old: ObjSlot, new: ObjSlot) -> None:
        for k in range(old.first, old.first - old.nslots, -1):
            frame.stack[k] = ("O", new)
