"""JIT: memory access, atomics, lddw forms, BPF-to-BPF calls, helpers, kfuncs, callx,
checked mode and error reporting (expected values computed in Python)."""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass

import pytest

from uringbpf.bpf import isa, jit
from uringbpf.bpf.asm import assemble
from uringbpf.bpf.helpers import Arg, Helper, Proto, Runtime
from uringbpf.bpf.memory import BpfMemoryError, BpfRuntimeError, Buffer

U64 = isa.U64


def prog(text: str, **kw) -> isa.Program:
    return isa.Program("t", assemble(text), **kw)


def helper(fn, name="h", native=None) -> Helper:
    return Helper(Proto(name, (Arg.ANYTHING,) * 5), fn, 1000, native)


# --- loads and stores -------------------------------------------------------------------

def test_loads_zero_and_sign_extend():
    buf = Buffer(16, bytes(range(0xF0, 0x100)))
    fn = jit.compile(prog("""
        ldxb %r2, [%r1+1]
        ldxh %r3, [%r1+2]
        ldxw %r4, [%r1+4]
        ldxdw %r5, [%r1+8]
        ldxsb %r6, [%r1+1]
        ldxsh %r7, [%r1+2]
        ldxsw %r8, [%r1+4]
        stxdw [%r1+0], %r2
        mov %r0, %r3
        xor %r0, %r4
        xor %r0, %r5
        xor %r0, %r6
        xor %r0, %r7
        xor %r0, %r8
        exit
    """))
    raw = bytes(range(0xF0, 0x100))
    u8, = struct.unpack_from("<B", raw, 1)
    u16, = struct.unpack_from("<H", raw, 2)
    u32, = struct.unpack_from("<I", raw, 4)
    u64, = struct.unpack_from("<Q", raw, 8)
    s8, = struct.unpack_from("<b", raw, 1)
    s16, = struct.unpack_from("<h", raw, 2)
    s32, = struct.unpack_from("<i", raw, 4)
    expect = u16 ^ u32 ^ u64 ^ (s8 & U64) ^ (s16 & U64) ^ (s32 & U64)
    assert fn(buf.addr) == expect
    assert struct.unpack_from("<Q", buf.read(0, 8))[0] == u8


def test_stores_of_every_size_and_immediates():
    buf = Buffer(32)
    fn = jit.compile(prog("""
        stb [%r1+0], -1
        sth [%r1+2], -2
        stw [%r1+4], -3
        stdw [%r1+8], -4
        stxb [%r1+16], %r2
        stxh [%r1+18], %r2
        stxw [%r1+20], %r2
        stxdw [%r1+24], %r2
        mov %r0, 0
        exit
    """))
    fn(buf.addr, 0x1122334455667788)
    got = buf.read()
    assert got[0] == 0xFF
    assert struct.unpack_from("<H", got, 2)[0] == 0xFFFE
    assert struct.unpack_from("<I", got, 4)[0] == 0xFFFFFFFD
    assert struct.unpack_from("<Q", got, 8)[0] == (-4) & U64
    assert got[16] == 0x88
    assert struct.unpack_from("<H", got, 18)[0] == 0x7788
    assert struct.unpack_from("<I", got, 20)[0] == 0x55667788
    assert struct.unpack_from("<Q", got, 24)[0] == 0x1122334455667788


@pytest.mark.parametrize("width", [32, 64])
@pytest.mark.parametrize("op", ["add", "or", "and", "xor"])
@pytest.mark.parametrize("fetch", [False, True])
def test_atomic_rmw(width, op, fetch):
    size = width // 8
    mask = (1 << width) - 1
    suffix = "32" if width == 32 else ""
    buf = Buffer(16)
    initial = 0xF0F0F0F0_0F0F0F0F & mask
    operand = 0x12345678_9ABCDEF1
    buf.write(0, initial.to_bytes(size, "little"))
    fn = jit.compile(prog(f"""
        mov %r0, 7
        lock {'fetch ' if fetch else ''}{op}{suffix} [%r1+0], %r2
        mov %r0, %r2
        exit
    """))
    r0 = fn(buf.addr, operand)
    new = {"add": initial + operand, "or": initial | operand, "and": initial & operand,
           "xor": initial ^ operand}[op] & mask
    assert int.from_bytes(buf.read(0, size), "little") == new
    assert r0 == (initial if fetch else operand)
    assert buf.read(size, 16 - size) == bytes(16 - size)


