# Cython declarations augmenting transfer.py for the compiled core (verifier/core.py): its
# State/Reg/Frame annotations name the extension types of state.pxd (attribute access on
# those arguments is a struct read); TransferMixin is a link of the verifier's class chain
# (calls.pxd declares the attributes).
from uringbpf.bpf.verifier.state cimport (
    Reg, State, Frame, ObjSlot, IdMap, copy_reg, scalar, const_reg, with_var)
from uringbpf.bpf.verifier.common cimport _is_arena_ptr, _DInsn, shared_memo_pays
from uringbpf.bpf.verifier.memory cimport MemoryMixin
cimport uringbpf.bpf.verifier.sanity as sanity
cimport cython
# the scalar domain's functions: C calls from the transfer functions
cimport uringbpf.bpf.verifier.scalar as sc

# module functions the transfer functions call per instruction
cpdef _remember(dict memo, key, value)
cpdef _recall(dict memo, key, _DInsn insn)
@cython.locals(regs=dict)
cpdef Reg const_imm(v)
cpdef Reg _null_checked(Reg r, pid, bint is_null)
cpdef _mark_null_in(State st, pid, bint is_null)
cpdef Reg _synced(Reg known, Reg r)
cpdef Reg _linked_add(_DInsn insn, Reg d, Reg s, Reg res, bint is64)
cpdef bint _arena_compare(Reg dst, Reg src, op, bint is32) except -1
cpdef Reg _const_alu(opcode, a, b)
cpdef Reg _scalar_alu_reg(opcode, off, tuple a, tuple b, _DInsn insn=*)
cpdef Reg _insn_alu(_DInsn insn, tuple dv, tuple sv)
cpdef tuple scalar_cond(opcode, tuple av, tuple bv)
cpdef bint _const_taken(op, a, b, bint is32) except -1
@cython.locals(op=int, is64=bint, width=int)
cpdef tuple scalar_alu(opcode, off, tuple a, tuple b)
cpdef bint _arena_mem_as_number(Reg d, Reg s, op, bint is64) except -1

cdef class TransferMixin(MemoryMixin):
    # the per-instruction transfer functions: C calls from the explorer
    cpdef _do_alu(self, State st, _DInsn insn)
    cpdef _do_mov(self, State st, _DInsn insn, Reg src, bint is64)
    cpdef Reg _ptr_alu(self, _DInsn insn, Reg d, Reg s, bint is64)
    cpdef _do_lddw(self, State st, _DInsn insn, Py_ssize_t pc)
    cpdef list _do_cond_jump(self, State st, _DInsn insn, Py_ssize_t pc)
    cpdef _apply_refine(self, State st, _DInsn insn, Reg dst, Reg src, a, b, refined)
    cpdef _sync_linked(self, State st, Py_ssize_t regno)
    cpdef _mark_null(self, State st, Reg ptr, bint is_null)
    cpdef list _ptr_cond(self, State st, _DInsn insn, Reg dst, Reg src, op, Py_ssize_t target,
                         Py_ssize_t fall, bint is32)
