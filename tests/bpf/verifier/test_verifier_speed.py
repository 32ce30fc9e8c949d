"""The verifier's fast paths compute exactly what the plain definitions compute (#19).

Speed work replaced straightforward code with inlined, cached or pre-filtered versions:
``Reg.replace`` / ``scalar()`` (field by
field), the ALU result cache (``transfer._ALU_MEMO``) and the loop-detection precheck
(``explore._maybe_looping``).  Each is checked here against the definition it replaces, so a
later edit that makes them disagree fails a test instead of changing verdicts quietly.
No timing here: speed is measured by bench/load.py (docs/benchmarks.md, "Load speed").
"""

from __future__ import annotations

import gc
import random
from types import SimpleNamespace

import pytest

from uringbpf.bpf import isa, verifier
from uringbpf.bpf.verifier import explore
from uringbpf.bpf.verifier import scalar as sc
from uringbpf.bpf.verifier import state as vs
from uringbpf.bpf.verifier import transfer
from uringbpf.bpf.verifier.common import _flag

from vasm import assemble

U64, SIGN64 = sc.U64, sc.SIGN64


_EDGES = [0, 1, 2, 7, 8, 255, 256, sc.U32, sc.U32 + 1, 1 << 31, (1 << 31) - 1, sc.S64_MAX,
          1 << 63, U64, U64 - 1, (1 << 63) + 1]


def _random_scalar(rng: random.Random):
    def val():
        r = rng.random()
        if r < 0.4:
            return (rng.choice(_EDGES) + rng.choice((0, 0, 1, -1))) & U64
        if r < 0.7:
            return rng.getrandbits(rng.choice((3, 8, 16, 32, 33, 63, 64)))
        return rng.getrandbits(64)

    umin, umax = sorted((val(), val())) if rng.random() < 0.8 else (val(), val())
    smin, smax = sorted((sc.s64(val()), sc.s64(val())))
    if rng.random() < 0.3:
        smin, smax = sc.S64_MIN, sc.S64_MAX
    if rng.random() < 0.3:
        umin, umax = 0, U64
    tm = val() if rng.random() < 0.85 else 0
    if rng.random() < 0.3:
        tm = (1 << rng.randrange(65)) - 1
    tv = val() & ~tm if rng.random() < 0.9 else val()
    if tm == 0 and rng.random() < 0.3:
        umin = umax = tv
    return (umin, umax, smin, smax, tv, tm)


def _member(s, v):
    """``v`` lies in every view of the scalar tuple ``s``."""
    lo = v & sc.U32
    return (s[0] <= v <= s[1] and s[2] <= sc.s64(v) <= s[3] and (v & ~s[5]) == s[4]
            and (len(s) == 6 or (s[6] <= lo <= s[7]
                                 and s[8] <= (lo - (1 << 32) if lo >> 31 else lo) <= s[9])))


@pytest.mark.parametrize("seed", range(4))
def test_sync_keeps_every_member(seed):
    """sync (the kernel's reg_bounds_sync on arcs, #20) drops no value that every view of
    its input allows, and says None only when no value is allowed."""
    rng = random.Random(seed)
    for _ in range(3000):
        s = _random_scalar(rng)
        r = sc.sync(s)
        cands = [s[4] | (rng.getrandbits(64) & s[5]) for _ in range(30)]
        cands += [s[0], s[1], s[2] & U64, s[3] & U64, s[4], s[4] | s[5]]
        for v in cands:
            if _member(s, v & U64):
                assert r is not None and _member(r, v & U64), (s, r, v)


def test_sync_on_the_common_values():
    for s in (sc.UNKNOWN, sc.urange(0, sc.U32), sc.urange(0, 255), sc.const(5), sc.const(U64),
              sc.srange(-1, 0), sc.srange(-128, 127)):
        assert sc.sync(s) == s, s
    assert sc.sync((0, U64, sc.S64_MIN, sc.S64_MAX, 0x10, 0xf00))[:2] == (0x10, 0xf10)


def _all_slots_distinct() -> vs.Reg:
    return vs.Reg(vs.PTR_MEM, var=sc.urange(0, 8), off=3, id=4, ref=5, frame=1, obj="o", size=9,
                  null=True, ro=True, dyn=6)


def test_reg_replace_copies_every_slot():
    r = _all_slots_distinct()
    same = r.replace()
    assert same is not r
    assert all(getattr(same, n) == getattr(r, n) for n in vs.Reg.__slots__)
    for name in vs.Reg.__slots__:
        # (var is typed as a scalar tuple in the compiled core)
        new = sc.const(77) if name == "var" else "new"
        changed = r.replace(**{name: new})
        for n in vs.Reg.__slots__:
            assert getattr(changed, n) == (new if n == name else getattr(r, n)), (name, n)


def test_scalar_constructor_equals_reg_defaults():
    var = sc.urange(1, 9)
    fast, plain = vs.scalar(var), vs.Reg(vs.SCALAR, var)
    assert all(getattr(fast, n) == getattr(plain, n) for n in vs.Reg.__slots__)


def test_alu_cache_key_separates_signed_division():
    """div and sdiv share an opcode (off 0 / 1): the cache must keep them apart."""
    a, b = sc.const(-7 & U64), sc.const(2)
    op = isa.ALU64 | isa.DIV | isa.X
    assert transfer.scalar_alu(op, 0, a, b) != transfer.scalar_alu(op, 1, a, b)
    assert transfer.scalar_alu(op, 1, a, b) == sc.const(-3 & U64)


