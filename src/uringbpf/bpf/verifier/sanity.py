"""Limits the kernel puts on pointer arithmetic and on variable offsets into memory regions.

Two rules of Linux 7.2 (both also in 6.18) that refuse programs before any out-of-bounds
byte could be touched, kept here as plain functions the transfer and memory checks call:

* check_reg_sane_offset (kernel/bpf/verifier.c, called by adjust_ptr_min_max_vals on the
  scalar operand, on the pointer, and on the result of ``ptr += x`` / ``ptr -= x``): the
  arithmetic itself is refused when a constant is 2**29 or more away from 0, the pointer's
  fixed offset is, or a signed minimum is unbounded or 2**29 or more away.
* check_mem_region_access: 7.2 keeps a pointer's constant and variable offsets as one
  range; when that range may be negative its unsigned maximum is at least 2**63, and the
  access is refused as "unbounded memory access" whatever the instruction's own offset
  (map values, memory regions, ring buffer records; the stack is checked otherwise).
"""

from __future__ import annotations

from . import scalar as sc
from .common import MAX_VAR_OFF, Num, _Reject
from .scalar import S64_MIN
from .state import CONST_MAP, PTR_FUNC, PTR_MEM, PTR_TRUSTED, Reg

# (check_ptr_operands leaves out map pointers, functions and trusted pointers, whose
# arithmetic transfer._ptr_alu refuses with an earlier message, and nullable pointers:
# "null-check it first")


def _kernel_name(ptr: Reg) -> str:
    """The pointer's type as reg_type_str prints it, with a memory region's flags."""
    if ptr.t == PTR_MEM:
        if ptr.ref:
            return "ringbuf_mem"    # only bpf_ringbuf_reserve returns referenced memory
        if ptr.ro:
            return "rdonly_mem"
    return ptr.type_name()


def _check_scalar(var: tuple, ptr: Reg) -> None:
    """check_reg_sane_offset on the scalar operand of ``ptr +/-= x``, in the kernel's
    order (the messages name ``ptr``'s type: the pointer type being computed).  The
    name is built only for a refusal: this runs for every pointer addition."""
    smin = var[2]
    if var[5] == 0:     # a constant (sc.is_const, inline)
        val = sc.s64(var[4])
        if val >= MAX_VAR_OFF or val <= -MAX_VAR_OFF:
            raise _Reject(f"math between {_kernel_name(ptr)} pointer and {val} is not allowed")
    if smin == S64_MIN:
        raise _Reject(f"math between {_kernel_name(ptr)} pointer and register with unbounded "
                      "min value is not allowed")
    if smin >= MAX_VAR_OFF or smin <= -MAX_VAR_OFF:
        raise _Reject(f"value {smin} makes {_kernel_name(ptr)} pointer be out of bounds")


def _check_pointer(off: Num, var: tuple, ptr: Reg) -> None:
    """The same check on a pointer (before and after the arithmetic): its fixed offset,
    then the signed minimum of its variable part, each within 2**29 of 0 (the two are
    not added: a constant added to a variable part near the limit is accepted; Linux
    6.18 and 7.2 print both as the pointer's offset).  ``ptr`` gives the type named."""
    if off >= MAX_VAR_OFF or off <= -MAX_VAR_OFF:
        raise _Reject(f"{_kernel_name(ptr)} pointer offset {off} is not allowed")
    smin = var[2]
    if smin >= MAX_VAR_OFF or smin <= -MAX_VAR_OFF:
        raise _Reject(f"{_kernel_name(ptr)} pointer offset {smin} is not allowed")


def check_ptr_operands(ptr: Reg, other: Reg) -> None:
    """Refuse ``ptr +/-= other`` (other a scalar) as the kernel does before computing it:
    the scalar operand, then the pointer, must be sane offsets."""
    if ptr.null or ptr.t == CONST_MAP or ptr.t == PTR_FUNC or ptr.t == PTR_TRUSTED:
        return      # refused by the caller with the kernel's earlier message
    _check_scalar(other.var, ptr)
    _check_pointer(ptr.off, ptr.var, ptr)


def check_ptr_result(ptr: Reg, off: Num, var: tuple) -> None:
    """Refuse the result of pointer arithmetic (``ptr``'s type, fixed offset ``off``,
    variable part ``var``) that is not a sane offset."""
    _check_pointer(off, var, ptr)


def check_var_not_negative(ptr: Reg, regno: Num) -> None:
    """7.2's check_mem_region_access on a pointer with a variable offset (not the stack):
    the constant offset folded into the variable range, a range that may be negative has
    an unsigned maximum of 2**63 or more and is refused, even when the instruction's
    offset would bring every byte back inside."""
    var = ptr.var
    if var[5] != 0 and ptr.off + var[2] < 0:
        raise _Reject(f"R{regno} unbounded memory access, make sure to bounds check any such access")
