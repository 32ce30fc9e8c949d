# Cython declarations augmenting common.py for the compiled core (verifier/core.py).
from uringbpf.bpf.verifier.state cimport Reg, State, Frame, ObjSlot, IdMap

cdef class _DInsn:
    cdef public int opcode, dst, src, cls, op, source, size, mode
    cdef public object off, imm, imm64, insn
    cdef public Reg kreg
    cdef public object memo_a, memo_b, memo_r
    cdef public Py_ssize_t memo_looks, memo_hits
    cdef public object call

# typed slots: the explorer reads them for every stored state it compares against
cdef class _Checkpoint:
    cdef public State state
    cdef public _Checkpoint parent, loop_head
    cdef public Py_ssize_t live, pc, hit, miss
    cdef public bint done, decided
cimport uringbpf.bpf.verifier.scalar as sc

# the memory checks' helpers: C calls from memory.py and transfer.py
cpdef bint shared_memo_pays(_DInsn insn)
cpdef _flag(proto, str name)
cpdef Reg _frozen_map_read(Reg ptr, lo, size, bint signed)
cpdef bint _is_arena_ptr(Reg reg) except -1
cpdef _check_aligned(Reg ptr, off, size, str what)
cpdef Reg _unknown_load(size, bint signed=*)
cpdef _sized_unknown(size, bint signed=*)
