"""The default platform: the base of ``bpf/`` plus every design, one line each.

This is the one place that knows the designs exist. Each line declares what a design
provides to programs (kfuncs, helper ids, struct_ops types, section prefixes); the design's
module is imported only when a program needs one of those, so loading a socket filter
imports no design and compiles no C, while ``BpfObject.open(loop_prog).load()`` imports
the loop design on its first kfunc lookup. ``Platform.install`` checks each declaration
against what the design really contributes. To add a design, see docs/adding-a-design.md.

(The 7.0 cBPF filter design gives programs nothing — it acts on rings through
``IORING_REGISTER_BPF_FILTER`` — so it has no line here.)
"""

from __future__ import annotations

from .bpf.platform import Platform, base_platform

__all__ = ["default_platform"]


def default_platform() -> Platform:
    """A new platform: the base plus the loop, requests, ops and kbuf designs (lazily)."""
    p = base_platform("default")
    p.add_design("uringbpf.designs.loop", struct_ops={"io_uring_bpf_ops"},
                 kfuncs={"bpf_io_uring_submit_sqes", "bpf_io_uring_get_region"})
    p.add_design("uringbpf.designs.requests", helpers={164, 165, 166, 167}, sections={"iouring"})
    p.add_design("uringbpf.designs.ops", struct_ops={"uring_bpf_ops"}, helpers={201, 202, 203},
                 kfuncs={"uring_bpf_set_result", "uring_bpf_memcpy", "bpf_iter_uring_buf_new",
                         "bpf_iter_uring_buf_next", "bpf_iter_uring_buf_destroy",
                         "bpf_uring_buf_dynptr", "bpf_uring_buf_dynptr_rdwr", "bpf_dynptr_slice",
                         "bpf_dynptr_slice_rdwr", "bpf_dynptr_size"})
    p.add_design("uringbpf.designs.kbuf", kfuncs={"bpf_kbuf_read", "bpf_kbuf_write"})
    return p
