# Cython declarations augmenting the .py of the same name for the compiled core
# (verifier/core.py): its State/Reg/Frame annotations name the extension types of state.pxd,
# so attribute access on those arguments is a struct read.
from uringbpf.bpf.verifier.state cimport Reg, State, Frame, ObjSlot, IdMap
cimport uringbpf.bpf.verifier.scalar as sc
