"""Every Python-written example runs both ways -- in the application and compiled in the
ring (JIT and interpreter) -- with the same observables."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from uringbpf import BpfObject
from uringbpf.designs import loop

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"


def _example(name: str):
    """examples/python/NAME.py under a name of its own: other tests import the C examples'
    drivers as plain `nops`, `cp`, `pingpong`."""
    import importlib.util
    modname = f"uringbpf_python_example_{name}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod       # inspect finds the sections' source through it
    spec.loader.exec_module(mod)
    return mod


nops = _example("nops")


def _cq_state(ring) -> tuple[int, int]:
    lay = loop.ring_layout(ring)
    return (ctypes.c_uint32.from_address(lay.cq_head).value,
            ctypes.c_uint32.from_address(lay.cq_tail).value)


def _run_nops(mode: str, count: int, k: int) -> dict:
    ring = loop.make_ring(k)
    try:
        nops.setup(ring, count, k)
        if mode == "app":
            ret = nops.nops_loop_step.run_in_app(ring)
        else:
            with nops.nops_loop_step.attach(ring, mode) as handle:
                assert handle.engine == mode
                ret = handle.enter()
        return {"ret": ret, "globals": nops.st.values(), "cq": _cq_state(ring)}
    finally:
        ring.close()


@pytest.mark.parametrize("count,k", [(1, 8), (100, 8), (257, 4)])
def test_nops_same_observables_both_ways(count, k):
    app = _run_nops("app", count, k)
    jit = _run_nops("jit", count, k)
    interp = _run_nops("interp", count, k)
    assert app == jit == interp
    assert app["ret"] == 0
    assert app["globals"] == {"reqs_to_run": 0, "reqs_inflight": 0, "bad_cqes": 0}
    assert app["cq"] == (count, count)          # every NOP completed and was consumed


def test_nops_emit_obj_loads_with_our_loader(tmp_path):
    path = nops.bpf.emit_obj(tmp_path / "nops.bpf.o")
    data = Path(path).read_bytes()
    assert data == nops.bpf.compile().elf
    obj = BpfObject.open(path)
    try:
        assert set(obj.programs) == {"nops_loop_step"}
        assert obj.struct_ops.nops_ops.loop_step is not None
        assert sorted(obj.rodata.variables) == sorted(nops.cfg._fields)
        assert obj.rodata.cq_entries == 8
        assert obj.btf is not None
        obj.load()
        assert obj.programs["nops_loop_step"].engine == "jit"
    finally:
        obj.close()


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool is not installed")
def test_nops_emit_obj_btf_parses_with_bpftool(tmp_path):
    path = nops.bpf.emit_obj(tmp_path / "nops.bpf.o")
    out = subprocess.run(["bpftool", "btf", "dump", "file", path], capture_output=True, text=True,
                         check=True).stdout
    assert "STRUCT 'io_uring_bpf_ops' size=24 vlen=3" in out
    assert "FUNC 'nops_loop_step'" in out
    assert "FUNC 'bpf_io_uring_submit_sqes'" in out and "linkage=extern" in out
    assert "DATASEC '.rodata'" in out


cp = _example("cp")


@pytest.mark.parametrize("size,chunk,depth", [(0, 4096, 1), (300_001, 65536, 1), (200_000, 16384, 4),
                                              (100_000, 4096, 8)])
def test_cp_same_observables_both_ways(tmp_path, size, chunk, depth):
    src = tmp_path / "src.bin"
    payload = bytes((i * 7 + i // 251) & 0xFF for i in range(size))
    src.write_bytes(payload)
    results = {}
    for mode in ("app", "jit", "interp"):
        dst = tmp_path / f"dst-{mode}.bin"
        r = cp.copy(str(src), str(dst), chunk=chunk, depth=depth, app=mode == "app", engine=mode)
        r.pop("seconds")
        results[mode] = (r, dst.read_bytes())
    assert results["app"] == results["jit"] == results["interp"]
    r, written = results["app"]
    assert written == payload
    assert r["ret"] == 0 and r["error"] == 0 and r["done"] == 1 and r["copied"] == size
    assert r["pending"] == 0


def test_cp_error_is_recorded_the_same_way(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 10000)
    results = {}
    for mode in ("app", "jit"):
        # the output is opened read-only: the first write fails with -EBADF
        dst = tmp_path / "ro.bin"
        dst.write_bytes(b"")
        in_fd = os.open(src, os.O_RDONLY)
        out_fd = os.open(dst, os.O_RDONLY)
        ring = loop.make_ring(8)
        buf = mmap.mmap(-1, 4096)
        try:
            cp.setup(ring, in_fd, out_fd, ctypes.addressof(ctypes.c_char.from_buffer(buf)), 4096, 1)
            if mode == "app":
                ret = cp.cp_loop_step.run_in_app(ring)
            else:
                with cp.cp_loop_step.attach(ring, "jit") as h:
                    ret = h.enter()
            results[mode] = (ret, cp.st.values())
        finally:
            ring.close()
            buf.close()
            os.close(in_fd)
            os.close(out_fd)
    assert results["app"] == results["jit"]
    assert results["app"][1]["error"] == -errno.EBADF


crc32c_op = _example("crc32c_op")


@pytest.mark.parametrize("size,block", [(10_000, 65536), (150_001, 65536), (1, 4096)])
def test_crc32c_op_same_observables_both_ways(tmp_path, size, block):
    path = tmp_path / "data.bin"
    payload = bytes((i * 31 + (i >> 9)) & 0xFF for i in range(size))
    path.write_bytes(payload)
    app = crc32c_op.checksum_file(str(path), app=True, block=block)
    jit = crc32c_op.checksum_file(str(path), engine="jit", block=block)
    interp = crc32c_op.checksum_file(str(path), engine="interp", block=block)
    assert app == jit == interp
    blocks = [payload[o:o + block] for o in range(0, size, block)]
    assert [b[0] for b in app["blocks"]] == [len(b) for b in blocks]
    assert app["blocks"][-1][2] == crc32c_op.crc32c(blocks[-1])
    assert [b[1] for b in app["blocks"]] == [crc32c_op.crc32c(b) & 0x7FFFFFFF for b in blocks]
    assert app["bytes_seen"] == size and app["nr_cleanup"] == len(blocks)


pingpong = _example("pingpong")


def test_pingpong_same_observables_both_ways():
    app = pingpong.play(app=True)
    jit = pingpong.play(engine="jit")
    interp = pingpong.play(engine="interp")
    assert app == jit == interp
    assert app == {"submitted": 3, "done": True, "seen": [20, 21], "runs": 24}


@pytest.mark.parametrize("mode", ["app", "jit"])
def test_cp_from_a_pipe_is_short_read_proof(tmp_path, mode):
    import threading
    payload = bytes((i * 13 + 5) & 0xFF for i in range(200_000))
    r_fd, w_fd = os.pipe()

    def writer():
        # irregular pieces, so reads come back short at arbitrary points
        pos, sizes = 0, [1, 4095, 7, 65536, 3000, 123]
        k = 0
        while pos < len(payload):
            n = sizes[k % len(sizes)]
            pos += os.write(w_fd, payload[pos:pos + n])
            k += 1
        os.close(w_fd)

    t = threading.Thread(target=writer)
    t.start()
    dst = tmp_path / f"out-{mode}.bin"
    out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        r = cp.copy_fd(r_fd, out_fd, chunk=16384, depth=1, app=mode == "app", engine=mode)
    finally:
        t.join()
        os.close(out_fd)
        os.close(r_fd)
    assert r["error"] == 0 and r["done"] == 1 and r["copied"] == len(payload)
    assert dst.read_bytes() == payload
    # every write is exactly as long as the read before it: one write per non-empty read
    assert r["writes"] == r["reads"] - 1 + r["short_writes"]


def test_a_second_attachment_of_the_same_module_is_refused():
    r1, r2 = loop.make_ring(8), loop.make_ring(8)
    try:
        nops.setup(r1, 10, 8)
        with nops.nops_loop_step.attach(r1) as h1:
            with pytest.raises(RuntimeError, match="already belongs to a loaded object"):
                nops.nops_loop_step.attach(r2)
            # the first attachment still owns the sections
            assert h1.enter() == 0 and nops.st.reqs_to_run == 0
        # after the first detaches, a new attachment works
        with nops.nops_loop_step.attach(r2) as h:
            nops.st.reqs_to_run = 10
            assert h.enter() == 0
    finally:
        r1.close()
        r2.close()
