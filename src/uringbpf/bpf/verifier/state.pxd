# Cython declarations augmenting state.py for the compiled core (verifier/core.py): the
# state classes become extension types with typed slots (same attribute names, same
# Python-object values), so attribute access on a typed variable is a struct read.
# Each class declares exactly the names of its __slots__ in state.py: a slot added there
# must be added here (test_compiled_core.py::test_pxd_classes_declare_the_slots checks).
cimport cython

cdef class Reg:
    cdef public object t, off, id, ref, frame, obj, size, null, ro, dyn
    # (a scalar's value or a pointer's variable part: always a scalar.py tuple)
    cdef public tuple var

cdef class ObjSlot:
    cdef public object kind, type, ref, first, nslots, state, depth, id, parent

cdef class Frame:
    cdef public list regs
    cdef public dict stack
    cdef public object callsite, subprog, frameno, callback
    cpdef Frame copy(self)

cdef class State:
    cdef public list frames
    cdef public dict refs
    cdef public object checkpoint, lock
    cdef public Py_ssize_t buf_min, cb_steps, may_goto_depth
    cpdef State copy(self)

cdef class IdMap:
    cdef public dict fwd, back
    # (C calls from scalar_ids_match and the subsumption helpers)
    cpdef bint check(self, old, cur) except -1
    cpdef bint check_unlinked(self, old) except -1
cimport uringbpf.bpf.verifier.scalar as sc

# the subsumption helpers state_subsumes calls per register and slot: direct C calls
cpdef reg_subsumes(Reg old, Reg cur, IdMap ids)
cpdef slot_subsumes(old, cur, IdMap ids)
cpdef _bytes_of_cur(slot)

# the register indexes of each live mask (a C dict: its .get is a direct call, not a
# bound method made per lookup)
cdef dict _MASK_INDEXES
# state pruning's comparison: a C call from the explorer, its loop indexes C integers
@cython.locals(depth=Py_ssize_t, i=Py_ssize_t, ro_last=list, rc_last=list, ro=list, rc=list,
               so=dict, scur=dict, idx=tuple, fidx=tuple)
cpdef bint state_subsumes(State old, State cur, list live_masks, list imprecise_masks=*,
                          precise_slots=*) except -1
cpdef Reg copy_reg(Reg src)
cpdef Reg with_var(Reg src, var)
cpdef Reg scalar(var)
cpdef Reg const_reg(v)
cpdef bint scalar_ids_match(Reg old, Reg cur, IdMap ids) except -1
cpdef bint _in_delta_group(State old, rid, list memo) except -1
cpdef bint _links_only(State old, Reg a, Reg b, list delta_bases) except -1
