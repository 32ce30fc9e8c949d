"""Runtime safety (issue #13): runtime-owned memory is not user memory (item 5), one
bpf_loop behaviour on both engines (item 6), one loaded program on two threads (item 8)."""

from __future__ import annotations

import ctypes
import errno
import threading

import pytest

from uringbpf.bpf import isa, jit
from uringbpf.bpf.asm import assemble
from uringbpf.bpf.helpers import Arg, Helper, Proto, Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.memory import BpfRuntimeError, Buffer, guard_check, guard_check_sqe
from uringbpf.bpf import maps as maps_mod

U64 = isa.U64


def prog(text: str) -> isa.Program:
    return isa.Program("t", assemble(text))


def helper(fn, name="h") -> Helper:
    return Helper(Proto(name, (Arg.ANYTHING,) * 5), fn, 1000, None)


# --- item 8: one program, two threads ----------------------------------------------------

# Stores its argument in its frame, calls helper 1000 (which may block), returns the value
# read back from the frame.
_FRAME_PROG = """
    stxdw [%r10-8], %r1
    call 1000
    ldxdw %r0, [%r10-8]
    exit
"""


def _two_threads(make):
    """Thread A enters the program and blocks in the helper; thread B runs it meanwhile."""
    entered, release = threading.Event(), threading.Event()

    def impl(runtime, r1, r2, r3, r4, r5):
        if threading.current_thread().name == "A":
            entered.set()
            assert release.wait(10)
        return 0

    run = make(impl)
    out: dict[str, object] = {}

    def go(name, arg):
        try:
            out[name] = run(arg)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            out[name] = exc

    a = threading.Thread(target=go, args=("A", 111), name="A")
    a.start()
    assert entered.wait(10)
    b = threading.Thread(target=go, args=("B", 222), name="B")
    b.start()
    b.join(10)
    release.set()
    a.join(10)
    return out


def test_jit_refuses_a_second_thread_with_a_clear_error():
    fn_box = {}

    def make(impl):
        fn_box["fn"] = jit.compile(prog(_FRAME_PROG), Runtime(), helpers={1000: helper(impl)})
        return fn_box["fn"]

    out = _two_threads(make)
    assert out["A"] == 111
    assert isinstance(out["B"], BpfRuntimeError)
    assert "another thread" in str(out["B"])
    # the owner is released: the program runs again on either thread afterwards
    assert fn_box["fn"](5) == 5
    t = threading.Thread(target=lambda: out.__setitem__("C", fn_box["fn"](7)))
    t.start()
    t.join(10)
    assert out["C"] == 7


def test_interpreter_gives_each_thread_its_own_stack():
    def make(impl):
        return Interpreter(prog(_FRAME_PROG), Runtime(), helpers={1000: helper(impl)})

    out = _two_threads(make)
    assert out == {"A": 111, "B": 222}


def test_interpreter_threads_nest_independently():
    """Thread B's runs must not take thread A's nesting level or call state."""
    interp_box = {}
    entered, release = threading.Event(), threading.Event()

    def impl(runtime, r1, r2, r3, r4, r5):
        if threading.current_thread().name == "A" and r1 == 111:
            entered.set()
            assert release.wait(10)
        return 0

    interp = Interpreter(prog(_FRAME_PROG), Runtime(), helpers={1000: helper(impl)})
    interp_box["i"] = interp
    res = {}
    a = threading.Thread(target=lambda: res.__setitem__("A", interp(111)), name="A")
    a.start()
    assert entered.wait(10)
    assert interp._active == 0          # this (main) thread has no run in progress
    assert interp(3) == 3
    release.set()
    a.join(10)
    assert res["A"] == 111


# --- item 6: bpf_loop with nr = 2^32 + 1 ---------------------------------------------------

_LOOP_PROG = """
    lddw %r1, {nr}
    lddw %r2, func(cb)
    mov %r3, 0
    mov %r4, 0
    call 181
    exit
cb:
    mov %r0, 0
    exit
"""


def _loop_prog(nr: int) -> isa.Program:
    text = _LOOP_PROG.format(nr=nr)
    return prog(text)


@pytest.mark.parametrize("nr,expected", [
    # The kernel inlines bpf_loop when flags is a known zero (inline_bpf_loop): the count
    # is compared as 64 bits and the error is `w0 = -E2BIG` (zero-extended).
    ((1 << 23) + 1, (-errno.E2BIG) & 0xFFFFFFFF),
    ((1 << 32) + 1, (-errno.E2BIG) & 0xFFFFFFFF),
    (0, 0),
])
def test_bpf_loop_count_is_checked_as_the_kernel_does(nr, expected):
    program = _loop_prog(nr)
    rt = Runtime()
    assert Interpreter(program, rt)() == expected
    assert jit.compile(program, Runtime())() == expected


def test_bpf_loop_small_count_agrees():
    program = _loop_prog(3)
    assert Interpreter(program, Runtime())() == 3
    assert jit.compile(program, Runtime())() == 3


# --- item 5: the registry of runtime-owned memory ---------------------------------------

def test_stacks_contexts_and_maps_are_registered():
    fn = jit.compile(prog("mov %r0, 1\nexit"), Runtime())
    state = fn._state
    assert guard_check(state.stack.addr + 100, 8)
    assert guard_check(ctypes.addressof(state.ctx), 8)
    assert guard_check(ctypes.addressof(state.vars), 8)
    user = Buffer(64)
    assert not guard_check(user.addr, 64)
    m = maps_mod.Map("a", 2, 4, 16, 4)            # BPF_MAP_TYPE_ARRAY
    assert guard_check(m.value_addr, 1)
    assert guard_check(m.addr, 8)                 # the struct bpf_map itself
    h = maps_mod.Map("h", 1, 8, 8, 4)             # hash: keys and buckets too
    assert guard_check(h._s.keys, 8) and guard_check(h._s.buckets, 4)
    addr = m.value_addr
    m.close()
    assert not guard_check(addr, 1)


