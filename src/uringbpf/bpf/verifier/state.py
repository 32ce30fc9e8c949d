"""Abstract machine state of the verifier: registers, stack slots, frames, references.

Registers and stack slots are *immutable* values, so copying a state at a branch is a
shallow copy of a few lists and dicts; every transfer builds new objects.  The same
classes know how to print themselves in the kernel's log style and how to decide
whether an explored (old) state *subsumes* a new one — the core of state pruning.
"""

from __future__ import annotations

from . import scalar as sc

#: ``int``, for the integer parameters of the functions and methods the compiled core
#: declares in the .pxd files: Cython reads a literal ``int`` annotation as "a Python int
#: object", which conflicts with such a declaration; a name it does not know it leaves to
#: the .pxd
Num = int

# Register types.
NOT_INIT = 0
SCALAR = 1
PTR_CTX = 2        # obj = progtypes.Layout (fields of the context / args array / struct)
PTR_STACK = 3      # frame = frame number
PTR_MAP_VALUE = 4  # obj = map descriptor
CONST_MAP = 5      # obj = map descriptor
PTR_MEM = 6        # size = bytes, ro = read-only
PTR_BUF = 7        # the run-time data buffer (packet-like; bound = State.buf_min)
PTR_TRUSTED = 8    # obj = struct name of an opaque kernel object
PTR_FUNC = 9       # size = subprogram entry insn
PTR_ARENA = 10     # an arena address (the kernel's PTR_TO_ARENA): any value, accessed
                   # at the arena window + its low 32 bits (PROBE_MEM32)

TYPE_NAMES = {
    NOT_INIT: "?", SCALAR: "scalar", PTR_CTX: "ctx", PTR_STACK: "fp", PTR_MAP_VALUE: "map_value",
    # PTR_BUF is r1 of a socket filter or syscall program: the kernel's PTR_TO_CTX there
    CONST_MAP: "map_ptr", PTR_MEM: "mem", PTR_BUF: "ctx", PTR_TRUSTED: "trusted_ptr",
    PTR_FUNC: "func", PTR_ARENA: "arena",
}

ZERO_OFF = sc.const(0)

# Scalar links with a constant delta (the kernel's BPF_ADD_CONST64/32 flags on
# bpf_reg_state.id, Linux 6.11+, 32-bit and negative deltas since 7.0): after
# ``r1 = r3; r1 += K`` r1 carries r3's id with one of these bits set and ``off = K``,
# meaning r1 == r3 + K (mod 2**64; mod 2**32 with both values zero-extended for the
# 32-bit flag).  Ids come from a counter far below bit 30.
ADD_CONST64 = 1 << 31
ADD_CONST32 = 1 << 30
ADD_CONST = ADD_CONST64 | ADD_CONST32


