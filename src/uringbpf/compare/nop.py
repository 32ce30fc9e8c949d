"""Workload 1: NOP chains, K in flight. One op = one NOP (or one no-op request) completed.

Each implementation keeps K requests in flight and re-issues one per completion until
``total`` have completed; the output check is that exactly ``total`` completions came
back, each with the result the request defines (0 for a NOP, 42 for the OP_BPF op).
Parameters: ``k`` (1, 8, 32), ``total``.
"""

from __future__ import annotations

import importlib.util
import sys
from array import array
from pathlib import Path

from ..designs import loop as L
from ..designs import ops
from ..designs import requests as R

from ..uring import Ring
from ..uring import uapi as u
from ..uring.fast import FastPath
from .common import (CannotExpress, Ctx, Measure, WrongOutput, c_measure, finish, load_example,
                     run_c)

NAME = "nop"
TITLE = "NOP chains, K in flight"


def cases(quick: bool) -> list[dict]:
    """The parameter sets of this workload (small ones with ``quick``)."""
    total = 2000 if quick else 100_000
    return [{"k": k, "total": total} for k in (1, 8, 32)]


def label(p: dict) -> str:
    """A case's short name for the table."""
    return f"K={p['k']}"


def nop_loop(ring: Ring, k: int, total: int) -> tuple[int, int]:
    """The completion-driven NOP loop, one CQE at a time (peek/seen/prep_nop): K NOPs in
    flight (user_data 1..K), each completion re-issues its user_data until ``total`` have
    completed.  Returns (completions, the OR of every CQE's result: 0 when each NOP
    completed with 0, one operation per CQE).  The Python column of this workload and
    of bench/nop_loop.py."""
    prep_nop, peek, seen, saw = ring.prep_nop, ring.peek_cqe, ring.cqe_seen, ring.submit_and_wait
    results = issued = done = 0
    for i in range(k):
        prep_nop(i + 1)
        issued += 1
    while done < total:
        saw(1)
        cqe = peek()
        while cqe is not None:
            ud = cqe.user_data
            results |= cqe.res
            seen()
            done += 1
            if issued < total:
                prep_nop(ud)
                issued += 1
            cqe = peek()
    return done, results


def nop_loop_fast(fp: FastPath, k: int, total: int, check: bool = True) -> tuple[int, int]:
    """:func:`nop_loop` on ``Ring.fast()``'s verbs: one ``reap`` (submit, wait, copy every
    ready CQE into arrays) and one ``prep_nops`` (re-arm from the reaped user_data) per
    batch.  With ``check`` the results are copied too and checked with one C-level scan
    per batch (this workload); bench/nop_loop.py times the loop without it, as it always
    has (the copy and scan cost about a fifth at K=8).  Returns (completions, bad)."""
    uds = array("Q", bytes(8 * 64))
    res = array("i", bytes(4 * 64)) if check else None
    prep_nops, reap = fp.prep_nops, fp.reap
    bad = 0
    issued = prep_nops(array("Q", range(1, k + 1)))
    done = 0
    while done < total:
        n = reap(uds, res, None, 1)
        done += n
        if check and res.count(0) < 64:       # one C-level scan per batch, not per CQE
            bad += 64 - res.count(0)
            res = array("i", bytes(4 * 64))
        if issued < total:
            issued += prep_nops(uds, n if issued + n <= total else total - issued)
    return done, bad


def python(p: dict, ctx: Ctx) -> Measure:
    """Ring, one CQE at a time (:func:`nop_loop`, as bench/nop_loop.py)."""
    k, total = p["k"], p["total"]
    with Ring(64, backend="kernel") as ring:
        with ctx.measure():
            done, results = nop_loop(ring, k, total)
    if results or done != total:
        raise WrongOutput(f"CQE results OR'ed {results:#x}, {done}/{total} completions")
    return finish(ctx, total)


def python_fast(p: dict, ctx: Ctx) -> Measure:
    """Ring.fast(): reap into an array, re-arm with prep_nops from it (compiled verbs)."""
    k, total = p["k"], p["total"]
    with Ring(64, backend="kernel") as ring, ring.fast() as fp:
        with ctx.measure():
            done, bad = nop_loop_fast(fp, k, total)
        if bad or done != total:
            raise WrongOutput(f"{bad} bad CQEs, {done}/{total} completions")
        return finish(ctx, total, enters=fp.enters)


def c(p: dict, ctx: Ctx) -> Measure:
    """cbench.c: the same NOP loop in C liburing."""
    out = run_c(["nop", str(p["k"]), str(p["total"])])
    if out["ops"] != p["total"]:
        raise WrongOutput(f"C: {out['ops']} completions")
    return c_measure(out)