def test_freed_stacks_are_forgotten():
    buf = Buffer(4096, guard=True)
    addr = buf.addr
    assert guard_check(addr, 1)
    del buf
    import gc
    gc.collect()
    assert not guard_check(addr, 1)


def _sqe(opcode: int, addr: int, length: int, flags: int = 0) -> Buffer:
    sqe = Buffer(64)
    raw = bytearray(64)
    raw[0] = opcode
    raw[1] = flags
    raw[16:24] = addr.to_bytes(8, "little")
    raw[24:28] = length.to_bytes(4, "little")
    sqe.write(0, bytes(raw))
    return sqe


def test_sqe_check_read_write_and_vectors():
    stack = Buffer(512, guard=True)
    user = Buffer(512)
    READ, WRITE, READV, NOP, READ_FIXED = 22, 23, 1, 0, 4
    assert guard_check_sqe(_sqe(READ, stack.addr + 8, 16).addr) == -errno.EFAULT
    assert guard_check_sqe(_sqe(WRITE, stack.addr - 8, 16).addr) == -errno.EFAULT  # straddles
    assert guard_check_sqe(_sqe(READ, user.addr, 512).addr) == 0
    assert guard_check_sqe(_sqe(NOP, stack.addr, 16).addr) == 0
    assert guard_check_sqe(_sqe(READ_FIXED, stack.addr, 16).addr) == 0
    iov = Buffer(32)
    iov.write(0, user.addr.to_bytes(8, "little") + (16).to_bytes(8, "little")
              + (stack.addr + 64).to_bytes(8, "little") + (8).to_bytes(8, "little"))
    assert guard_check_sqe(_sqe(READV, iov.addr, 2).addr) == -errno.EFAULT   # 2nd iovec
    assert guard_check_sqe(_sqe(READV, iov.addr, 1).addr) == 0
    assert guard_check_sqe(_sqe(READV, stack.addr, 1).addr) == -errno.EFAULT  # the array
    assert guard_check_sqe(_sqe(READV, 8, 1).addr) == -errno.EFAULT           # unmapped array


# bpf_probe_read_user / copy_from_user: the source is a user address; the program's own
# stack (or a map, or JIT state) is not user memory -> -EFAULT, destination zeroed.
_PROBE_USER = """
    stdw [%r10-16], 0x4142
    stdw [%r10-8], 0x7777
    mov %r1, %r10
    add %r1, -8
    mov %r2, 8
    lddw %r3, {src}
    call {helper}
    mov %r6, %r0
    ldxdw %r7, [%r10-8]
    lsh %r6, 32
    rsh %r6, 32
    lsh %r7, 32
    or %r6, %r7
    mov %r0, %r6
    exit
"""


def _probe_prog(src: int, helper_id: int) -> isa.Program:
    return prog(_PROBE_USER.format(src=src, helper=helper_id))


@pytest.mark.parametrize("helper_id", [112, 148])   # probe_read_user, copy_from_user
def test_probe_read_user_refuses_runtime_memory(helper_id):
    m = maps_mod.Map("secret", 2, 4, 8, 1)
    ctypes.c_uint64.from_address(m.value_addr).value = 0x5EC2E7
    user = Buffer(8, data=(0x1234).to_bytes(8, "little"))
    for engine in ("interp", "jit"):
        for src, expect in ((m.value_addr, ((-errno.EFAULT) & 0xFFFFFFFF, 0)),
                            (user.addr, (0, 0x1234))):
            program = _probe_prog(src, helper_id)
            rt = Runtime()
            run = Interpreter(program, rt) if engine == "interp" else jit.compile(program, rt)
            r0 = run()
            assert (r0 & 0xFFFFFFFF, r0 >> 32) == (expect[0], expect[1]), (engine, hex(src))


def test_a_program_may_call_itself_back_on_its_own_thread():
    """A Python helper that runs the same JitFunction again (same thread, nested) is not
    'another thread': it runs, on the next frames of the same stack."""
    box = {}

    def impl(runtime, r1, r2, r3, r4, r5):
        if r1 > 0:
            return box["fn"](r1 - 1) + 1
        return 0

    box["fn"] = jit.compile(prog(_FRAME_PROG), Runtime(), helpers={1000: helper(impl)})
    assert box["fn"](3) == 3


def test_a_context_held_by_this_thread_runs_and_keeps_its_owner():
    """The loop driver holds the context for a whole run (owner = this thread); a call from
    a helper on that thread must run, and must not release the driver's claim."""
    fn = jit.compile(prog("mov %r0, 5\nexit"), Runtime())
    ctx = fn._state.ctx
    ctx.owner = jit._this_thread()
    try:
        assert fn() == 5
        assert ctx.owner == jit._this_thread()
    finally:
        ctx.owner = 0
    t_out = {}
    ctx.owner = 12345                       # some other thread holds it
    try:
        try:
            fn()
        except BpfRuntimeError as exc:
            t_out["err"] = str(exc)
        fn.reset()                          # not ours: leaves the other run's state alone
    finally:
        ctx.owner = 0
    assert "another thread" in t_out["err"]
    assert fn() == 5
