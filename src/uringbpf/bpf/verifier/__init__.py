"""The verifier: refuse every unsafe program before it runs, with a kernel-style log.

It works like the Linux verifier (docs/verifier.md): after static checks of the
instructions and the control-flow graph, it explores every path of the program with an
abstract state per path (typed registers, a byte-precise stack, acquired references,
the held lock) whose scalars carry ranges and known bits.  Conditional jumps refine the
ranges; paths are pruned when they reach an instruction in a state covered by one
already proven safe there; bounded loops are followed until they exit, within an
instruction budget (1M, as the kernel).

Modules, each readable alone:

=============  ===========================================================================
``api``        :func:`verify` (one program), :func:`verify_object` (every program of an object)
``explore``    the exploration loop, checkpoints, state pruning, loop detection, widening
``transfer``   per-instruction transfer functions: registers, ALU, lddw, conditional jumps
``memory``     memory checks: map values, helper memory, data buffer, context, stack
``calls``      helper/kfunc/subprogram/global-function calls, iterators, dynptrs, locks, exit
``cfg``        static checks before exploration: fields, control flow, liveness, precision
``state``      registers, stack slots, frames; subsumption of states (pruning)
``scalar``     the scalar domain: tnum + unsigned/signed 64-bit ranges, transfer functions
``disasm``     instruction text of the log, in the kernel's syntax
``common``     limits, result types and small helpers shared by the others
``core``       which core runs (``CORE``): these modules, or their compiled twin (docs/internals.md)
=============  ===========================================================================

Every helper, kfunc and program-type question goes to a :class:`~uringbpf.bpf.platform.Platform`
(``verify(..., platform=)``; default: the active platform, else the default one).
"""

from __future__ import annotations

from ...errors import BpfVerifierError
from . import core as _core

#: which core runs the verifier's hot modules: ``"compiled"`` or why the pure-Python
#: modules run instead (:mod:`.core` chooses, here, before any other verifier module loads)
CORE: str = _core.select(__path__)

from .api import ProgramVerdict, verify, verify_object
from .common import MAX_INSNS_PROCESSED, VerifierResult
from .disasm import insn_text
from .explore import Verifier

__all__ = ["BpfVerifierError", "CORE", "MAX_INSNS_PROCESSED", "ProgramVerdict", "Verifier",
           "VerifierResult", "insn_text", "verify", "verify_object"]
