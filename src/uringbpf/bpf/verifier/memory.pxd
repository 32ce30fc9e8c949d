# Cython declarations augmenting memory.py for the compiled core (verifier/core.py): its
# State/Reg/Frame annotations name the extension types of state.pxd (attribute access on
# those arguments is a struct read); MemoryMixin is a link of the verifier's class chain
# (calls.pxd declares the attributes).
from uringbpf.bpf.verifier.state cimport Reg, State, Frame, ObjSlot, IdMap
from uringbpf.bpf.verifier.calls cimport CallsMixin
from uringbpf.bpf.verifier.state cimport scalar, copy_reg
from uringbpf.bpf.verifier.common cimport (
    _DInsn,
    _check_aligned, _frozen_map_read, _is_arena_ptr, _sized_unknown, _unknown_load)
cimport uringbpf.bpf.verifier.scalar as sc
cimport cython
cimport uringbpf.bpf.verifier.sanity as sanity

# the kind of a non-bytes stack slot's bytes: _byte_kind and _stack_check_init
cpdef str _slot_kind(slot)

cdef class MemoryMixin(CallsMixin):
    cpdef _check_mem_region(self, State st, Reg reg, regno, size_lo, size_hi, bint write,
                            bint init, str what=*)
    # the per-instruction memory checks: C calls from the explorer
    cpdef _note_arena_access(self, Reg ptr)
    cpdef _first_visit(self, State st, _DInsn insn, Py_ssize_t pc)
    cpdef _do_ldx(self, State st, _DInsn insn)
    cpdef _do_store(self, State st, _DInsn insn)
    cpdef tuple _bounds(self, Reg ptr, regno, off, size)
    cpdef _mem_access(self, State st, Reg ptr, regno, off, size, bint write, Reg value=*,
                      value_regno=*, bint signed=*)
    cpdef Frame _frame_of(self, State st, Reg ptr)
    cpdef _note_depth(self, Frame frame, lo)
    cpdef _stack_access(self, State st, Reg ptr, regno, off, size, bint write, Reg value,
                        value_regno, bint signed)
    @cython.locals(o=Py_ssize_t, k=Py_ssize_t, base=Py_ssize_t, end=Py_ssize_t, j=Py_ssize_t)
    cpdef _stack_check_init(self, Frame frame, Py_ssize_t lo, Py_ssize_t hi, str what,
                            Py_ssize_t regno=*)
    @cython.locals(k=Py_ssize_t, base=Py_ssize_t, j0=Py_ssize_t, j1=Py_ssize_t, cur=str)
    cpdef _stack_mark_written(self, Frame frame, Py_ssize_t lo, Py_ssize_t hi, bint known,
                              bint zero=*)
    cpdef _stack_write(self, State st, Frame frame, Py_ssize_t o, size, Reg value, value_regno)
    cpdef Reg _stack_read(self, Frame frame, Py_ssize_t o, Py_ssize_t size, bint signed)
    # (here, not in transfer: a spill and a mov both call it, as C calls)
    cpdef Reg _id_before_mov(self, State st, Py_ssize_t regno, Reg src)
