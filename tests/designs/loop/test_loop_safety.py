"""The loop design and the runtime's own memory (issue #13 item 5): an SQE a loop_step
program submits that names a map value, a BPF stack or the loop context completes with
-EFAULT without the kernel seeing it; the same SQE aimed at user memory works."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from loop_support import make_ring, u32
from uringbpf.bpf import maps as maps_mod
from uringbpf.bpf.memory import Buffer
from uringbpf.designs import loop
from uringbpf.uring import uapi

TOKEN = 0x5AFE


class ReadInto:
    """loop_step in Python (the kfuncs' C implementations, as a BPF program calls them):
    one SQE built by ``fill(sqe)``, then wait for its CQE and stop."""

    def __init__(self, ring, fill):
        self.p = ring.params
        self.fill = fill
        self.sent = False
        self.res = None

    def __call__(self, args_addr):
        lib = loop.lib()
        ctx = ctypes.c_uint64.from_address(args_addr).value
        params = ctypes.c_uint64.from_address(args_addr + 8).value
        p = self.p
        sqes = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_SQ, p.sq_entries * 64, 0, 0)
        rings = lib.uringbpf_kf_get_region(ctx, loop.IOU_REGION_CQ,
                                           p.cq_off.cqes + p.cq_entries * 16, 0, 0)
        head, tail = u32(rings + p.cq_off.head), u32(rings + p.cq_off.tail)
        if not self.sent:
            ctypes.memset(sqes, 0, 64)
            self.fill(sqes)
            ctypes.c_uint64.from_address(sqes + 32).value = TOKEN
            self.sent = True
            assert ctypes.c_int64(lib.uringbpf_kf_submit_sqes(ctx, 1, 0, 0, 0)).value == 1
        if tail.value != head.value:
            cqe = rings + p.cq_off.cqes + 16 * (head.value & (p.cq_entries - 1))
            assert ctypes.c_uint64.from_address(cqe).value == TOKEN
            self.res = ctypes.c_int32.from_address(cqe + 8).value
            head.value += 1
            return loop.IOU_LOOP_STOP
        u32(params).value = head.value + 1
        return loop.IOU_LOOP_CONTINUE


def _sqe(op, fd, addr, length):
    def fill(sqe):
        ctypes.c_uint8.from_address(sqe).value = op
        ctypes.c_int32.from_address(sqe + 4).value = fd
        ctypes.c_uint64.from_address(sqe + 8).value = 0            # off
        ctypes.c_uint64.from_address(sqe + 16).value = addr
        ctypes.c_uint32.from_address(sqe + 24).value = length
    return fill


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(b"\xAA" * 4096)
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


def _run(fill, python_filter=False):
    ring = make_ring()
    try:
        if python_filter:         # a filter only Python runs: submit goes through Python
            ring.add_sqe_filter(lambda sqe: 0)
        step = ReadInto(ring, fill)
        link = loop.attach_loop(ring, step)
        try:
            assert link.run() == 0
            stats = link.stats()
        finally:
            link.destroy()
        return step.res, stats
    finally:
        ring.close()


@pytest.mark.parametrize("python_filter", [False, True])
def test_read_into_a_map_value_fails_with_efault(data_file, python_filter):
    m = maps_mod.Map("victim", 2, 4, 64, 1)          # BPF_MAP_TYPE_ARRAY
    before = ctypes.string_at(m.value_addr, 64)
    res, stats = _run(_sqe(uapi.IORING_OP_READ, data_file, m.value_addr, 64), python_filter)
    assert res == -errno.EFAULT
    assert stats["sqes_faulted"] == 1
    assert ctypes.string_at(m.value_addr, 64) == before       # the kernel never wrote it


def test_read_into_a_bpf_stack_or_the_loop_context_fails(data_file):
    stack = Buffer(512, guard=True)                   # as every engine's BPF stack is
    res, _ = _run(_sqe(uapi.IORING_OP_READ, data_file, stack.addr + 256, 8))
    assert res == -errno.EFAULT
    assert stack.read(0, 512) == bytes(512)


def test_readv_with_one_iovec_at_a_map_value_fails(data_file):
    m = maps_mod.Map("victim", 2, 4, 64, 1)
    user = Buffer(64)
    iov = Buffer(32)
    iov.write(0, user.addr.to_bytes(8, "little") + (16).to_bytes(8, "little")
              + m.value_addr.to_bytes(8, "little") + (16).to_bytes(8, "little"))
    res, _ = _run(_sqe(uapi.IORING_OP_READV, data_file, iov.addr, 2))
    assert res == -errno.EFAULT
    assert user.read(0, 16) == bytes(16)              # nothing was read at all


def test_read_into_user_memory_still_works(data_file):
    user = Buffer(64)
    res, stats = _run(_sqe(uapi.IORING_OP_READ, data_file, user.addr, 64))
    assert res == 64
    assert stats["sqes_faulted"] == 0
    assert user.read(0, 64) == b"\xAA" * 64


# --- item 10: close/destroy from another thread while the loop runs --------------------

_CLOSE_WHILE_RUNNING = r'''
import sys, threading, time
sys.path.insert(0, {support!r})
from loop_support import make_ring, nops_asm_program
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf import jit
from uringbpf.bpf.interp import Interpreter
from uringbpf.designs import loop
from uringbpf.uring import uapi

what, engine = sys.argv[1], sys.argv[2]

class InterpStep:
    engine = "interp"
    def __init__(self, prog):
        self.runtime = Runtime()
        self.interp = Interpreter(prog, self.runtime)
    def __call__(self, r1):
        return self.interp.run(r1)

out = {{}}
ready = threading.Event()

def run():
    # SINGLE_ISSUER + DEFER_TASKRUN: the thread that enters the ring must create it
    try:
        ring = make_ring()
        region = loop.register_region(ring, 8)
        state = region.view().cast("I")
        state[0], state[1] = 2**31, 0          # NOPs for far longer than the test
        if what == "obj":                    # the C example through the loader
            obj, link = loop.nops_example(ring, 2**30, engine=engine)
            out["obj"], out["link"], out["ring"] = obj, link, ring
        else:
            prog = nops_asm_program(ring)
            step = jit.compile(prog, Runtime()) if engine == "jit" else InterpStep(prog)
            out["link"], out["ring"] = loop.attach_loop(ring, step), ring
        step = None
        ready.set()
        out["ret"] = ring.enter(0, 0, uapi.IORING_ENTER_GETEVENTS)
    except BaseException as exc:
        out["exc"] = exc
    finally:
        ready.set()

t = threading.Thread(target=run)
t.start()
ready.wait(30)
link, ring = out["link"], out["ring"]
while link.stats()["steps"] < 50 and t.is_alive():
    time.sleep(0.001)
if what == "ring":
    ring.close()
elif what == "obj":
    out["obj"].close()                       # links, programs, maps: the loop ends first
elif what == "link":                      # what obj.close() does: links, then programs
    link.destroy()
    link.program = None
    import gc; gc.collect()
t.join(10)
assert not t.is_alive(), "the loop did not end"
exc = out.get("exc")
ret = out.get("ret")
print("RESULT", type(exc).__name__ if exc else ret, exc)
'''


@pytest.mark.parametrize("engine", ["jit", "interp"])
@pytest.mark.parametrize("what", ["ring", "link", "obj"])
def test_close_from_another_thread_ends_the_loop_cleanly(tmp_path, what, engine):
    """ring.close() (or link.destroy() then dropping the program, as obj.close() does) from
    another thread while ring.enter() runs the loop: no crash, the loop ends with a clear
    -ECANCELED, never a spurious out-of-bounds error."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "close_race.py"
    script.write_text(_CLOSE_WHILE_RUNNING.format(support=str(Path(__file__).resolve().parents[1])))
    proc = subprocess.run([sys.executable, str(script), what, engine], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")][-1]
    assert "LoopError" not in line and "out of bounds" not in line, line
    assert "ECANCELED" in line or str(-errno.ECANCELED) in line or "Operation canceled" in line, line


# --- item 13: copy_fd honours and advances the output position, as cp does -------------

@pytest.mark.parametrize("engine,depth", [("jit", 1), ("interp", 1), ("jit", 4)])
def test_copy_fd_keeps_a_header_and_advances_the_output_position(tmp_path, engine, depth):
    data = bytes(range(256)) * 97 + b"tail"             # several chunks, a short last one
    (tmp_path / "src").write_bytes(data)
    header = b"HEADER, written before the copy\n"
    in_fd = os.open(tmp_path / "src", os.O_RDONLY)
    out_fd = os.open(tmp_path / "dst", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(out_fd, header)
        res = loop.copy_fd(in_fd, out_fd, engine=engine, chunk=4096, depth=depth)
        assert res.done and not res.error and res.copied == len(data)
        assert os.lseek(out_fd, 0, os.SEEK_CUR) == len(header) + len(data)
        assert os.lseek(in_fd, 0, os.SEEK_CUR) == len(data)
        os.write(out_fd, b"!")                           # appended after the copy, as cp
    finally:
        os.close(in_fd)
        os.close(out_fd)
    assert (tmp_path / "dst").read_bytes() == header + data + b"!"
