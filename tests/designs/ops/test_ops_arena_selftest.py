"""Ming Lei's IORING_OP_BPF v3 ``bpf_ext_memcpy`` as the series runs it: an arena map
(``BPF_MAP_TYPE_ARENA``, 2048 pages, ``__ulong(map_extra, 1ull << 44)``) that user space
maps at that address, fills and passes to the program as a plain number in ``.bss``
(``arena_buf``); ``__arena`` pointers (LLVM's BPF_ADDR_SPACE_CAST) into it; op 0 copies
an io_uring buffer into the arena through ``bpf_dynptr_slice``, op 1 the arena into a
buffer through ``bpf_dynptr_data``, in ``__noinline`` word-copy functions called from
``bpf_loop`` callbacks.  The program is our own reproduction
(tests/designs/data/opbpf/arena_memcpy.bpf.c), built with ``uringbpf cc`` against
``uringbpf vmlinux --design opbpf``; the checks are the driver's (bpf_ext_memcpy.c):
CQE user_data 0xCAFEBABE, res == the buffer size, the 0xAB pattern byte by byte in the
arena (read tests) or the buffer (write tests), for USER, VEC (5 iovecs), FIXED and
REG_VEC buffers, on both engines."""

from __future__ import annotations

import ctypes
import mmap
from pathlib import Path

import pytest

from uringbpf.bpf import cc, isa
from uringbpf.bpf.verifier import verify
from uringbpf.bpf.object import BpfObject
from uringbpf.designs import ops
from uringbpf.tools import vmlinux
from uringbpf.uring import uapi as u

DATA = Path(__file__).resolve().parents[1] / "data" / "opbpf"
SIZE = 512 * 2050                    # the driver's TEST_BUF_SIZE
PATTERN = 0xAB
USER, FIXED, VEC, REG_VEC = (ops.IO_BPF_BUF_USER, ops.IO_BPF_BUF_FIXED, ops.IO_BPF_BUF_VEC,
                             ops.IO_BPF_BUF_REG_VEC)


@pytest.fixture(scope="module")
def arena_obj(tmp_path_factory):
    d = tmp_path_factory.mktemp("opbpf_arena")
    vmlinux.write("opbpf", d)
    return cc.compile_c(DATA / "arena_memcpy.bpf.c", d / "arena_memcpy.bpf.o",
                        include_dirs=[d], cpu="v4")


@pytest.fixture(params=["interp", "jit"])
def setup(request, arena_obj):
    """The driver's setup(): a BPF_EXT ring, the two ops as ids 0 and 1, the arena
    mapped at map_extra, zeroed, its address stored in .bss.arena_buf."""
    ring = ops.create_ring(8)
    obj = BpfObject.open(arena_obj)
    obj.struct_ops["copy_in_ops"].id = 0
    obj.struct_ops["copy_out_ops"].id = 1
    for m in obj.struct_ops:
        m.ring_fd = ring.fd
    obj.load(engine=request.param)
    arena = obj.maps["arena"]
    assert arena.map_extra == 1 << 44 and arena.value_addr == 1 << 44   # user_vm_start
    mem = arena.memory()
    assert len(mem) == 2048 * mmap.PAGESIZE
    mem[:] = bytes(len(mem))
    obj.bss.arena_buf = arena.value_addr
    links = [obj.attach_struct_ops(m.name) for m in obj.struct_ops]
    yield ring, obj, mem
    del mem
    for link in links:
        link.destroy()
    obj.close()
    ring.close()


def _buffer(kind, buf, keep):
    """The driver's build_desc(): 5 equal iovecs (the last takes the remainder)."""
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    if kind == USER:
        return (USER, addr, SIZE)
    if kind == FIXED:
        return (FIXED, addr, SIZE, 0)
    chunk = SIZE // 5
    iov = (u.Iovec * 5)()
    for i in range(5):
        iov[i].iov_base, iov[i].iov_len = addr + i * chunk, chunk
    iov[4].iov_len += SIZE % 5
    keep.append(iov)
    return (kind, ctypes.addressof(iov), 5, 0)


def _submit(ring, op, kind, buf):
    """The driver's submit_op() (with register_fixed() around it): (user_data, res)."""
    keep: list = []
    fixed = kind in (FIXED, REG_VEC)
    if fixed:
        ring.register_buffers([memoryview(buf)])
    try:
        ring.prep_bpf(op, ops.buf_descs(_buffer(kind, buf, keep)), user_data=0xCAFEBABE)
        ring.submit()
        (cqe,) = ring.wait(1)
        return cqe.user_data, cqe.res
    finally:
        if fixed:
            ring.unregister_buffers()


@pytest.mark.parametrize("kind", [USER, VEC, FIXED, REG_VEC])
def test_read_buffer_to_arena(setup, kind):
    ring, _, arena = setup
    buf = mmap.mmap(-1, SIZE)
    buf[:] = bytes([PATTERN]) * SIZE
    assert _submit(ring, 0, kind, buf) == (0xCAFEBABE, SIZE)
    assert arena[:SIZE] == bytes([PATTERN]) * SIZE
    assert arena[SIZE:SIZE + 4096] == bytes(4096)       # nothing past the copy


@pytest.mark.parametrize("kind", [USER, VEC, FIXED, REG_VEC])
def test_write_arena_to_buffer(setup, kind):
    ring, _, arena = setup
    buf = mmap.mmap(-1, SIZE)
    arena[:SIZE] = bytes([PATTERN]) * SIZE
    assert _submit(ring, 1, kind, buf) == (0xCAFEBABE, SIZE)
    assert buf[:] == bytes([PATTERN]) * SIZE


def test_arena_accesses_are_probe_mem32(setup):
    """The verifier rewrote the word copies to PROBE_MEM32 (as the kernel does), and
    verifying the program again starts from the original instructions."""
    _, obj, _ = setup
    for name, cls in (("issue_in", isa.STX), ("issue_out", isa.LDX)):
        prog = obj.programs[name].program
        probes = [i for i in prog.insns if isa.is_arena_access(i)]
        assert prog.arena_xlated and [i.cls for i in probes] == [cls]   # the word copy
        verify(prog, platform=obj.platform)
        assert [i for i in prog.insns if isa.is_arena_access(i)] == probes
