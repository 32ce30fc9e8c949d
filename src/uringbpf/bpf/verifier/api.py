"""The public entry points: verify() one program, verify_object() a whole object."""

from __future__ import annotations

from dataclasses import dataclass

from .. import isa, progtypes
from ...errors import BpfVerifierError, ProgTypeError
from ..platform import Platform
from .common import (
    _platform_in_effect, BPF_F_RDONLY_PROG, MAX_INSNS_PROCESSED, VerifierResult,
    _MAP_TYPE_ARRAY,
)
from .cfg import sync_lddw_imm64
from .explore import Verifier
from .memory import arena_unrewrite, dead_code_restore


def verify(program: isa.Program, prog_type: progtypes.ProgType | None = None, log_level: int = 0,
           max_insns: int = MAX_INSNS_PROCESSED, platform: Platform | None = None) -> VerifierResult:
    """Verify ``program``; return statistics or raise :class:`BpfVerifierError` with the log.

    ``platform`` answers every helper, kfunc and program-type question (default: the
    active platform, else :func:`~uringbpf.bpf.platform.default_platform`).
    ``prog_type`` defaults to ``platform.prog_type_for(program)`` (section/attach).
    ``max_insns`` is the exploration budget (processed instructions, the kernel's 1M).
    """
    if platform is None:
        platform = _platform_in_effect()
    if prog_type is None:
        try:
            prog_type = platform.prog_type_for(program)
        except ProgTypeError as exc:
            raise BpfVerifierError(str(exc), str(exc) + "\n") from None
    dead_code_restore(program)
    arena_unrewrite(program)
    sync_lddw_imm64(program)
    v = Verifier(program, prog_type, log_level, max_insns, platform)
    result = v.run()
    v.arena_rewrite()
    v.sanitize_dead_code()
    return result


# ---------------------------------------------------------------- whole objects


@dataclass
class ProgramVerdict:
    """The verdict on one program of an object (:func:`verify_object`)."""

    name: str
    section: str
    result: VerifierResult | None = None        # set when accepted
    error: BpfVerifierError | None = None       # set when refused

    @property
    def ok(self) -> bool:
        """True if the program was accepted."""
        return self.error is None

    @property
    def log(self) -> str:
        """The verifier log, whether the program was accepted or refused."""
        return self.result.log if self.result is not None else self.error.log


def verify_object(obj, *, programs: list[str] | None = None, log_level: int = 0,
                  max_insns: int = MAX_INSNS_PROCESSED) -> list[ProgramVerdict]:
    """Verify every program of an opened :class:`~uringbpf.bpf.object.BpfObject` the way
    ``obj.load()`` (and libbpf) would: kfuncs resolved against the object's platform,
    read-only array maps (``.rodata``) frozen first, so ``const volatile`` values are
    constants.  Freezing is what loading does too: afterwards ``.rodata`` cannot change.

    ``programs`` selects programs by name (unknown names raise ``KeyError``).  Returns one
    :class:`ProgramVerdict` per program, in object order; never raises for a refusal.
    """
    progs = obj.prepare()
    if programs is not None:
        known = {p.name for p in progs}
        missing = [n for n in programs if n not in known]
        if missing:
            raise KeyError(f"no program named {', '.join(missing)}")
        progs = [p for p in progs if p.name in set(programs)]
    for m in obj.map_list:
        if (m.map_flags & BPF_F_RDONLY_PROG and m.type == _MAP_TYPE_ARRAY
                and not getattr(m, "frozen", False)):
            m.freeze()
    out = []
    for prog in progs:
        verdict = ProgramVerdict(prog.name, prog.section)
        try:
            verdict.result = verify(prog, log_level=log_level, max_insns=max_insns,
                                    platform=obj.platform)
        except BpfVerifierError as exc:
            verdict.error = exc.with_context(getattr(obj, "path", None), prog.name)
        out.append(verdict)
    return out
