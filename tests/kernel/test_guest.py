"""Guest-only checks of the kernel executor that are not kernel-vs-emulation comparisons."""

from __future__ import annotations

from pathlib import Path

import pytest

from uringbpf import BpfObject
from uringbpf.bpf import kernel_exec

OBJS = Path(__file__).resolve().parents[2] / "build" / "kernel-vm" / "objs"


def test_auto_picks_the_kernel_on_7_2():
    assert kernel_exec.has_loop_ops()
    assert kernel_exec.resolve_executor("auto") == "kernel"
    obj = BpfObject.open(OBJS / "probe.o")
    try:
        obj.load("interp", executor="auto")
        assert obj.executor == "kernel"
        assert obj.programs["probe_loop_step"].engine == "kernel"
    finally:
        obj.close()


def test_kernel_btf_layout_of_io_uring_bpf_ops():
    """The kernel's struct is what include/io_uring/bpf_ops.h declares (24 bytes)."""
    st = kernel_exec.vmlinux().struct("io_uring_bpf_ops")
    assert st.size == 24
    assert [(m.name, m.offset) for m in st.members.values()] == \
        [("loop_step", 0), ("ring_fd", 8), ("priv", 16)]
    ours = BpfObject.open(OBJS / "probe.o")
    try:
        mine = ours.struct_ops.probe_ops
        assert [(n, mine.field_offset(n)) for n in mine.member_names] == \
            [("loop_step", 0), ("ring_fd", 8), ("priv", 16)]
        assert len(mine.data) == 24
    finally:
        ours.close()
    assert kernel_exec.vmlinux().struct("iou_loop_params").size == 4
    for kf in ("bpf_io_uring_get_region", "bpf_io_uring_submit_sqes"):
        assert kf in kernel_exec.vmlinux().funcs


def test_refused_loop_step_carries_the_kernel_log():
    obj = BpfObject.open(OBJS / "v_region_past_end.o")
    try:
        with pytest.raises(kernel_exec.KernelLoadError) as info:
            obj.load("interp", executor="kernel")
        assert info.value.errno == 13 and info.value.log
    finally:
        obj.close()