class Reg:
    """One register (or spilled register) value.

    For a scalar, ``var`` is its value.  For a pointer, the address is
    ``base + off + var``: ``off`` is the fixed part, ``var`` the variable part
    (a scalar).  ``id`` links copies (null checks and bound refinements apply to all
    registers sharing it); ``ref`` is the acquired-reference id the pointer carries.
    A scalar whose ``id`` has an :data:`ADD_CONST` bit is its base id's value plus
    ``off`` (the kernel keeps the delta in ``reg->off`` too); other scalars have off 0.
    """

    __slots__ = ("t", "var", "off", "id", "ref", "frame", "obj", "size", "null", "ro", "dyn")

    def __init__(self, t, var=ZERO_OFF, off=0, id=0, ref=0, frame=0, obj=None, size=0,
                 null=False, ro=False, dyn=0):
        self.dyn = dyn   # a slice of the dynptr with this id: invalid once that dynptr goes
        self.t = t
        self.var = var
        self.off = off
        self.id = id
        self.ref = ref
        self.frame = frame
        self.obj = obj
        self.size = size
        self.null = null
        self.ro = ro

    def replace(self, **kw) -> "Reg":
        """A copy of the register with the given fields changed."""
        r = copy_reg(self)
        for name, value in kw.items():
            setattr(r, name, value)
        return r

    @property
    def is_ptr(self) -> bool:
        """True for any pointer type."""
        return self.t >= PTR_CTX

    @property
    def is_const(self) -> bool:
        """True for a scalar whose every bit is known."""
        return self.t == SCALAR and self.var[5] == 0

    @property
    def value(self) -> int:
        """The value of a constant scalar (the known bits)."""
        return self.var[4]

    def type_name(self) -> str:
        """The type as the kernel's log names it (``scalar``, ``map_value``, ``fp``...)."""
        name = TYPE_NAMES[self.t]
        if self.t == PTR_CTX and self.obj is not None and getattr(self.obj, "name", ""):
            name = "ctx" if self.obj.kind != "struct" else f"ptr_{self.obj.name}"
        if self.t == PTR_TRUSTED:
            name = f"trusted_ptr_{self.obj}"
        return name + ("_or_null" if self.null else "")

    def fmt(self) -> str:
        """The register as the kernel's log prints it (``scalar(umax=255)``, ``fp-8``...)."""
        t = self.t
        if t == NOT_INIT:
            return "?"
        if t == SCALAR:
            s = sc.fmt(self.var)
            if not self.id:
                return s
            # the kernel's log: id=N, or id=N+K / id=N-K for a link with a delta
            link = str(self.id & ~ADD_CONST) + (f"{self.off:+d}" if self.id & ADD_CONST else "")
            if s == "scalar()":
                return f"scalar(id={link})"
            return (s[:-1] + f",id={link})" if s.endswith(")")
                    else f"scalar(id={link},v={s})")
        extra = []
        if t == PTR_STACK:
            if sc.is_const(self.var):
                return f"fp{self.off + sc.s64(self.var[4]):+d}".replace("+0", "0") \
                    if self.frame == 0 else f"fp[{self.frame}]{self.off + sc.s64(self.var[4]):+d}"
            extra.append(f"off={self.off}")
        else:
            extra.append(f"off={self.off}")
        if t in (PTR_MAP_VALUE, CONST_MAP) and self.obj is not None:
            extra.append(f"ks={getattr(self.obj, 'key_size', 0)},vs={getattr(self.obj, 'value_size', 0)}")
        if t == PTR_MEM:
            extra.append(f"sz={self.size}")
        if t == PTR_FUNC:
            extra = [f"insn={self.size}"]
        if not sc.is_const(self.var) or self.var[4]:
            extra.append("var=" + sc.fmt(self.var))
        if self.id:
            extra.append(f"id={self.id}")
        if self.ref:
            extra.append(f"ref_obj_id={self.ref}")
        return f"{self.type_name()}({','.join(extra)})"



def copy_reg(src: Reg) -> Reg:
    """A copy of register ``src``, for the hot paths that then set a field or two on it
    (``replace`` without the keyword arguments: a C call and struct writes in the
    compiled core)."""
    # field by field rather than a loop over __slots__: this runs for most processed
    # instructions (test_verifier_speed.py checks it copies every slot)
    r: Reg = Reg.__new__(Reg)    # (typed: struct writes in the compiled core)
    r.t = src.t
    r.var = src.var
    r.off = src.off
    r.id = src.id
    r.ref = src.ref
    r.frame = src.frame
    r.obj = src.obj
    r.size = src.size
    r.null = src.null
    r.ro = src.ro
    r.dyn = src.dyn
    return r


UNINIT = Reg(NOT_INIT)
UNKNOWN_SCALAR = Reg(SCALAR, sc.UNKNOWN)


def with_var(src: Reg, var) -> Reg:
    """A copy of register ``src`` with the abstract value ``var`` (``src.replace(var=var)``
    as a C call in the compiled core: branches refine registers this way)."""
    r: Reg = copy_reg(src)
    r.var = var
    return r


