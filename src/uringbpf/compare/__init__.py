"""`uringbpf compare`: one workload, every design (issue #17).

Workloads (one module each, see their docstrings): ``nop`` (NOP chains, K in flight),
``cp`` (copy with short reads: pipe source, and a regular file), ``cksum`` (read ->
crc32c -> write), ``echo`` (TCP echo on 127.0.0.1, N connections), ``stripe`` (the kbuf
stripe target over NBD). Implementations: ``python`` (Ring), ``python-fast``
(Ring.fast batch verbs), ``c`` (C liburing, compiled on the fly), ``links`` (io_uring
links alone), ``loop`` (7.1 loop_step), ``opbpf`` (IORING_OP_BPF), ``rfc2021`` (2021
RFC BPF requests), ``lang`` (a Python-authored program, uringbpf.lang), and for the
stripe target its own modes (``kbuf-copy``, ``kbuf-zc``).

Every run checks its output; a wrong run is reported as wrong and not timed. Rounds go
round-robin over the implementations (a burst of load from elsewhere hits them alike);
the table gives the median and the spread (min-max) of the rounds. The first run of
each implementation is profiled (Python calls counted) and verified, never timed.
``quick`` runs only that first run, with small sizes: correctness, no timing claims.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import cksum, cp, echo, nop, stripe
from ..bpf import engines
from .common import CannotExpress, Ctx, Measure, WrongOutput

WORKLOADS = {m.NAME: m for m in (nop, cp, cksum, echo, stripe)}
IMPL_ORDER = ("c", "python", "python-fast", "links", "loop", "opbpf", "rfc2021", "lang",
              "kbuf-copy", "kbuf-zc")


def _one(mod: Any, impl: str, params: dict, workdir: Path, quick: bool,
         profile: bool) -> dict:
    ctx = Ctx(workdir, quick, profile)
    try:
        m: Measure = mod.IMPLS[impl](params, ctx)
    except CannotExpress as exc:
        return {"status": "n/a", "reason": str(exc)}
    except engines.JitUnavailableError as exc:     # an install without the [jit] extra
        return {"status": "n/a", "reason": str(exc)}
    except WrongOutput as exc:
        return {"status": "wrong", "reason": str(exc)}
    except Exception as exc:  # why: one design's breakage must not hide the others' rows; shown as "error", exit 1
        # One design's breakage must not hide the others' numbers; it is reported in the
        # table and the JSON, and `uringbpf compare` exits non-zero.
        return {"status": "error", "reason": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    return {"status": "ok", **asdict(m)}


def run(workloads: list[str] | None = None, impls: list[str] | None = None, *,
        quick: bool = False, rounds: int = 5, log: Any = None) -> list[dict]:
    """Run the selected workloads x implementations; returns one record per case x impl:
    ``{workload, case, params, impl, status, reason, runs: [...], profile: {...}}``."""
    records = []
    with tempfile.TemporaryDirectory(prefix="uringbpf-compare-") as tmp:
        workdir = Path(tmp)
        for wname in workloads or list(WORKLOADS):
            mod = WORKLOADS[wname]
            names = [i for i in IMPL_ORDER if i in mod.IMPLS and (not impls or i in impls)]
            for params in mod.cases(quick):
                recs = {}
                for impl in names:
                    first = _one(mod, impl, params, workdir, quick, profile=True)
                    recs[impl] = {"workload": wname, "case": mod.label(params), "params": params,
                                  "impl": impl, "status": first["status"],
                                  "reason": first.get("reason", ""), "profile": first,
                                  "runs": []}
                    if log:
                        log(f"{wname} {mod.label(params)} {impl}: {first['status']} "
                            f"{first.get('reason', '')}")
                if not quick:
                    for _ in range(rounds):
                        for impl in names:       # round-robin over implementations
                            r = recs[impl]
                            if r["status"] != "ok":
                                continue
                            one = _one(mod, impl, params, workdir, quick, profile=False)
                            if one["status"] != "ok":
                                r["status"], r["reason"] = one["status"], one.get("reason", "")
                                continue
                            r["runs"].append(one)
                records.extend(recs.values())
    return records


def summarize(rec: dict) -> dict:
    """Median/spread of a record's timed runs (or of its profiled run in quick mode)."""
    runs = rec["runs"] or ([rec["profile"]] if rec["status"] == "ok" else [])
    if not runs:
        return {}
    ops = runs[0]["ops"]
    tput = [r["ops"] / r["secs"] for r in runs if r["secs"] > 0]
    mibs = [r["nbytes"] / r["secs"] / 2**20 for r in runs if r["secs"] > 0]
    cpu = [r["cpu"] / r["ops"] * 1e6 for r in runs if r["ops"]]
    prof = rec["profile"]
    out = {"ops": ops, "ops_s": statistics.median(tput) if tput else 0.0,
           "ops_s_min": min(tput, default=0.0), "ops_s_max": max(tput, default=0.0),
           "mib_s": statistics.median(mibs) if mibs else 0.0,
           "cpu_us_op": statistics.median(cpu) if cpu else 0.0,
           "enters_op": (prof["enters"] / prof["ops"]) if prof.get("enters") is not None
           and prof["ops"] else None,
           "pycalls_op": (prof["pycalls"] / prof["ops"]) if prof.get("pycalls") is not None
           and prof["ops"] else None,
           "note": prof.get("note", ""), "rounds": len(rec["runs"])}
    return out


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def table(records: list[dict], quick: bool = False) -> str:
    """The markdown table (one section per workload)."""
    lines = []
    by_w: dict[str, list[dict]] = {}
    for r in records:
        by_w.setdefault(r["workload"], []).append(r)
    for w, recs in by_w.items():
        mod = WORKLOADS[w]
        lines += [f"### {w}: {mod.TITLE}", ""]
        if quick:
            lines += ["| case | impl | status | enters/op | Python calls/op | note |",
                      "|---|---|---|---:|---:|---|"]
        else:
            lines += ["| case | impl | ops/s (median) | spread (min-max) | MiB/s | CPU µs/op | "
                      "enters/op | Python calls/op | note |",
                      "|---|---|---:|---|---:|---:|---:|---:|---|"]
        for r in recs:
            s = summarize(r)
            if r["status"] != "ok":
                cols = 5 if quick else 8
                text = f"**{r['status']}**: {r['reason']}"
                lines.append(f"| {r['case']} | {r['impl']} | {text} |" + " |" * (cols - 3))
                continue
            if quick:
                lines.append(f"| {r['case']} | {r['impl']} | ok | {_fmt(s['enters_op'], '.3g')} | "
                             f"{_fmt(s['pycalls_op'], '.3g')} | {s['note']} |")
            else:
                lines.append(
                    f"| {r['case']} | {r['impl']} | {s['ops_s']:,.0f} | "
                    f"{s['ops_s_min']:,.0f}-{s['ops_s_max']:,.0f} | {s['mib_s']:,.1f} | "
                    f"{s['cpu_us_op']:.2f} | {_fmt(s['enters_op'], '.3g')} | "
                    f"{_fmt(s['pycalls_op'], '.3g')} | {s['note']} |")
        lines.append("")
    return "\n".join(lines)


