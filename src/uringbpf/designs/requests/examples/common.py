"""Shared set-up of the RFC examples: build requests.bpf.c, load it, make the ring.

Like the RFC's ``ring_prep()``: a ring with 8 SQEs and two extra CQs of 128 entries
(CQs 0, 1, 2), the four programs registered as slots 0..3, and the array map ``arr``
for results.
"""

from __future__ import annotations

from pathlib import Path

from uringbpf.bpf import cc
from uringbpf.bpf.object import BpfObject
from uringbpf.designs.requests import Ring

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "requests.bpf.c"
PROGRAMS = ("features", "counting", "pingpong", "write_file", "nop_loop")


def build(out_dir: str | Path | None = None) -> Path:
    """Compile requests.bpf.c with ``uringbpf cc`` (into ``out_dir``, else cached)."""
    if out_dir is None:
        return cc.compile_cached(SOURCE)
    return cc.compile_c(SOURCE, Path(out_dir) / "requests.bpf.o")


def setup(engine: str = "jit", out_dir: str | Path | None = None, obj_path: Path | None = None,
          **ring_kwargs) -> tuple[Ring, BpfObject]:
    """Load the object with ``engine`` ("jit" or "interp") and register its programs."""
    obj = BpfObject.open(obj_path or build(out_dir))
    obj.load(engine=engine, strict_engine=True)
    ring = Ring(8, nr_cq=2, cq_sizes=[128, 128], **ring_kwargs)
    ret = ring.register_bpf([obj.programs[name] for name in PROGRAMS])
    if ret:
        ring.close()
        raise OSError(-ret, "register_bpf failed")
    return ring, obj


def slots(obj: BpfObject, n: int = 10) -> list[int]:
    """The first ``n`` values of the ``arr`` map."""
    arr = obj.maps["arr"]
    return [arr.lookup_int(i) for i in range(n)]