def scalar(var) -> Reg:
    """A scalar register with the abstract value ``var``."""
    r: Reg = Reg.__new__(Reg)
    r.t = SCALAR
    r.var = var
    r.off = r.id = r.ref = r.frame = r.size = r.dyn = 0
    r.obj = None
    r.null = r.ro = False
    return r


def const_reg(v) -> Reg:
    """A scalar register holding exactly ``v`` (an int)."""
    return scalar(sc.exact(v))


# Stack slots: ("B", bytes-kinds-str) | ("S", Reg) | ("O", ObjSlot)
#   | ("H", bytes-kinds-str, (low Reg | None, high Reg | None)): bytes plus 32-bit scalar spills
#   byte kinds: "u" uninitialised, "m" written (unknown), "0" known zero
SLOT_UNINIT = ("B", "uuuuuuuu")


class ObjSlot:
    """A special object on the stack (an iterator or a dynptr), spanning ``nslots`` slots."""

    __slots__ = ("kind", "type", "ref", "first", "nslots", "state", "depth", "id", "parent")

    def __init__(self, kind, type, ref, first, nslots, state="active", depth=0, id=0, parent=0):
        self.kind = kind
        self.type = type
        self.ref = ref
        self.first = first
        self.nslots = nslots
        # iterators, like the kernel's: "active" (next() may return an element) or
        # "drained" (next() returned NULL); depth = next() calls that returned an element.
        # State equality compares the state, not the depth; an infinite loop needs equal
        # depths too (a loop whose iterator advanced is bounded by the iterator).
        self.state = state
        self.depth = depth
        self.id = id            # dynptrs: slices taken from it carry this id (Reg.parent)
        self.parent = parent    # dynptrs made from an iterator: the iterator's ref

    def replace(self, **kw) -> "ObjSlot":
        """A copy of the object slot with the given fields changed."""
        o: ObjSlot = ObjSlot.__new__(ObjSlot)
        for name in ObjSlot.__slots__:
            setattr(o, name, kw[name] if name in kw else getattr(self, name))
        return o


class Frame:
    """One call frame: registers, stack slots, call site and subprogram."""
    __slots__ = ("regs", "stack", "callsite", "subprog", "frameno", "callback")

    def __init__(self, frameno: int, subprog: int, callsite: int, callback: int = 0):
        self.regs = [UNINIT] * 11
        self.stack: dict[int, tuple] = {}
        self.callsite = callsite
        self.subprog = subprog
        self.frameno = frameno
        self.callback = callback    # != 0: called by a helper (bpf_loop); the id of that helper call

    def copy(self) -> "Frame":
        """A copy sharing the immutable registers and slots."""
        f: Frame = Frame.__new__(Frame)     # (typed: struct writes in the compiled core)
        f.regs = list(self.regs)
        f.stack = dict(self.stack)
        f.callsite = self.callsite
        f.subprog = self.subprog
        f.frameno = self.frameno
        f.callback = self.callback
        return f


