"""Guest-only checks of the kernel executor that are not kernel-vs-emulation comparisons."""

from __future__ import annotations

import errno
import struct
from pathlib import Path

import pytest

from uringbpf import BpfObject
from uringbpf.bpf import kernel_exec
from uringbpf.errors import MapError

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
        # line_info went with it: the log names the source line refused
        assert "@ v_region_past_end.bpf.c:" in info.value.log
    finally:
        obj.close()


@pytest.mark.parametrize("name", ["cksum", "nops", "cp", "g_global", "arena_fixed"])
def test_examples_load_with_line_info(name):
    """Every loop example loads with line_info (cksum's level-1 log peaks past 1 MiB with
    it: the load is repeated without a log, which once came back EINVAL)."""
    obj = BpfObject.open(OBJS / f"{name}.o")
    try:
        for prog in obj.programs.values():
            assert kernel_exec.prog_line_info(obj, prog)
        obj.load("interp", executor="kernel")
        assert obj.executor == "kernel"
    finally:
        obj.close()


def _mapping_at(addr: int) -> str | None:
    """The /proc/self/maps line of the mapping starting at ``addr``, or None."""
    with open("/proc/self/maps") as f:
        for line in f:
            if int(line.split("-", 1)[0], 16) == addr:
                return line.strip()
    return None


def test_kernel_arena_replaces_the_emulated_one_at_map_extra():
    """arena_fixed (map_extra 1 << 44): after a kernel load the object's arena is the
    kernel's map, mmapped at 1 << 44 (the emulated one that held the address is gone),
    its __arena globals are the ELF's bytes plus what Python set before load(); closing
    the object frees the address for the next object."""
    obj = BpfObject.open(OBJS / "arena_fixed.o")
    try:
        emulated = obj.maps["arena"]
        globs = obj.datasec(".addr_space.1")
        globs.seed = 42
        obj.load("interp", executor="kernel")
        arena = obj.maps["arena"]
        assert isinstance(arena, kernel_exec.KernelArena) and emulated.closed
        assert obj.map_list[obj.map_list.index(arena)] is arena and arena.fd >= 0
        assert arena.value_addr == arena.map_extra == 1 << 44
        assert "bpf-map" in _mapping_at(1 << 44)
        assert globs.map is arena and globs.seed == 42 and globs.steps_a == 0
        assert struct.unpack("<4Q", globs.table) == (1, 2, 3, 4)
        # the globals sit in the arena's last page, where the program's address points
        last = (arena.max_entries - 1) * 4096
        assert struct.unpack_from("<Q", arena.memory(), last)[0] == 1
    finally:
        obj.close()
    assert _mapping_at(1 << 44) is None
    again = BpfObject.open(OBJS / "arena_fixed.o")      # the emulated arena at 1 << 44
    try:
        assert again.maps["arena"].value_addr == 1 << 44
    finally:
        again.close()


def test_refused_kernel_load_leaves_the_emulated_arena():
    """A program the kernel refuses: the object keeps its emulated arena, still at
    map_extra and usable (the kernel arena was never mapped there)."""
    obj = BpfObject.open(OBJS / "v_arena_params_past_end.o")
    try:
        with pytest.raises(kernel_exec.KernelLoadError):
            obj.load("interp", executor="kernel")
        arena = obj.maps["arena"]
        assert not isinstance(arena, kernel_exec.KernelArena) and not arena.closed
        assert arena.value_addr == 1 << 44
        assert obj.datasec(".addr_space.1").hits == 0
    finally:
        obj.close()


def test_kernel_arena_pages_outlive_close_while_viewed():
    """A memoryview of the kernel arena taken before close() stays readable (the mapping
    goes with the last view), so Python never reads unmapped memory."""
    obj = BpfObject.open(OBJS / "arena_any.o")
    obj.load("interp", executor="kernel")
    arena = obj.maps["arena"]
    view = arena.memory()
    last = (arena.max_entries - 1) * 4096
    obj.close()
    assert arena.closed
    assert struct.unpack_from("<Q", view, last)[0] == 1    # table[0] survives
    with pytest.raises(Exception, match="not mapped"):
        arena.memory()
    start = arena._addr
    del view
    assert _mapping_at(start) is None


def test_kernel_arena_refuses_user_space_page_calls():
    """A kernel arena's pages are the programs' to allocate: the emulated arena's
    arena_alloc_pages/free/reserve raise on it (MapError EOPNOTSUPP) instead of guessing."""
    obj = BpfObject.open(OBJS / "arena_any.o")
    try:
        obj.load("interp", executor="kernel")
        arena = obj.maps["arena"]
        for verb in (arena.arena_alloc_pages, arena.arena_free_pages, arena.arena_reserve_pages):
            with pytest.raises(MapError) as info:
                verb(1)
            assert info.value.errno == errno.EOPNOTSUPP
    finally:
        obj.close()


def test_fixed_arena_address_held_by_a_view_is_a_clear_error():
    """A memoryview of the emulated arena kept across load() keeps 1 << 44 mapped: the
    kernel arena cannot go there, and the load says why (EEXIST) instead of mapping over
    memory Python still reads."""
    obj = BpfObject.open(OBJS / "arena_fixed.o")
    view = obj.maps["arena"].memory()
    try:
        with pytest.raises(kernel_exec.KernelLoadError) as info:
            obj.load("interp", executor="kernel")
        assert info.value.errno == errno.EEXIST and "memoryview" in str(info.value)
        assert not obj.loaded
        view[0] = 1                      # still the emulated arena's memory
    finally:
        del view
        obj.close()
    again = BpfObject.open(OBJS / "arena_fixed.o")
    again.close()
