"""7.2's BTF names the loop context ``struct iou_ctx``; <io_uring/bpf_ops.h> does too, and
``struct io_ring_ctx`` (7.1 postings, liburing's test/bpf_defs.h) stays an alias."""

from pathlib import Path

import pytest

from uringbpf import BpfObject
from uringbpf.bpf import cc
from uringbpf.designs import loop

NOPS = Path(loop.__file__).resolve().parent / "examples" / "nops.bpf.c"


@pytest.mark.parametrize("spelling", ["iou_ctx", "io_ring_ctx"])
def test_nops_builds_and_runs_with_either_context_name(tmp_path, spelling):
    src = NOPS.read_text()
    assert "struct io_ring_ctx" in src
    src = src.replace("struct io_ring_ctx", f"struct {spelling}")
    path = tmp_path / "nops_named.bpf.c"
    path.write_text(src)
    out = cc.compile_c(path, tmp_path / "nops_named.bpf.o")
    ring = loop.make_ring(8)
    obj = BpfObject.open(out)
    try:
        # the program's BTF carries the name it was written with, resolved by the header
        assert b"iou_ctx" in Path(out).read_bytes()
        obj.struct_ops.nops_ops.ring_fd = ring.fd
        obj.bss.reqs_to_run = 50
        loop._set_ring_rodata(obj, ring)
        obj.load("interp")
        link = obj.attach_struct_ops("nops_ops")
        assert ring.enter(0, 0, 1) == 0 and obj.bss.reqs_to_run == 0
        link.destroy()
    finally:
        obj.close()
        ring.close()