class State:
    """A verifier state: the frames of the call chain, held references, buffer bound, locks."""
    __slots__ = ("frames", "refs", "buf_min", "checkpoint", "cb_steps", "lock", "may_goto_depth")

    def __init__(self):
        self.frames: list[Frame] = []
        self.refs: dict[int, tuple[str, int]] = {}   # ref id -> (kind, insn that acquired it)
        self.buf_min = 0
        self.checkpoint = None
        # callback calls on this path (the kernel's callback_unroll_depth): two equal states
        # with a different count are not an infinite loop
        self.cb_steps = 0
        # the bpf_spin_lock held: (map, id of the map-value pointer, offset) or None
        self.lock: tuple | None = None
        # may_goto fall-throughs taken on this path (the kernel's may_goto_depth): at a
        # may_goto, a state covered by an unfinished one with another depth converges, and
        # equal states with different depths are not an infinite loop
        self.may_goto_depth = 0

    def copy(self) -> "State":
        """A copy for exploring another branch."""
        s: State = State.__new__(State)
        frames = []
        f: Frame
        for f in self.frames:
            frames.append(f.copy())
        s.frames = frames
        s.refs = dict(self.refs)
        s.buf_min = self.buf_min
        s.checkpoint = self.checkpoint
        s.cb_steps = self.cb_steps
        s.lock = self.lock
        s.may_goto_depth = self.may_goto_depth
        return s

    @property
    def cur(self) -> Frame:
        """The innermost frame."""
        return self.frames[-1]

    def all_regs(self):
        """Yield (frame, where, Reg) for every register and spilled register."""
        for f in self.frames:
            for i, r in enumerate(f.regs):
                yield f, i, r
            for k, slot in f.stack.items():
                if slot[0] == "S":
                    yield f, ("slot", k), slot[1]

    def set_reg_anywhere(self, frame: Frame, where, reg: Reg) -> None:
        """Store ``reg`` in a register or, for ``("slot", k)``, a spilled stack slot of ``frame``.
        """
        if isinstance(where, tuple):
            frame.stack[where[1]] = ("S", reg)
        else:
            frame.regs[where] = reg

    def fmt_regs(self, frame: Frame | None = None, live: int | None = None) -> str:
        """The registers and stack of ``frame`` (default: the innermost) as the kernel's log
        prints them."""
        frame = frame or self.cur
        parts = []
        for i, r in enumerate(frame.regs):
            if r.t == NOT_INIT:
                continue
            if i == 10:
                parts.append("R10=fp0")
                continue
            parts.append(f"R{i}={r.fmt()}")
        for k in sorted(frame.stack):
            slot = frame.stack[k]
            off = -8 * (k + 1)
            if slot[0] == "S":
                parts.append(f"fp{off}={slot[1].fmt()}")
            elif slot[0] == "B":
                if slot[1] != "uuuuuuuu":
                    parts.append(f"fp{off}={_kernel_bytes(slot[1])}")
            elif slot[0] == "H":
                low, high = slot[2]
                if low is not None:
                    # the kernel's 32-bit spill at the slot's start: the bytes above it,
                    # then the spilled register
                    parts.append(f"fp{off}={_kernel_bytes(slot[1][4:])}{low.fmt()}")
                else:
                    # (a 32-bit spill at the upper half is ours alone: misc bytes there)
                    parts.append(f"fp{off}={_kernel_bytes(slot[1])}")
            else:
                o = slot[1]
                if o.first == k:
                    parts.append(f"fp{off}={o.kind}_{o.type}(ref_id={o.ref},{o.state})")
        prefix = f"frame{frame.frameno}: " if len(self.frames) > 1 else ""
        return prefix + " ".join(parts)


def _kernel_bytes(kinds: str) -> str:
    """A slot's byte kinds (ours: lowest address first, ``u`` unwritten) as the kernel's
    log prints its slot_type[] (highest address first, ``?`` invalid)."""
    return kinds[::-1].replace("u", "?")


# ---------------------------------------------------------------- subsumption


class IdMap:
    """A consistent, one-to-one mapping from ids of the old state to ids of the new one."""

    __slots__ = ("fwd", "back")

    def __init__(self):
        self.fwd: dict[int, int] = {}
        self.back: dict[int, int] = {}

    def check(self, old: Num, cur: Num) -> bool:
        """Map old id ``old`` to ``cur`` consistently; False if that breaks the one-to-one
        mapping."""
        if old == 0:
            return True
        if cur == 0:
            return False
        f = self.fwd.get(old)
        if f is None:
            if cur in self.back:
                return False
            self.fwd[old] = cur
            self.back[cur] = old
            return True
        return f == cur

    def check_unlinked(self, old: Num) -> bool:
        """Map old id ``old`` to a scalar of the new state that has no id (the kernel's
        check_scalar_ids gives it a fresh temporary id): consistent only when no other
        register or slot of the old state with ``old`` was compared before, since the
        fresh id matches nothing else.  (A link whose partners are all dead is no fact
        the old state's exploration relied on.)"""
        if old in self.fwd:
            return False
        fresh = -1 - len(self.back)     # unique: back only grows, real ids are positive
        self.fwd[old] = fresh
        self.back[fresh] = old
        return True


