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
from .common import MAX_VAR_OFF, _Reject
from .state import CONST_MAP, PTR_FUNC, PTR_MEM, PTR_TRUSTED, Reg

# pointers whose arithmetic is refused before these limits are looked at (transfer._ptr_alu
# names them); a nullable pointer likewise ("null-check it first")
_NO_ARITH = (CONST_MAP, PTR_FUNC, PTR_TRUSTED)


def _kernel_name(ptr: Reg) -> str:
    """The pointer's type as reg_type_str prints it, with a memory region's flags."""
    if ptr.t == PTR_MEM:
        if ptr.ref:
            return "ringbuf_mem"    # only bpf_ringbuf_reserve returns referenced memory
        if ptr.ro:
            return "rdonly_mem"
    return ptr.type_name()


def _check_scalar(var: tuple, name: str) -> None:
    """check_reg_sane_offset on the scalar operand of ``ptr +/-= x``, in the kernel's
    order (``name``: the pointer type being computed)."""
    if sc.is_const(var):
        val = sc.s64(var[4])
        if val >= MAX_VAR_OFF or val <= -MAX_VAR_OFF:
            raise _Reject(f"math between {name} pointer and {val} is not allowed")
    smin = var[2]
    if smin == sc.S64_MIN:
        raise _Reject(f"math between {name} pointer and register with unbounded min value "
                      "is not allowed")
    if smin >= MAX_VAR_OFF or smin <= -MAX_VAR_OFF:
        raise _Reject(f"value {smin} makes {name} pointer be out of bounds")


def _check_pointer(off: int, var: tuple, name: str) -> None:
    """The same check on a pointer (before and after the arithmetic): its fixed offset,
    then the signed minimum of its variable part, each within 2**29 of 0 (the two are
    not added: a constant added to a variable part near the limit is accepted; Linux
    6.18 and 7.2 print both as the pointer's offset)."""
    if off >= MAX_VAR_OFF or off <= -MAX_VAR_OFF:
        raise _Reject(f"{name} pointer offset {off} is not allowed")
    smin = var[2]
    if smin >= MAX_VAR_OFF or smin <= -MAX_VAR_OFF:
        raise _Reject(f"{name} pointer offset {smin} is not allowed")


def check_ptr_operands(ptr: Reg, other: Reg) -> None:
    """Refuse ``ptr +/-= other`` (other a scalar) as the kernel does before computing it:
    the scalar operand, then the pointer, must be sane offsets."""
    if ptr.null or ptr.t in _NO_ARITH:
        return      # refused by the caller with the kernel's earlier message
    name = _kernel_name(ptr)
    _check_scalar(other.var, name)
    _check_pointer(ptr.off, ptr.var, name)


def check_ptr_result(ptr: Reg, off: int, var: tuple) -> None:
    """Refuse the result of pointer arithmetic (``ptr``'s type, fixed offset ``off``,
    variable part ``var``) that is not a sane offset."""
    _check_pointer(off, var, _kernel_name(ptr))


def check_var_not_negative(ptr: Reg, regno: int) -> None:
    """7.2's check_mem_region_access on a pointer with a variable offset (not the stack):
    the constant offset folded into the variable range, a range that may be negative has
    an unsigned maximum of 2**63 or more and is refused, even when the instruction's
    offset would bring every byte back inside."""
    var = ptr.var
    if not sc.is_const(var) and ptr.off + var[2] < 0:
        raise _Reject(f"R{regno} unbounded memory access, make sure to bounds check any such access")
