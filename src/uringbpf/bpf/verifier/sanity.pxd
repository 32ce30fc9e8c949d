# Cython declarations augmenting sanity.py for the compiled core (verifier/core.py): the
# pointer-arithmetic limits run for every pointer addition and map/region access, so the
# transfer and memory checks call them directly (C calls, no module attribute lookup).
from uringbpf.bpf.verifier.state cimport Reg
cimport uringbpf.bpf.verifier.scalar as sc

cpdef str _kernel_name(Reg ptr)
cpdef _check_scalar(tuple var, Reg ptr)
cpdef _check_pointer(off, tuple var, Reg ptr)
cpdef check_ptr_operands(Reg ptr, Reg other)
cpdef check_ptr_result(Reg ptr, off, tuple var)
cpdef check_var_not_negative(Reg ptr, regno)