def scalar_ids_match(old: Reg, cur: Reg, ids: IdMap) -> bool:
    """The links of scalar ``old`` hold for ``cur`` (the kernel's regsafe +
    check_scalar_ids for scalars): the same kind of link (none, plain, 64- or 32-bit
    delta) with the same delta, ids mapped one to one, and for a delta link its base id
    mapped consistently too (``r3 = r2 + K`` in old must be ``r3 = r2' + K`` in cur with
    r2' the register r2 maps to, not a sibling of some other register).  A plain link
    in old against no id in cur holds when old's id occurs once among what is compared
    (:meth:`IdMap.check_unlinked`)."""
    oid = old.id
    if not oid:
        return True
    cid = cur.id
    if oid & ADD_CONST:
        if oid & ADD_CONST != cid & ADD_CONST or old.off != cur.off:
            return False
        return ids.check(oid, cid) and ids.check(oid & ~ADD_CONST, cid & ~ADD_CONST)
    if cid & ADD_CONST:
        return False
    if not cid:
        return ids.check_unlinked(oid)
    return ids.check(oid, cid)


def reg_subsumes(old: Reg, cur: Reg, ids: IdMap) -> bool:
    """Every concrete value ``cur`` may hold is one ``old`` may hold (with the same meaning)."""
    if old is cur:
        if old.id == 0 and old.ref == 0:
            return True
        if old.t == SCALAR:
            return scalar_ids_match(old, cur, ids)
        return ids.check(old.id, cur.id) and ids.check(old.ref, cur.ref)
    if old.t == NOT_INIT:
        return True
    if old.t != cur.t:
        return False
    if old.t == SCALAR:
        if not sc.contains(old.var, cur.var):
            return False
        # a fact the explorer keeps beside the range (explore.py: 0-or--1, "!= K") was
        # relied on below ``old``: only a value with the same fact is covered
        if old.obj is not None and old.obj != cur.obj:
            return False
        return scalar_ids_match(old, cur, ids)
    if (old.off != cur.off or old.null != cur.null or old.obj is not cur.obj
            or old.size != cur.size or old.frame != cur.frame or old.ro != cur.ro):
        return False
    if not sc.contains(old.var, cur.var):
        return False
    return ids.check(old.id, cur.id) and ids.check(old.ref, cur.ref) and ids.check(old.dyn, cur.dyn)


def _bytes_of_cur(slot) -> str:
    if slot is None:
        return "uuuuuuuu"
    if slot[0] == "B" or slot[0] == "H":
        return slot[1]
    if slot[0] == "S":
        r = slot[1]
        if r.t == SCALAR:
            return "00000000" if r.is_const and r.value == 0 else "mmmmmmmm"
        return "pppppppp"
    return "oooooooo"