def machine() -> dict:
    """Machine, kernel, Python, CPU count, time and load average of this run."""
    return {"machine": platform.machine(), "kernel": platform.release(),
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "loadavg": os.getloadavg()}


def write_json(records: list[dict], path: Path, quick: bool) -> None:
    """Write every record (with its summary) and the machine description to ``path``."""
    data = {"machine": machine(), "quick": quick,
            "records": [{**r, "summary": summarize(r)} for r in records]}
    path.write_text(json.dumps(data, indent=1, default=str))


def plots(records: list[dict], out_dir: Path) -> list[Path]:
    """PNG plots (matplotlib, the optional ``plot`` extra): throughput vs K for the NOP
    workload, CPU per op vs block size for the stripe target. Returns the files written."""
    import matplotlib  # why: optional extra "plot"; only `uringbpf compare` without --quick pays for it
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # why: after use("Agg"), as matplotlib requires
    written = []

    def figure(name: str, series: dict[str, list[tuple[float, float]]], xlabel: str,
               ylabel: str, title: str) -> None:
        # one log2-x line plot per workload, one line per series
        fig, ax = plt.subplots(figsize=(7, 4))
        for label, pts in series.items():
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=8)
        path = out_dir / name
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    nops = [r for r in records if r["workload"] == "nop" and r["status"] == "ok"]
    if nops:
        figure("compare-nop.png",
               {impl: sorted((r["params"]["k"], summarize(r)["ops_s"] / 1e6) for r in nops
                             if r["impl"] == impl)
                for impl in sorted({r["impl"] for r in nops})},
               "K (in flight)", "M ops/s", "NOP chains: throughput vs K")
    st = [r for r in records if r["workload"] == "stripe" and r["status"] == "ok"]
    if st:
        figure("compare-stripe.png",
               {f"{impl} {op}": sorted((r["params"]["size"] // 1024, summarize(r)["cpu_us_op"])
                                       for r in st
                                       if r["impl"] == impl and r["params"]["op"] == op)
                for (impl, op) in sorted({(r["impl"], r["params"]["op"]) for r in st})},
               "I/O size (KiB)", "CPU µs per I/O", "stripe target over NBD: CPU per I/O vs size")
    return written


__all__ = ["WORKLOADS", "run", "table", "summarize", "write_json", "plots", "CannotExpress",
           "WrongOutput"]