def _log_of(text: str) -> str:
    insns, _ = assemble(text)
    prog = isa.Program("t", insns, section="socket", prog_type="socket_filter")
    log = verifier.verify(prog, log_level=2).log
    return log


def test_verdicts_same_with_a_warm_alu_cache():
    """Verifying again (every ALU result now cached) gives the same log, for programs
    whose values differ only in what the cache key must tell apart."""
    progs = ["r0 = -7\nr0 s/= 2\nif r0 == -3 goto +1\nr0 = 1\nexit\n",
             "r0 = -7\nr0 /= 2\nif r0 == -3 goto +1\nr0 = 1\nexit\n",
             "r0 = -7\nw0 /= 2\nr0 &= 255\nexit\n",
             "r0 = -7\nr0 s%= 2\nr0 += 4\nexit\n",
             "r0 = -7\nr0 %= 2\nr0 += 4\nexit\n"]
    first = []
    for p in progs:
        transfer._ALU_MEMO.clear()
        first.append(_log_of(p))
    for p, log in zip(progs, first):
        assert _log_of(p) == log
    assert len(set(first)) == len(first)


def test_infinite_loop_found_through_the_signature():
    """The loop check compares signatures first: equal states still end in the verdict,
    unequal ones (a counter) do not."""
    with pytest.raises(verifier.BpfVerifierError, match="infinite loop detected"):
        insns, _ = assemble("r0 = 0\nr1 = 5\nloop:\nr2 = r1\nif r0 != 1 goto loop\nexit\n")
        verifier.verify(isa.Program("t", insns, section="socket", prog_type="socket_filter"))
    insns, _ = assemble("r0 = 0\nloop:\nr0 += 1\nif r0 < 50 goto loop\nexit\n")
    res = verifier.verify(isa.Program("t", insns, section="socket", prog_type="socket_filter"))
    assert res.processed_insns > 100


def _signature(st: vs.State, idx: tuple) -> tuple:
    """The plain definition _maybe_looping replaces: the frame count and each live
    register of the innermost frame as a scalar's value, or a pointer's type, fixed and
    variable offset, compared as one tuple."""
    regs = st.frames[-1].regs
    return (len(st.frames),) + tuple(
        r.var if r.t == vs.SCALAR else (r.t, r.off, r.var) if r.t != vs.NOT_INIT else None
        for r in (regs[i] for i in idx))


def test_loop_precheck_is_the_signature_and_keeps_equal_states():
    """explore._maybe_looping, compared before states_equal in the infinite-loop check,
    answers what comparing the signatures answers, and never refuses a pair of states
    that states_equal finds equal (it would hide an infinite loop)."""
    rng = random.Random(19)
    makers = [lambda: vs.scalar(sc.const(rng.randrange(3))),
              lambda: vs.scalar(sc.urange(0, rng.randrange(1, 3))),
              lambda: vs.Reg(vs.PTR_STACK, off=-8 * rng.randrange(2)),
              lambda: vs.Reg(vs.PTR_STACK, var=sc.urange(0, 8)),
              lambda: vs.UNINIT, lambda: vs.UNKNOWN_SCALAR]
    outcomes = {True: 0, False: 0}
    for _ in range(4000):
        old = vs.State()
        old.frames.append(vs.Frame(0, 0, -1))
        for i in range(10):
            old.frames[0].regs[i] = rng.choice(makers)()
        cur = old.copy()
        for i in range(10):
            if rng.random() < 0.1:
                cur.frames[0].regs[i] = rng.choice(makers)()
        live = rng.getrandbits(10)
        idx = tuple(i for i in range(10) if live >> i & 1)
        maybe = explore._maybe_looping(old, cur, idx)
        assert maybe == (_signature(old, idx) == _signature(cur, idx))
        if vs.states_equal(old, cur, [live]):
            assert maybe
        outcomes[maybe] += 1
    assert min(outcomes.values()) > 500, outcomes


def test_flag_lookup_cached_same_answers():
    """common._flag remembers answers for frozen flag sets: the same as scanning a list."""
    flags = ["ITER_NEW:2", "RET_NULL", "ITER_SIZE=16", "KF_ACQUIRE"]
    listed, frozen = SimpleNamespace(kfunc_flags=flags), SimpleNamespace(kfunc_flags=frozenset(flags))
    for name in ("ITER_NEW", "RET_NULL", "ITER_SIZE", "KF_ACQUIRE", "ITER_NEXT", "RET", "ITER"):
        for _ in range(2):      # the second answer comes from the cache
            assert _flag(frozen, name) == _flag(listed, name)
    assert _flag(frozen, "ITER_NEW") == "2" and _flag(frozen, "ITER_SIZE") == "16"
    assert _flag(frozen, "RET_NULL") == "" and _flag(frozen, "ITER_NEXT") is None


def test_gc_state_restored_after_verification():
    """Exploring pauses the cyclic GC; it is back on afterwards, after a refusal too,
    and stays off for a caller who had turned it off."""
    ok, _ = assemble("r0 = 0\nexit\n")
    bad, _ = assemble("r0 = r5\nexit\n")
    assert gc.isenabled()
    verifier.verify(isa.Program("t", ok, section="socket", prog_type="socket_filter"))
    assert gc.isenabled()
    with pytest.raises(verifier.BpfVerifierError):
        verifier.verify(isa.Program("t", bad, section="socket", prog_type="socket_filter"))
    assert gc.isenabled()
    gc.disable()
    try:
        verifier.verify(isa.Program("t", ok, section="socket", prog_type="socket_filter"))
        assert not gc.isenabled()
    finally:
        gc.enable()