def slot_subsumes(old, cur, ids: IdMap) -> bool:
    """True if stack slot ``old`` covers every value slot ``cur`` may hold."""
    kind = old[0]
    if old is cur and kind == "B":
        return True
    if kind == "H":
        for j, r in enumerate(old[2]):
            if r is None:
                continue
            if cur is None or cur[0] != "H" or cur[2][j] is None or not reg_subsumes(r, cur[2][j], ids):
                return False
        kind = "B"
    if kind == "B":
        cb = _bytes_of_cur(cur)
        for o, c in zip(old[1], cb):
            if o == "u":
                continue
            if o == "m" and c in "m0":
                continue
            if o == "0" and c == "0":
                continue
            return False
        return True
    if kind == "S":
        if cur is not None and cur[0] == "S":
            return reg_subsumes(old[1], cur[1], ids)
        r = old[1]
        if r.t == NOT_INIT:
            return True
        if r.t == SCALAR and r.id == 0 and cur is not None and cur[0] in ("B", "H"):
            if cur[1] == "mmmmmmmm" or (cur[1].replace("0", "m") == "mmmmmmmm"
                                         and sc.contains(r.var, sc.UNKNOWN)):
                return sc.contains(r.var, sc.UNKNOWN)
            if cur[1] == "00000000":
                return sc.contains(r.var, sc.const(0))
        return False
    # object slot
    if cur is None or cur[0] != "O":
        return False
    o, c = old[1], cur[1]
    return (o.kind == c.kind and o.type == c.type and o.state == c.state and o.nslots == c.nslots
            and o.first == c.first and ids.check(o.ref, c.ref) and ids.check(o.id, c.id)
            and ids.check(o.parent, c.parent))


def iter_depths_differ(old: State, cur: State) -> bool:
    """Some iterator active in both states advanced in between (the kernel's
    iter_active_depths_differ): then equal states are not an infinite loop."""
    for fo, fc in zip(old.frames, cur.frames):
        for k, slot in fc.stack.items():
            if slot[0] != "O" or slot[1].kind != "iter" or slot[1].state != "active":
                continue
            so = fo.stack.get(k)
            if (so is not None and so[0] == "O" and so[1].state == "active"
                    and so[1].depth != slot[1].depth):
                return True
    return False


#: live-register mask -> the register numbers in it (below 10), for the loops above
_MASK_INDEXES: dict[int, tuple[int, ...]] = {}


def _mask_indexes(mask: int) -> tuple[int, ...]:
    idx = _MASK_INDEXES[mask] = tuple(i for i in range(10) if mask >> i & 1)
    return idx


def _in_delta_group(old: State, rid, memo: list) -> bool:
    """Does the scalar id ``rid`` belong to a group of registers linked with a delta in
    ``old``?  Such a register's range is compared even where the static precision says
    no check depends on it: a branch on it moves its partners' ranges by the delta (the
    kernel's sync_linked_regs), and a partner may be precise, as the kernel's backtracking
    marks every register linked at a jump precise together (bt_sync_linked_regs).  The
    partners of a plain link (delta 0) always share one value, so comparing the precise
    one covers them; with a delta their abstract ranges can differ (wrap-around)."""
    if not memo:
        # (every register and spilled register, as State.all_regs, without the generator:
        # this runs once per comparison that meets an imprecise linked scalar)
        bases = set()
        f: Frame
        r: Reg
        for f in old.frames:
            for r in f.regs:
                if r.t == SCALAR and r.id & ADD_CONST:
                    bases.add(r.id & ~ADD_CONST)
            for slot in f.stack.values():
                if slot[0] == "S":
                    r = slot[1]
                    if r.t == SCALAR and r.id & ADD_CONST:
                        bases.add(r.id & ~ADD_CONST)
        memo.append(bases)
    return (rid & ~ADD_CONST) in memo[0]


def _links_only(old: State, a: Reg, b: Reg, delta_bases: list) -> bool:
    """May ``a`` (in ``old``) and ``b``, a register or spilled slot no check depends on, be
    compared by their links alone?  Both scalars, neither the data length (id 1), and
    ``a`` in no group linked with a delta (whose ranges :func:`_in_delta_group` compares)."""
    return (a.t == SCALAR and b.t == SCALAR and a.id != 1 and b.id != 1
            and not (a.id and _in_delta_group(old, a.id, delta_bases)))


