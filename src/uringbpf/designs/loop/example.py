"""The loop design's example programs (``designs/loop/examples/*.bpf.c``): build, load, run.

Library code finds them through the package (``EXAMPLES_DIR``), never through a source
checkout's top-level ``examples/`` (that is a symlink to the same folder).
"""

from __future__ import annotations

from pathlib import Path

from ...bpf import cc
from ...bpf.object import BpfObject
from ...uring import uapi
from ...uring.ring import Ring

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
RING_FLAGS = (uapi.IORING_SETUP_SINGLE_ISSUER | uapi.IORING_SETUP_DEFER_TASKRUN
              | uapi.IORING_SETUP_NO_SQARRAY | uapi.IORING_SETUP_CQSIZE
              | uapi.IORING_SETUP_SQ_REWIND)


def example_object(name: str) -> Path:
    """``examples/loop/<name>.bpf.c`` compiled with ``uringbpf cc`` (cached, see cc.compile_cached)."""
    src = EXAMPLES_DIR / f"{name}.bpf.c"
    if not src.exists():
        raise FileNotFoundError(f"{src}: the loop examples ship with the source tree")
    return cc.compile_cached(src)


def make_ring(entries: int = 8, cq_entries: int | None = None, flags: int = RING_FLAGS):
    """A ring the loop can drive: SINGLE_ISSUER | DEFER_TASKRUN | NO_SQARRAY | SQ_REWIND."""
    return Ring(entries, cq_entries=cq_entries or entries, flags=flags)


def _set_ring_rodata(obj, ring) -> None:
    ro = obj.rodata
    ro.cq_head_offset = ring.params.cq_off.head
    ro.cq_tail_offset = ring.params.cq_off.tail
    ro.cqes_offset = ring.params.cq_off.cqes
    ro.cq_entries = ring.params.cq_entries
    ro.sq_entries = ring.params.sq_entries


def open_example(name: str, ring, *, engine: str = "jit", verify: bool = True,
                 executor: str = "emulated", **rodata):
    """Open, configure (ring offsets + ``rodata``) and load an example; returns the object.

    ``executor`` is :meth:`BpfObject.load`'s: ``"kernel"`` runs the program in a kernel
    that has ``io_uring_bpf_ops`` (Linux >= 7.1), ``"auto"`` picks it when there is one.
    """
    obj = BpfObject.open(example_object(name))
    st = next(iter(obj.struct_ops))
    st.ring_fd = ring.fd
    _set_ring_rodata(obj, ring)
    for key, value in rodata.items():
        setattr(obj.rodata, key, value)
    obj.load(engine, verify=verify, executor=executor)
    return obj


def nops_example(ring, total: int, *, engine: str = "jit", cap: int | None = None,
                 verify: bool = True, executor: str = "emulated"):
    """examples/loop/nops.bpf.c attached to ``ring`` with ``total`` NOPs to run (``executor``:
    see :func:`open_example`)."""
    obj = BpfObject.open(example_object("nops"))
    obj.struct_ops.nops_ops.ring_fd = ring.fd
    obj.bss.reqs_to_run = total
    _set_ring_rodata(obj, ring)
    obj.rodata.max_inflight = cap or ring.params.sq_entries
    obj.load(engine, verify=verify, executor=executor)
    return obj, obj.attach_struct_ops("nops_ops")