@pytest.mark.parametrize("width", [32, 64])
def test_atomic_xchg_and_cmpxchg(width):
    suffix = "32" if width == 32 else ""
    mask = (1 << width) - 1
    buf = Buffer(8)
    xchg = jit.compile(prog(f"""
        lock xchg{suffix} [%r1+0], %r2
        mov %r0, %r2
        exit
    """))
    buf.write(0, (0xAAAA_BBBB_CCCC_DDDD & mask).to_bytes(width // 8, "little"))
    assert xchg(buf.addr, 0x1111_2222_3333_4444) == 0xAAAA_BBBB_CCCC_DDDD & mask
    assert int.from_bytes(buf.read(0, width // 8), "little") == 0x1111_2222_3333_4444 & mask

    cmpxchg = jit.compile(prog(f"""
        mov %r0, %r3
        lock cmpxchg{suffix} [%r1+0], %r2
        exit
    """))
    cur = 0x1111_2222_3333_4444 & mask
    # mismatch: memory unchanged, r0 = old value
    assert cmpxchg(buf.addr, 5, cur + 1) == cur
    assert int.from_bytes(buf.read(0, width // 8), "little") == cur
    # match (for 32 bits only the low half of r0 is compared)
    assert cmpxchg(buf.addr, 5, cur | (0xFFFF_FFFF_0000_0000 if width == 32 else 0)) == cur
    assert int.from_bytes(buf.read(0, width // 8), "little") == 5


# --- lddw forms -------------------------------------------------------------------------

@dataclass
class FakeMapRef:
    """What the loader puts in Program.maps: an object with the map's addresses."""
    addr: int
    value_addr: int | None


def test_lddw_immediate_and_map_forms():
    values = Buffer(64)
    values.write(16, (0xCAFE).to_bytes(8, "little"))
    maps = [FakeMapRef(0x1234_5678_9000, None), FakeMapRef(0x4000, values.addr)]
    p = prog("""
        lddw %r0, 0x1122334455667788
        lddw %r2, map_idx(0)
        lddw %r3, map_idx_value(1)+16
        ldxdw %r4, [%r3+0]
        stxdw [%r1+0], %r2
        stxdw [%r1+8], %r4
        exit
    """, maps=maps)
    out = Buffer(16)
    fn = jit.compile(p)
    assert fn(out.addr) == 0x1122334455667788
    assert struct.unpack("<QQ", out.read()) == (0x1234_5678_9000, 0xCAFE)


def test_unrelocated_lddw_is_a_compile_error():
    with pytest.raises(jit.JitError, match="insn 0: unrelocated lddw map fd form"):
        jit.compile(prog("lddw %r1, map_fd(3)\nmov %r0, 0\nexit"))
    with pytest.raises(jit.JitError, match=r"insn 1: lddw map index 3 out of range \(0 maps\)"):
        jit.compile(prog("mov %r0, 0\nlddw %r1, map_idx(3)\nexit"))
    with pytest.raises(jit.JitError, match="map value of map 0 which has no direct value"):
        jit.compile(prog("lddw %r1, map_idx_value(0)\nmov %r0, 0\nexit",
                         maps=[FakeMapRef(0x1000, None)]))


# --- BPF-to-BPF calls -------------------------------------------------------------------

def test_local_calls_keep_callee_saved_registers_and_own_frames():
    fn = jit.compile(prog("""
        mov %r6, 100
        mov %r7, 200
        stdw [%r10-8], 11
        mov %r1, %r10
        add %r1, -8
        call local f
        ldxdw %r2, [%r10-8]
        add %r0, %r2
        add %r0, %r6
        add %r0, %r7
        exit
    f:
        mov %r6, 1
        mov %r7, 2
        stdw [%r10-8], 5000
        ldxdw %r3, [%r1+0]
        add %r3, 1
        stxdw [%r1+0], %r3
        ldxdw %r0, [%r10-8]
        exit
    """))
    # callee r0 = 5000 (its own frame), caller slot became 12 through the pointer.
    assert fn() == 5000 + 12 + 100 + 200


def _recursion(depth_arg: int) -> int:
    fn = jit.compile(prog("""
        call local f
        exit
    f:
        mov %r0, 1
        jeq %r1, 0, +4
        sub %r1, 1
        call local f
        add %r0, 1
        exit
        exit
    """))
    return fn(depth_arg)


def test_call_depth_limit_matches_the_frame_count():
    # entry + f(n) ... f(0): n + 2 frames.
    assert _recursion(jit.STACK_FRAMES - 2) == jit.STACK_FRAMES - 1
    with pytest.raises(BpfRuntimeError, match=f"insn 5: call depth limit of {jit.STACK_FRAMES} frames exceeded"):
        _recursion(jit.STACK_FRAMES - 1)
    with pytest.raises(BpfRuntimeError, match="call depth limit"):
        _recursion(10_000)


def test_function_starts_and_addresses():
    fn = jit.compile(prog("""
        call local f
        exit
    f:
        mov %r0, 42
        exit
    """))
    f_addr = fn.function_address(2)
    assert f_addr and f_addr != fn.address
    call = ctypes.CFUNCTYPE(ctypes.c_uint64, *([ctypes.c_uint64] * 5))(f_addr)
    assert call(0, 0, 0, 0, 0) == 42


# --- helpers and kfuncs -----------------------------------------------------------------

def test_python_helper_gets_runtime_and_reads_the_stack():
    seen = {}

    def impl(runtime, r1, r2, r3, r4, r5):
        seen["key"] = runtime.mem.read(r1, 8)
        seen["args"] = (r2, r3, r4, r5)
        return r2 * 2

    rt = Runtime()
    fn = jit.compile(prog("""
        stdw [%r10-8], 0x0102
        mov %r1, %r10
        add %r1, -8
        mov %r2, 21
        mov %r3, 3
        mov %r4, 4
        mov %r5, -1
        call 1000
        add %r0, 1
        exit
    """), rt, helpers={1000: helper(impl)})
    assert fn() == 43
    assert seen["key"] == (0x0102).to_bytes(8, "little")
    assert seen["args"] == (21, 3, 4, U64)


def test_helper_exception_is_raised_with_the_call_site():
    calls = []

    def impl(runtime, *args):
        calls.append(args)
        raise ValueError("boom")

    fn = jit.compile(prog("""
        call local f
        mov %r0, 1
        exit
    f:
        mov %r1, 9
        call 1000
        mov %r0, 77
        exit
    """), helpers={1000: helper(impl, "my_helper")})
    with pytest.raises(BpfRuntimeError, match=r"insn 4: my_helper failed: boom") as info:
        fn()
    assert isinstance(info.value.__cause__, ValueError)
    assert len(calls) == 1
    # The function is usable again afterwards.
    calls.clear()
    with pytest.raises(BpfRuntimeError):
        fn()
    assert len(calls) == 1


def test_bpf_runtime_errors_from_helpers_keep_their_type():
    def impl(runtime, r1, *rest):
        return runtime.mem.load(r1, 8)       # not a region: BpfMemoryError without a pc

    fn = jit.compile(prog("mov %r1, 16\ncall 1000\nexit"), helpers={1000: helper(impl)})
    with pytest.raises(BpfMemoryError, match="insn 1"):
        fn()


def test_keyboard_interrupt_in_a_helper_propagates_unchanged():
    def impl(runtime, *args):
        raise KeyboardInterrupt

    fn = jit.compile(prog("call 1000\nexit"), helpers={1000: helper(impl)})
    with pytest.raises(KeyboardInterrupt):
        fn()


def test_unknown_helper_fails_only_when_reached():
    fn = jit.compile(prog("""
        mov %r0, 5
        jeq %r1, 0, +1
        call 999
        exit
    """), helpers={})
    assert fn(0) == 5
    with pytest.raises(BpfRuntimeError, match="insn 2: call to unknown helper 999"):
        fn(1)


def test_native_twin_is_called_directly():
    python_calls = []
    native_calls = []

    def impl(runtime, *args):
        python_calls.append(args)
        return 1

    def native_impl(a1, a2, a3, a4, a5):
        native_calls.append((a1, a2, a3, a4, a5))
        return a1 + a2

    native_cb = jit.HelperFn(native_impl)
    addr = ctypes.cast(native_cb, ctypes.c_void_p).value
    fn = jit.compile(prog("mov %r1, 40\nmov %r2, 2\ncall 1000\nexit"),
                     helpers={1000: helper(impl, native=addr)})
    assert fn() == 42
    assert python_calls == [] and native_calls == [(40, 2, 0, 0, 0)]


def test_native_twin_by_module_and_symbol():
    from uringbpf.bpf.jit import JitContext

    fn = jit.compile(prog("call 1000\nexit"),
                     helpers={1000: helper(lambda *a: 0, native=("jitrt", "jitrt_ctx_size"))})
    assert fn() == ctypes.sizeof(JitContext)


def test_kfunc_by_index():
    def impl(runtime, r1, *rest):
        return r1 + 1000

    p = prog("mov %r1, 7\ncall kfunc 1\nexit",
             kfuncs=["unused", helper(impl, "bpf_test_kfunc")])
    assert jit.compile(p)() == 1007
    bad = prog("call kfunc 5\nexit", kfuncs=[])
    with pytest.raises(BpfRuntimeError, match="kfunc call index 5 is not in"):
        jit.compile(bad)()
    unknown = prog("call kfunc 0\nexit", kfuncs=["bpf_no_such_kfunc"])
    with pytest.raises(BpfRuntimeError, match="call to unknown kfunc 'bpf_no_such_kfunc'"):
        jit.compile(unknown)()


def test_unwind_helper_stops_the_whole_program():
    fn = jit.compile(prog("""
        call local f
        mov %r0, 3
        exit
    f:
        call 5
        mov %r0, 4
        exit
    """), helpers={5: helper(lambda rt, r1, *a: r1)}, unwind_helper=5)
    assert fn(0) == 0
    assert fn(1) == 3


# --- callx and function addresses -------------------------------------------------------

def test_callx_to_helper_id_and_to_function_address():
    fn = jit.compile(prog("""
        jeq %r1, 0, +3
        lddw %r3, func(g)
        ja +1
        mov %r3, 1000
        mov %r1, 5
        callx %r3
        exit
    g:
        mov %r0, %r1
        add %r0, 100
        exit
    """), helpers={1000: helper(lambda rt, r1, *a: r1 * 3)})
    assert fn(0) == 15
    assert fn(1) == 105


def test_callx_to_nowhere_is_an_error():
    fn = jit.compile(prog("mov %r2, 0x7777\ncallx %r2\nexit"), helpers={})
    with pytest.raises(BpfRuntimeError, match="insn 1: callx to invalid target 0x7777"):
        fn()


def test_helper_runs_a_callback_subprogram():
    """A bpf_loop-like helper calling the native address of a subprogram."""
    proto = ctypes.CFUNCTYPE(ctypes.c_uint64, *([ctypes.c_uint64] * 5))

    def loop_impl(runtime, count, cb, ctx, *rest):
        f = proto(cb)
        done = 0
        for i in range(count):
            done += 1
            if f(i, ctx, 0, 0, 0):
                break
        return done

    fn = jit.compile(prog("""
        stdw [%r10-8], 0
        mov %r1, %r1
        lddw %r2, func(cb)
        mov %r3, %r10
        add %r3, -8
        call 1000
        ldxdw %r1, [%r10-8]
        lsh %r0, 32
        or %r0, %r1
        exit
    cb:
        ldxdw %r3, [%r2+0]
        add %r3, %r1
        stxdw [%r2+0], %r3
        mov %r0, 0
        jlt %r1, 9, +1
        mov %r0, 1
        exit
    """), helpers={1000: helper(loop_impl)})
    result = fn(20)
    assert result >> 32 == 10
    assert result & 0xFFFFFFFF == sum(range(10))


# --- checked mode -----------------------------------------------------------------------

def test_checked_mode_catches_out_of_bounds_and_read_only():
    rt = Runtime()
    data = Buffer(16)
    ro = Buffer(8, b"\x07" * 8)
    rt.mem.add_buffer(data, True, "data")
    rt.mem.add_buffer(ro, False, "rodata")
    p = prog("""
        ldxdw %r0, [%r1+0]
        jne %r3, 1, +1
        stxdw [%r2+0], %r0
        exit
    """)
    fn = jit.compile(p, rt, checked=True)
    assert fn(ro.addr, data.addr, 1) == 0x0707070707070707
    assert data.read(0, 8) == b"\x07" * 8
    with pytest.raises(BpfMemoryError, match=r"insn 0: .*load of 8 bytes"):
        fn(data.addr + 12)
    with pytest.raises(BpfMemoryError, match=r"insn 2: store of 8 bytes to read-only rodata"):
        fn(data.addr, ro.addr, 1)
    with pytest.raises(BpfMemoryError):
        fn(0)
    # The unchecked build of the same program trusts the verifier (here: valid inputs only).
    assert jit.compile(p, rt)(ro.addr, data.addr, 1) == 0x0707070707070707


def test_checked_mode_sees_regions_added_after_compiling():
    rt = Runtime()
    fn = jit.compile(prog("ldxw %r0, [%r1+0]\nexit"), rt, checked=True)
    late = Buffer(4, b"\x01\x02\x03\x04")
    with pytest.raises(BpfMemoryError):
        fn(late.addr)
    rt.mem.add_buffer(late, False, "late")
    assert fn(late.addr) == 0x04030201


def test_checked_mode_stack_is_only_the_live_frames():
    p = prog("""
        mov %r1, %r10
        call local f
        ldxdw %r0, [%r10-8]
        exit
    f:
        stdw [%r1-8], 3
        mov %r2, %r10
        add %r2, -600
        jeq %r3, 0, +1
        stdw [%r2+0], 9
        exit
    """)
    fn = jit.compile(p, checked=True)
    assert fn(0, 0, 0) == 3
    with pytest.raises(BpfMemoryError, match="insn 8"):
        fn(0, 0, 1)     # r10 - 600 of the callee is below every live frame


# --- errors at compile time and at run time ---------------------------------------------

@pytest.mark.parametrize("insns,match", [
    ([isa.Insn(0xFF)], "unknown ALU opcode"),
    ([isa.Insn(isa.JMP32 | isa.CALL)], "unknown jump opcode"),
    ([isa.Insn(isa.OP_JA, off=5), isa.Insn(isa.OP_EXIT)], r"jump out of bounds \(target 6\)"),
    ([isa.Insn(isa.ALU64 | isa.MOV | isa.K, 11), isa.Insn(isa.OP_EXIT)], "r11"),
    ([isa.Insn(isa.ALU64 | isa.END, 1, imm=24), isa.Insn(isa.OP_EXIT)], "width"),
    ([isa.Insn(isa.OP_CALL, src=isa.PSEUDO_CALL, imm=7), isa.Insn(isa.OP_EXIT)],
     "call out of bounds"),
    ([isa.Insn(isa.OP_JA, off=1), *isa.lddw_pair(0, 5), isa.Insn(isa.OP_EXIT)],
     r"middle of lddw \(target 2\)"),
    ([isa.Insn(isa.OP_CALL, src=isa.PSEUDO_CALL, imm=1), isa.Insn(isa.OP_EXIT),
      isa.Insn(isa.OP_JA, off=-3), isa.Insn(isa.OP_EXIT)], "leaves its function"),
    ([], "empty"),
])
def test_malformed_programs_are_rejected(insns, match):
    with pytest.raises(jit.JitError, match=match):
        jit.compile(isa.Program("bad", insns))


def test_falling_off_the_end_is_a_runtime_error():
    fn = jit.compile(prog("mov %r0, 1\njeq %r1, 0, +1\nexit\nmov %r0, 2"))
    assert fn(1) == 1
    with pytest.raises(BpfRuntimeError, match="insn 3: execution fell off the end"):
        fn(0)


def test_legacy_packet_access_past_the_data_ends_the_program():
    # LD_ABS with r2 (the data length) 0: out of bounds, the program returns 0
    # (in-bounds loads: tests/bpf/test_ld_packet.py)
    fn = jit.compile(isa.Program("t", [
        isa.Insn(isa.ALU64 | isa.MOV | isa.K, 0, imm=4),
        isa.Insn(isa.JMP | isa.JEQ | isa.K, 1, off=1, imm=0),
        isa.Insn(isa.LD | isa.ABS | isa.W, imm=0),
        isa.Insn(isa.OP_EXIT)]))
    assert fn(0) == 4
    assert fn(1, 0) == 0


def test_native_caller_sees_the_error_word():
    def impl(runtime, *args):
        raise RuntimeError("nope")

    fn = jit.compile(prog("mov %r0, 9\ncall 1000\nexit"), helpers={1000: helper(impl)})
    raw = ctypes.CFUNCTYPE(ctypes.c_uint64, *([ctypes.c_uint64] * 5))(fn.address)
    fn.reset()
    assert raw(0, 0, 0, 0, 0) == 0
    word = ctypes.c_uint64.from_address(fn.error_address).value
    assert word != 0
    exc = fn.take_error()
    assert isinstance(exc, BpfRuntimeError) and "nope" in str(exc)
    assert ctypes.c_uint64.from_address(fn.error_address).value == 0
    assert fn.take_error() is None


def test_stack_region_lives_with_the_function():
    rt = Runtime()
    fn = jit.compile(prog("mov %r0, %r10\nexit"), rt)
    top = fn()
    stack = [r for r in rt.mem.regions() if r.name.startswith("jit-stack")]
    assert len(stack) == 1 and stack[0].end == top
    assert stack[0].size == jit.STACK_FRAMES * isa.STACK_SIZE
    fn.close()
    assert not [r for r in rt.mem.regions() if r.name.startswith("jit-stack")]


# --- the code cache ---------------------------------------------------------------------

def test_cached_code_is_shared_but_instances_keep_their_own_bindings():
    text = """
        lddw %r2, map_idx_value(0)+8
        ldxdw %r0, [%r2+0]
        mov %r1, %r0
        call 1000
        exit
    """
    results = []
    for value, factor in ((5, 2), (7, 3)):
        buf = Buffer(16)
        buf.write(8, value.to_bytes(8, "little"))
        p = prog(text, maps=[FakeMapRef(0, buf.addr)])
        before = jit.cache_info()
        fn = jit.compile(p, Runtime(),
                         helpers={1000: helper(lambda rt, r1, *a, f=factor: r1 * f)})
        after = jit.cache_info()
        results.append((fn, buf, after["hits"] - before["hits"]))
    (first, _, hit1), (second, _, hit2) = results
    assert hit2 == 1 and second.cached and second.ir == first.ir
    assert first.address != second.address
    assert first() == 10 and second() == 21
    first.close()
    assert second() == 21          # shared code outlives the first instance


def test_cache_key_includes_how_calls_resolve():
    def native_impl(*args):
        return 99

    cb = jit.HelperFn(native_impl)
    addr = ctypes.cast(cb, ctypes.c_void_p).value
    text = "call 1000\nexit"
    py = jit.compile(prog(text), helpers={1000: helper(lambda *a: 1)})
    nat = jit.compile(prog(text), helpers={1000: helper(lambda *a: 1, native=addr)})
    missing = jit.compile(prog(text), helpers={})
    assert py() == 1 and nat() == 99
    with pytest.raises(BpfRuntimeError):
        missing()
    assert len({py.ir, nat.ir, missing.ir}) == 3


def test_uncached_compile_and_closed_function():
    fn = jit.compile(prog("mov %r0, 3\nexit"), cache=False, tier="llvm")
    assert not fn.cached and fn() == 3
    assert set(fn.timings) >= {"parse", "optimize", "codegen", "generate"}
    fn.close()
    with pytest.raises(BpfRuntimeError, match="closed"):
        fn()


def test_checked_mode_bounds_endless_loops():
    p = prog("""
        mov %r0, 0
    top:
        add %r0, 1
        jne %r1, 0, top
        exit
    """)
    fn = jit.compile(p, checked=True)
    assert fn(0) == 1
    fn.insn_limit = 10_000
    with pytest.raises(BpfRuntimeError, match="insn 2: instruction limit of 10000 exceeded"):
        fn(1)
    # Every run starts with a fresh budget; a bounded loop under the limit is fine.
    bounded = jit.compile(prog("""
        mov %r0, 0
    top:
        add %r0, 1
        jlt %r0, %r1, top
        exit
    """), checked=True)
    bounded.insn_limit = 1000
    for _ in range(3):
        assert bounded(400) == 400


def test_memory_outside_the_stack_is_accessed_volatile():
    """Ring memory is shared with the kernel: each BPF access must stay one access."""
    fn = jit.compile(prog("""
        ldxw %r0, [%r1+0]
        ldxw %r2, [%r1+0]
        stxw [%r1+4], %r2
        stxdw [%r10-8], %r0
        ldxdw %r3, [%r10-8]
        exit
    """))
    assert fn.ir.count("load volatile i32") == 2
    assert fn.ir.count("store volatile i32") == 1
    assert "store i64 %t" in fn.ir and "load volatile i64" not in fn.ir
    buf = Buffer(8, b"\x05\x00\x00\x00")
    assert fn(buf.addr) == 5 and buf.read(4, 4) == b"\x05\x00\x00\x00"


def test_compiling_and_running_from_several_threads():
    import threading

    results, errors = {}, []

    def worker(k: int) -> None:
        try:
            # distinct programs (so each thread compiles) and a shared one (cache races)
            own = jit.compile(prog(f"mov %r0, %r1\nmul %r0, {k + 2}\nexit"))
            shared = jit.compile(prog("mov %r0, %r1\nadd %r0, 1000\nexit"))
            results[k] = [(own(i), shared(i)) for i in range(200)]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(4):
        assert results[k] == [(i * (k + 2), i + 1000) for i in range(200)]


def test_raw_bytecode_and_insn_lists_are_accepted():
    code = isa.encode(assemble("mov %r0, %r1\nadd %r0, 2\nexit"))
    assert jit.compile(code)(40) == 42
    fn = jit.compile(assemble("mov %r0, 9\nexit"))
    assert fn() == 9 and "JitFunction 'prog' 2 insns" in repr(fn)
    with pytest.raises(TypeError):
        jit.compile(42)