def state_subsumes(old: State, cur: State, live_masks: list,
                   imprecise_masks: list = None, precise_slots: Num = -1) -> bool:
    """``old`` (fully explored, found safe) covers ``cur``: every run from cur is safe too.

    ``live_masks`` gives, per frame, the registers that may still be read;
    ``imprecise_masks`` the live scalar registers whose range no check depends on (only
    their type and links are compared). ``precise_slots`` has bit k set for each slot
    (fp-8(k+1)) of the innermost frame whose spilled scalar may reach a check
    (``Cfg.precise_slots``; -1: every slot); a spilled scalar in any other slot is
    compared like an imprecise register.
    """
    if len(old.frames) != len(cur.frames) or old.buf_min > cur.buf_min:
        return False
    if len(old.refs) != len(cur.refs):
        return False
    if old.lock is not None or cur.lock is not None:
        # never prune while a lock is held: which element a map-value pointer refers to
        # (its id; 0 for a direct map_value) must match the lock exactly, and locked
        # regions are short (no calls), so exploring them fully costs little
        return False
    # First, cheaply: a precise live register of the innermost frame holding a constant
    # in old covers only that constant (the loop counters that tell most stored states
    # from the current one); reg_subsumes below would refuse the same pairs
    a: Reg
    b: Reg
    fo: Frame = old.frames[-1]
    fc: Frame = cur.frames[-1]
    ro_last: list = fo.regs
    rc_last: list = fc.regs
    fast = live_masks[-1]
    if imprecise_masks is None:
        imprecise_masks = [0] * len(live_masks)
    else:
        fast &= ~imprecise_masks[-1]
    fidx = _MASK_INDEXES.get(fast)
    if fidx is None:
        fidx = _mask_indexes(fast)
    for i in fidx:
        a = ro_last[i]
        if a.t == SCALAR and a.var[5] == 0:
            b = rc_last[i]
            if b is not a and (b.t != SCALAR or b.var[5] != 0 or b.var[4] != a.var[4]):
                return False
    ids = IdMap()
    delta_bases: list = []      # filled on first use by _in_delta_group
    innermost = fo
    for depth in range(len(old.frames)):
        fo = old.frames[depth]
        fc = cur.frames[depth]
        live = live_masks[depth]
        impr = imprecise_masks[depth]
        if fo.callsite != fc.callsite or bool(fo.callback) != bool(fc.callback):
            return False
        ro, rc = fo.regs, fc.regs
        idx = _MASK_INDEXES.get(live)
        if idx is None:
            idx = _mask_indexes(live)
        for i in idx:
            a, b = ro[i], rc[i]
            if a is b and not a.id and not a.ref:
                continue    # shared (unchanged since the copy): covered, no ids to map
            if impr >> i & 1 and _links_only(old, a, b, delta_bases):
                if not scalar_ids_match(a, b, ids):
                    return False
                continue
            if not reg_subsumes(a, b, ids):
                return False
        so, scur = fo.stack, fc.stack
        for k, slot in so.items():
            c = scur.get(k)
            if c is slot and (slot[0] == "B" or (slot[0] == "S" and not slot[1].id
                                                 and not slot[1].ref)):
                continue    # the same slot value, nothing id-linked in it
            if (fo is innermost and slot[0] == "S" and c is not None and c[0] == "S"
                    and not precise_slots >> k & 1
                    and _links_only(old, slot[1], c[1], delta_bases)):
                # a spilled scalar no check depends on: its links only, as a register
                if not scalar_ids_match(slot[1], c[1], ids):
                    return False
                continue
            if not slot_subsumes(slot, c, ids):
                return False
    for ref in old.refs:
        mapped = ids.fwd.get(ref)
        if mapped is None or mapped not in cur.refs:
            return False
    return True


def states_equal(a: State, b: State, live_masks: list[int]) -> bool:
    """True if each state subsumes the other over the live registers."""
    return state_subsumes(a, b, live_masks) and state_subsumes(b, a, live_masks)
