# Cython declarations augmenting common.py for the compiled core (verifier/core.py).
from uringbpf.bpf.verifier.state cimport Reg, State, Frame, ObjSlot, IdMap

# typed slots: the explorer reads them for every stored state it compares against
cdef class _Checkpoint:
    cdef public State state
    cdef public _Checkpoint parent, loop_head
    cdef public Py_ssize_t live, pc, hit, miss
    cdef public bint done, decided
    cdef public object sig
cimport uringbpf.bpf.verifier.scalar as sc