def links(p: dict, ctx: Ctx) -> Measure:
    """Chains of K linked NOPs: submit a chain, wait for its K CQEs, again."""
    k, total = p["k"], p["total"]
    rounds = -(-total // k)
    bad = done = 0
    with Ring(64, backend="kernel") as ring:
        with ctx.measure():
            for _ in range(rounds):
                for i in range(k):
                    ring.prep_nop(i + 1, u.IOSQE_IO_LINK if i < k - 1 else 0)
                ring.submit_and_wait(k)
                got = ring.reap()
                while len(got) < k:
                    got += ring.wait(1)
                done += len(got)
                bad += sum(c.res != 0 for c in got)
    if bad or done != rounds * k:
        raise WrongOutput(f"{bad} bad CQEs in linked chains")
    return finish(ctx, done, note="chain of K, then wait")


def _loop_run(p: dict, ctx: Ctx, run_one) -> Measure:
    left = run_one()
    if left:
        raise WrongOutput(f"{left} NOPs left undone")
    return finish(ctx, p["total"], note="1 enter from Python; native driver enters not counted")


def loop(p: dict, ctx: Ctx) -> Measure:
    """examples/loop/nops.bpf.c as a 7.1 loop_step (JIT), one io_uring_enter."""
    k, total = p["k"], p["total"]
    ring = L.make_ring(k)
    try:
        obj, link = L.nops_example(ring, total, engine="jit", cap=k)

        def one() -> int:
            with ctx.measure():
                ret = ring.enter(0, 0, u.IORING_ENTER_GETEVENTS)
            if ret:
                raise WrongOutput(f"loop run failed: {ret}")
            return obj.bss.reqs_to_run

        try:
            return _loop_run(p, ctx, one)
        finally:
            link.destroy()
            obj.close()
    finally:
        ring.close()


def lang(p: dict, ctx: Ctx) -> Measure:
    """examples/python/nops.py: the same loop_step written in Python, compiled (JIT)."""
    mod = load_example("nops")
    k, total = p["k"], p["total"]
    ring = L.make_ring(k)
    try:
        mod.setup(ring, total, k)
        with mod.nops_loop_step.attach(ring, "jit") as handle:
            def one() -> int:
                with ctx.measure():
                    ret = handle.enter()
                if ret:
                    raise WrongOutput(f"loop run failed: {ret}")
                return int(mod.st.reqs_to_run)
            return _loop_run(p, ctx, one)
    finally:
        ring.close()


def opbpf(p: dict, ctx: Ctx) -> Measure:
    """IORING_OP_BPF requests running basic.bpf.c's op 0 (a no-op that completes with 42),
    K in flight, re-issued from Python per completion: the per-op cost of OP_BPF."""
    k, total = p["k"], p["total"]
    bad = 0
    with ops.create_ring(64) as ring:
        obj, _ = ops.open_example("basic", ring, engine="jit")
        try:
            with ctx.measure():
                issued = done = 0
                for i in range(k):
                    ring.prep_bpf(0, user_data=i + 1)
                    issued += 1
                while done < total:
                    ring.submit_and_wait(1)
                    for c_ in ring.reap():
                        bad += c_.res != 42
                        done += 1
                        if issued < total:
                            ring.prep_bpf(0, user_data=c_.user_data)
                            issued += 1
            if bad or done != total or obj.bss.nr_issue != total:
                raise WrongOutput(f"{bad} bad CQEs, {done} done, {obj.bss.nr_issue} issued")
        finally:
            obj.close()
    # OpsRing enters through ops.c (native), so the wrapper sees none: not counted
    return finish(ctx, total, enters=None, note="enters made by ops.c's native enter path: "
                  "not counted")


def _requests_common():
    path = Path(R.__file__).resolve().parent / "examples" / "common.py"
    name = "uringbpf_example_requests_common"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def rfc2021(p: dict, ctx: Ctx) -> Measure:
    """requests.bpf.c's nop_loop: ONE BPF request keeps NOP_QD=8 NOPs in flight on CQ 1."""
    if p["k"] != 8:
        raise CannotExpress("requests.bpf.c's nop_loop keeps 8 in flight (NOP_QD, a "
                            "compile-time constant of the example)")
    common = _requests_common()
    ring, obj = common.setup("jit")
    try:
        arr = obj.maps["arr"]
        for i in (20, 21, 22):
            arr.update(i, (0).to_bytes(8, "little"))
        with ctx.measure():
            ring.prep_bpf(4, user_data=p["total"])
            ring.submit()
            ring.wait_cqe()
            ring.reap()
        if arr.lookup_int(22) != p["total"]:
            raise WrongOutput(f"{arr.lookup_int(22)} NOPs completed")
        return finish(ctx, p["total"], note="one BPF request; its NOPs are native")
    finally:
        obj.close()
        ring.close()


IMPLS = {"python": python, "python-fast": python_fast, "c": c, "links": links, "loop": loop,
         "opbpf": opbpf, "rfc2021": rfc2021, "lang": lang}
