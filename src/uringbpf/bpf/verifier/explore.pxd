# Cython declarations augmenting explore.py for the compiled core (verifier/core.py): its
# State/Reg/Frame annotations name the extension types of state.pxd (attribute access on
# those arguments is a struct read); Verifier is the last link of the class chain
# (calls.pxd declares the attributes).
from uringbpf.bpf.verifier.state cimport Reg, State, Frame, ObjSlot, IdMap
from uringbpf.bpf.verifier.common cimport _Checkpoint, _DInsn, _flag
from uringbpf.bpf.verifier.state cimport scalar, state_subsumes
from uringbpf.bpf.verifier.transfer cimport TransferMixin
cimport uringbpf.bpf.verifier.scalar as sc
cimport cython

cpdef bint _evictable(_Checkpoint cp, bint forced) except -1
@cython.locals(ro=list, rc=list, i=Py_ssize_t)
cpdef bint _maybe_looping(State old, State cur, tuple idx) except -1

# the opcode parts _explore_paths compares each instruction's with, as C integers (their
# values come from isa.py at import): a Python-int name would make every compare box the
# instruction's C integer first
cdef int ADD, ALU, ALU64, AND, ARSH, CALL, EXIT, IMM, JA, JCOND, JEQ, JNE, LD, LDX, NEG
cdef int OP_JA32, OP_MAY_GOTO, OR, ST, STX, SUB

cdef class Verifier(TransferMixin):
    # the explorer's per-instruction steps: C calls from _explore
    cpdef _push(self, Py_ssize_t pc, State st, origin)
    cpdef list _cond_jump_eq(self, State st, _DInsn insn, Py_ssize_t pc)
    cpdef _path_end(self, State st)
    cpdef list _live_masks(self, State st, Py_ssize_t pc)
    cpdef tuple _live_index(self, Py_ssize_t pc)
    @cython.locals(i=Py_ssize_t, lst=list, masks=list, jmps=Py_ssize_t, insns=Py_ssize_t,
                   add_new=bint, force_new=bint, iter_point=bint, may_goto=bint,
                   impr0=list, impr1=list, impr=list, live_idx=tuple)
    cpdef bint _is_state_visited(self, Py_ssize_t pc, State st) except -1
    cpdef _maybe_fork_scalars(self, State st, _DInsn insn, Py_ssize_t pc)
    # the per-instruction loop: its program counter, opcode parts and tables as C values
    @cython.locals(pc=Py_ssize_t, cls=int, op=int, pending_from=bint, log_level=Py_ssize_t,
                   insn=_DInsn, insns=list, prune_at=bytearray, seen=bytearray, stack=list,
                   branches=list, cur=Frame, dreg=Reg, cp=_Checkpoint)
    cpdef _explore_paths(self, State st, Py_ssize_t start)
