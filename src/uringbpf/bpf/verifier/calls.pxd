# Cython declarations augmenting calls.py for the compiled core (verifier/core.py).
# CallsMixin is the base of the verifier's class chain (Verifier -> TransferMixin ->
# MemoryMixin -> CallsMixin): an extension type holding every attribute of a verification
# as a typed slot (an attribute assigned anywhere in the four classes must be declared
# here: the extension type has no instance __dict__), so `self.x` is a struct read in every
# part, and the helpers all parts call per instruction are cpdef (C calls).
from uringbpf.bpf.verifier.state cimport Reg, State, Frame, ObjSlot, IdMap
from uringbpf.bpf.verifier.common cimport _Checkpoint, _DInsn, _flag
cimport uringbpf.bpf.verifier.scalar as sc

cdef class CallsMixin:
    cdef public object program, platform, insns, ptype, sleepable, cfg, global_funcs
    cdef public object _in_global, _ret_size_value, _arena_assoc
    cdef public list log_lines, _dfs, _dec
    cdef public dict stack_depth, explored, _live_idx, _lddw_regs, _iter_next_arg
    cdef public dict _callees
    cdef public set iter_next_pcs, arena_zext, callback_entries, prune_points
    cdef public bytearray seen, _prune_at, _access_kind
    cdef public State state
    cdef public Py_ssize_t log_level, max_insns, log_size, next_id, processed, jmps_processed
    cdef public Py_ssize_t _prev_jmps, _prev_processed, total_states, cur_states, peak_states
    cdef public Py_ssize_t pc
    cdef public object _new_dynptr_parent
    cdef public bint prune
    cdef public set decided_pcs
    cdef public object _branch_prec
    cdef public Py_ssize_t _branch_recomputes

    cpdef Reg read_reg(self, State st, Py_ssize_t regno)
    cpdef write_reg(self, State st, Py_ssize_t regno, Reg reg)
    cpdef _mark_decided(self, State st)
    cpdef _branch_decided(self, State st)
    cpdef tuple _branch_precision(self)
    cpdef _do_call(self, State st, _DInsn insn, Py_ssize_t pc)
    cpdef _do_exit(self, State st)
    cpdef _call_helper(self, State st, proto, Py_ssize_t pc, bint is_kfunc)
    cpdef Reg _ret_reg(self, State st, proto, Py_ssize_t pc, meta_map, alloc_size, bint is_kfunc)
