# Cython declarations augmenting calls.py for the compiled core (verifier/core.py).
# CallsMixin is the base of the verifier's class chain (Verifier -> TransferMixin ->
# MemoryMixin -> CallsMixin): an extension type holding every attribute of a verification
# as a typed slot (an attribute assigned anywhere in the four classes must be declared
# here: the extension type has no instance __dict__), so `self.x` is a struct read in every
# part, and the helpers all parts call per instruction are cpdef (C calls).
from uringbpf.bpf.verifier.state cimport Reg, State, Frame, ObjSlot, IdMap, copy_reg
from uringbpf.bpf.verifier.common cimport _Checkpoint, _DInsn, _flag
cimport uringbpf.bpf.verifier.scalar as sc
cimport cython

# the argument kinds _call_helper compares, as C integers
cdef int _K_ANYTHING, _K_SCALAR, _K_CTX, _K_MAP, _K_MAP_KEY, _K_MAP_VALUE, _K_MEM
cdef int _K_SIZE, _K_SIZE_NONZERO, _K_ALLOC_SIZE, _K_RINGBUF_MEM, _K_TRUSTED, _K_FUNC
cdef int _K_STACK, _K_SPIN_LOCK, _K_UNSUPPORTED

@cython.locals(o=Py_ssize_t, k=Py_ssize_t, base=Py_ssize_t, top=Py_ssize_t, kinds=str)
cpdef _constant_array_key(State st, Reg key, Py_ssize_t size)

cdef class _CallPlan:
    cdef public object proto, name, helper_id, refusal, ret, ret_size, special_args
    cdef public object release_idx, elem_size, map, map_checked
    cdef public tuple args, kinds
    cdef public bint ret_integer, ret_void, ret_map_value
    cdef public bint is_kfunc, ret_mem, trusted_args, raw_read, map_lookup, iter_next
    cdef public bint nullable, acquires, arena_ret, array_map
    cdef public Py_ssize_t ret_size_arg, iter_next_arg, slice_arg, new_from_iter_arg
    cdef public object key_size, value_size, max_entries
    cdef public Reg map_value

cdef class CallsMixin:
    cpdef _check_mem_region(self, State st, Reg reg, regno, size_lo, size_hi, bint write,
                            bint init, str what=*)
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
    cdef public list _masks1, _impr1, _precise_slots

    cpdef Reg read_reg(self, State st, Py_ssize_t regno)
    cpdef write_reg(self, State st, Py_ssize_t regno, Reg reg)
    cpdef _mark_decided(self, State st)
    cpdef _branch_decided(self, State st)
    cpdef tuple _branch_precision(self)
    cpdef _do_call(self, State st, _DInsn insn, Py_ssize_t pc)
    cpdef _do_exit(self, State st)
    cpdef _callee(self, insn)
    cpdef _CallPlan _call_plan(self, _DInsn insn, h)
    @cython.locals(i=Py_ssize_t, regno=Py_ssize_t, pending=Py_ssize_t, code=int, kinds=tuple,
                   special_args=dict, regs=list, reg=Reg, preg=Reg, sreg=Reg, v=tuple)
    cpdef _call_helper(self, State st, _CallPlan plan, Py_ssize_t pc)
    cpdef Reg _ret_reg(self, State st, _CallPlan plan, Py_ssize_t pc, meta_map, alloc_size)
