# Cython declarations augmenting common.py for the compiled core (verifier/core.py).
from uringbpf.bpf.verifier.state cimport Reg, State, Frame, ObjSlot, IdMap

cdef class _Checkpoint:
    cdef public object state, parent, live, done, pc, decided, hit, miss, sig, loop_head
cimport uringbpf.bpf.verifier.scalar as sc
