"""Interpreter API: memory regions, map/kfunc/helper forms, callbacks, limits, re-entrancy."""

from __future__ import annotations

import ctypes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uringbpf.bpf import helpers, isa
from uringbpf.bpf.asm import assemble
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.platform import base_platform
from uringbpf.bpf.memory import AddressSpace, BpfMemoryError, BpfRuntimeError, Buffer

M64 = isa.U64


def prog(src: str, **kw) -> isa.Program:
    return isa.Program("t", assemble(src), **kw)


def runtime() -> helpers.Runtime:
    return helpers.Runtime(mem=AddressSpace())


def test_regions_read_only_and_writable():
    rt = runtime()
    ro = Buffer(8, b"\x01\x02\x03\x04\x05\x06\x07\x08")
    rw = Buffer(16)
    rt.mem.add_buffer(ro, False, "rodata")
    rt.mem.add_buffer(rw, True, "data")
    vm = Interpreter(prog("ldxdw %r0, [%r1]\nstxdw [%r2+8], %r0\nexit"), rt)
    assert vm.run(ro.addr, rw.addr) == 0x0807060504030201
    assert rw.read(8, 8) == ro.read()
    bad = Interpreter(prog("mov %r0, 0\nstb [%r1+3], 9\nexit"), rt)
    with pytest.raises(BpfMemoryError) as info:
        bad.run(ro.addr)
    assert info.value.pc == 1 and "read-only rodata" in str(info.value)
    with pytest.raises(BpfMemoryError) as info:
        Interpreter(prog("ldxw %r0, [%r1+6]\nexit"), rt).run(ro.addr)
    assert info.value.pc == 0 and "out of bounds memory load of 4 bytes" in str(info.value)


def test_stack_is_only_registered_during_the_run():
    rt = runtime()
    vm = Interpreter(prog("mov %r0, %r10\nexit"), rt)
    top = vm.run()
    assert rt.mem.find(top - 8, 8) is None  # removed again after the run
    seen = []

    def impl(runtime_, r1, *_):
        seen.append(runtime_.mem.find(r1, 8) is not None)
        return 0
    table = {1: helpers.Helper(helpers.Proto("probe", ()), impl, 1)}
    Interpreter(prog("mov %r1, %r10\nsub %r1, 8\ncall 1\nexit"), rt, helpers=table).run()
    assert seen == [True]  # helpers can check stack pointers against runtime.mem


class FakeMap:
    """Duck-typed map, as the loader's maps look to the interpreter."""

    def __init__(self, value: bytes):
        self.buf = Buffer(len(value), value)
        self.addr = 0x1000_0000
        self.value_addr = self.buf.addr


def test_pseudo_map_forms():
    m0, m1 = FakeMap(b"\0" * 8), FakeMap(bytes(range(16)))
    rt = runtime()
    rt.mem.add_buffer(m1.buf, True, "map1")
    p = isa.Program("t", assemble("""
        lddw %r6, map_idx(0)
        lddw %r1, map_idx_value(1)+8
        ldxdw %r0, [%r1]
        exit"""), maps=[m0, m1])
    assert Interpreter(p, rt).run() == int.from_bytes(bytes(range(8, 16)), "little")
    p2 = isa.Program("t", assemble("lddw %r0, map_idx(0)\nexit"), maps=[m0])
    assert Interpreter(p2, rt).run() == 0x1000_0000
    with pytest.raises(BpfRuntimeError, match="map index 3 out of range"):
        Interpreter(isa.Program("t", assemble("lddw %r0, map_idx(3)\nexit"), maps=[m0]), rt)
    with pytest.raises(BpfRuntimeError, match="unrelocated lddw map fd") as info:
        Interpreter(prog("mov %r0, 0\nlddw %r0, map_fd(3)\nexit"), rt)
    assert info.value.pc == 1
    # maps named by fd resolve against runtime.maps
    m1.fd = 3
    rt.maps = [m0, m1]
    assert Interpreter(prog("lddw %r0, map_fd(3)\nexit"), rt).run() == m1.addr
    p3 = prog("lddw %r1, map_value(3)+4\nldxw %r0, [%r1]\nexit")
    assert Interpreter(p3, rt).run() == int.from_bytes(bytes(range(4, 8)), "little")
    with pytest.raises(BpfRuntimeError, match="BTF id"):
        Interpreter(prog("lddw %r0, btf_id(7)\nexit"), rt)


def test_default_helper_table_and_kfuncs(monkeypatch):
    calls = []

    def h(rt, r1, r2, r3, r4, r5):
        calls.append((r1, r2, r3, r4, r5))
        return r1 + r5

    monkeypatch.setitem(helpers.HELPERS, 9001, helpers.Helper(helpers.Proto("t9001", ()), h, 9001))
    monkeypatch.setitem(helpers.KFUNCS, "t_kfunc", helpers.Helper(helpers.Proto("t_kfunc", ()),
                                                                  lambda rt, a, *_: a * 3, None))
    p = isa.Program("t", assemble("""
        mov %r1, 10
        mov %r2, 2
        mov %r3, 3
        mov %r4, 4
        mov %r5, 5
        call 9001
        mov %r1, %r0
        call runtime 0
        exit"""), kfuncs=["t_kfunc"])
    # the base platform: no design is imported to find these
    assert Interpreter(p, helpers.Runtime(platform=base_platform())).run() == 45
    assert calls == [(10, 2, 3, 4, 5)]
    with pytest.raises(BpfRuntimeError, match="unknown kfunc 'nope'"):
        Interpreter(isa.Program("t", assemble("call runtime 0\nexit"), kfuncs=["nope"]))
    with pytest.raises(BpfRuntimeError, match="not in the program's kfunc list"):
        Interpreter(prog("call runtime 2\nexit"))
    with pytest.raises(BpfRuntimeError, match="unknown helper 9002"):
        Interpreter(prog("call 9002\nexit"))


def test_helper_failures_name_the_call():
    def boom(rt, *_):
        raise ValueError("bad argument")
    table = {7: helpers.Helper(helpers.Proto("boom", ()), boom, 7)}
    with pytest.raises(BpfRuntimeError) as info:
        Interpreter(prog("mov %r0, 0\nmov %r1, 0\ncall 7\nexit"), helpers=table).run()
    assert info.value.pc == 2 and "boom failed: bad argument" in str(info.value)


def _loop_helper():
    """A bpf_loop-like helper: calls the callback pointer natively, as a C helper would."""
    cb_type = ctypes.CFUNCTYPE(ctypes.c_uint64, *([ctypes.c_uint64] * 5))

    def impl(rt, nr, fn, ctx, flags, _):
        callback = cb_type(fn)
        done = 0
        for i in range(nr):
            done += 1
            if callback(i, ctx, 0, 0, 0):
                break
        return done
    return {181: helpers.Helper(helpers.Proto("loop", ()), impl, 181)}


def test_callback_through_native_function_pointer():
    src = """
        stdw [%r10-8], 0
        mov %r1, 5
        lddw %r2, func(cb)
        mov %r3, %r10
        sub %r3, 8
        mov %r4, 0
        call 181
        ldxdw %r6, [%r10-8]
        lsh %r0, 32
        or %r0, %r6
        exit
    cb:
        ldxdw %r3, [%r2]
        add %r3, %r1
        stxdw [%r2], %r3
        mov %r0, 0
        jne %r1, 3, +1
        mov %r0, 1
        exit
    """
    vm = Interpreter(prog(src), helpers=_loop_helper())
    # stopped after index 3: 4 iterations, sum 0+1+2+3 = 6
    assert vm.run() == (4 << 32) | 6


def test_callback_fault_propagates_with_its_pc():
    src = """
        mov %r1, 2
        lddw %r2, func(cb)
        mov %r3, 0
        call 181
        exit
    cb:
        ldxdw %r0, [%r2]
        exit
    """
    vm = Interpreter(prog(src), helpers=_loop_helper())
    with pytest.raises(BpfMemoryError) as info:
        vm.run()
    assert info.value.pc == 6


def test_callx_to_subprogram_and_helper():
    table = {2: helpers.Helper(helpers.Proto("dbl", ()), lambda rt, a, *_: 2 * a, 2)}
    src = """
        lddw %r6, func(f)
        mov %r1, 20
        call %r6
        mov %r1, %r0
        mov %r7, 2
        call %r7
        exit
    f:
        add %r1, 1
        mov %r0, %r1
        exit
    """
    assert Interpreter(prog(src), helpers=table).run() == 42


def test_instruction_limit_and_depth_limit():
    with pytest.raises(BpfRuntimeError, match="instruction limit of 1000 exceeded"):
        Interpreter(prog("l:\nja l\nexit"), max_insns=1000).run()
    with pytest.raises(BpfRuntimeError, match="call depth limit of 3 frames"):
        Interpreter(prog("call local f\nexit\nf:\ncall local f\nexit"), max_depth=3).run()


def test_reentrant_run_gets_its_own_stack():
    box = {}

    def again(rt, n, *_):
        return box["vm"].run(n - 1) if n else 100
    table = {3: helpers.Helper(helpers.Proto("again", ()), again, 3)}
    vm = Interpreter(prog("""
        stxdw [%r10-8], %r1
        call 3
        ldxdw %r1, [%r10-8]
        add %r0, %r1
        exit"""), helpers=table)
    box["vm"] = vm
    assert vm.run(3) == 100 + 1 + 2 + 3


def test_entry_address_is_a_native_function():
    vm = Interpreter(prog("mov %r0, %r1\nmul %r0, %r2\nexit"))
    fn = ctypes.CFUNCTYPE(ctypes.c_uint64, *([ctypes.c_uint64] * 5))(vm.entry_address)
    assert fn(6, 7, 0, 0, 0) == 42
    bad = Interpreter(prog("ldxw %r0, [%r1]\nexit"))
    fn = ctypes.CFUNCTYPE(ctypes.c_uint64, *([ctypes.c_uint64] * 5))(bad.entry_address)
    assert fn(0, 0, 0, 0, 0) == 0
    assert isinstance(bad.take_error(), BpfMemoryError)
    assert bad.take_error() is None


def test_construction_errors():
    with pytest.raises(BpfRuntimeError, match="empty program"):
        Interpreter([])
    with pytest.raises(BpfRuntimeError, match="unknown ALU opcode"):
        Interpreter([isa.Insn(0xE7), isa.Insn(isa.OP_EXIT)])
    with pytest.raises(BpfRuntimeError, match="call out of bounds"):
        Interpreter(prog("call local +7\nexit"))
    # LD_ABS past the data (r2 = 0 bytes) ends the program with 0 (tests/bpf/test_ld_packet.py)
    assert Interpreter(prog("mov %r0, 9\nldabsw 4\nexit")).run() == 0
    # raw bytes work too
    assert Interpreter(isa.encode(assemble("mov %r0, 3\nexit"))).run() == 3


# ---- property tests against an independent oracle -----------------------------------

def _trunc_div(a, b):
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def _oracle(op, a, b, bits):
    m = (1 << bits) - 1
    a &= m
    b &= m
    sa = a - (1 << bits) if a >> (bits - 1) else a
    sb = b - (1 << bits) if b >> (bits - 1) else b
    r = {
        "add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
        "div": lambda: a // b if b else 0, "mod": lambda: a % b if b else a,
        "sdiv": lambda: _trunc_div(sa, sb) if b else 0,
        "smod": lambda: (sa - sb * _trunc_div(sa, sb)) if b else a,
        "lsh": lambda: a << (b % bits), "rsh": lambda: a >> (b % bits),
        "arsh": lambda: sa >> (b % bits), "xor": lambda: a ^ b,
    }[op]()
    return r & m


values = st.one_of(st.integers(0, M64), st.sampled_from([0, 1, M64, 1 << 63, (1 << 63) - 1,
                                                         0xFFFFFFFF, 0x80000000, 0x7FFFFFFF]))


@settings(max_examples=150, deadline=None)
@given(op=st.sampled_from(["add", "sub", "mul", "div", "mod", "sdiv", "smod", "lsh", "rsh", "arsh", "xor"]),
       a=values, b=values, bits=st.sampled_from([32, 64]))
def test_alu_matches_oracle(op, a, b, bits):
    suffix = "32" if bits == 32 else ""
    vm = Interpreter(prog(f"lddw %r0, {a:#x}\nlddw %r1, {b:#x}\n{op}{suffix} %r0, %r1\nexit"))
    assert vm.run() == _oracle(op, a, b, bits)


@settings(max_examples=100, deadline=None)
@given(a=values, b=values, bits=st.sampled_from([32, 64]),
       op=st.sampled_from(["jeq", "jne", "jgt", "jge", "jlt", "jle", "jset", "jsgt", "jsge", "jslt", "jsle"]))
def test_jumps_match_oracle(a, b, bits, op):
    m = (1 << bits) - 1
    ua, ub = a & m, b & m
    sa = ua - (1 << bits) if ua >> (bits - 1) else ua
    sb = ub - (1 << bits) if ub >> (bits - 1) else ub
    want = {"jeq": ua == ub, "jne": ua != ub, "jgt": ua > ub, "jge": ua >= ub, "jlt": ua < ub,
            "jle": ua <= ub, "jset": bool(ua & ub), "jsgt": sa > sb, "jsge": sa >= sb,
            "jslt": sa < sb, "jsle": sa <= sb}[op]
    suffix = "32" if bits == 32 else ""
    vm = Interpreter(prog(f"mov %r0, 1\nlddw %r1, {a:#x}\nlddw %r2, {b:#x}\n"
                          f"{op}{suffix} %r1, %r2, +1\nmov %r0, 0\nexit"))
    assert vm.run() == int(want)


@settings(max_examples=200, deadline=None)
@given(base=st.sampled_from(["mem", "stack", "zero", "huge"]), delta=st.integers(-(1 << 20), 1 << 20),
       off=st.integers(-(1 << 15), (1 << 15) - 1), size=st.sampled_from(["b", "h", "w", "dw"]),
       store=st.booleans())
def test_any_address_is_either_valid_or_a_clean_error(base, delta, off, size, store):
    """Wild pointers never crash the process: the access works or raises BpfMemoryError."""
    rt = runtime()
    buf = Buffer(64, bytes(range(64)))
    rt.mem.add_buffer(buf, True, "mem")
    start = {"mem": buf.addr, "stack": 0, "zero": 0, "huge": M64 - 8}[base]
    op = f"stx{size} [%r6{off:+d}], %r7" if store else f"ldx{size} %r0, [%r6{off:+d}]"
    src = ("mov %r6, %r10\n" if base == "stack" else f"lddw %r6, {start:#x}\n")
    src += f"lddw %r1, {delta & M64:#x}\nadd %r6, %r1\nmov %r7, -1\nmov %r0, 0\n{op}\nexit"
    vm = Interpreter(prog(src), rt)
    try:
        vm.run()
    except BpfMemoryError as exc:
        assert exc.pc is not None and "out of bounds" in str(exc)


_ALU_OPS = [isa.ADD, isa.SUB, isa.MUL, isa.DIV, isa.OR, isa.AND, isa.LSH, isa.RSH, isa.NEG,
            isa.MOD, isa.XOR, isa.MOV, isa.ARSH, isa.END]


def _random_alu_program(seed: int) -> isa.Program:
    """Random ALU/ALU64 code over random 64-bit registers, folded into r0."""
    import random

    rng = random.Random(seed)
    insns = []
    for reg in range(10):
        insns += isa.lddw_pair(reg, rng.getrandbits(64))
    for _ in range(24):
        cls = rng.choice([isa.ALU, isa.ALU64])
        op = rng.choice(_ALU_OPS)
        dst = rng.randrange(10)
        if op == isa.END:
            source = rng.choice([isa.TO_LE, isa.TO_BE]) if cls == isa.ALU else 0
            insns.append(isa.Insn(cls | op | source, dst, imm=rng.choice([16, 32, 64])))
        elif op == isa.NEG:
            insns.append(isa.Insn(cls | op, dst))
        else:
            off = rng.choice([0, 1]) if op in (isa.DIV, isa.MOD) else 0
            if rng.random() < 0.5:
                if op == isa.MOV and rng.random() < 0.5:
                    off = rng.choice([8, 16] + ([32] if cls == isa.ALU64 else []))
                insns.append(isa.Insn(cls | op | isa.X, dst, rng.randrange(10), off))
            else:
                imm = rng.choice([0, 1, -1, 31, 32, 63, 64, rng.getrandbits(31), -rng.getrandbits(31)])
                insns.append(isa.Insn(cls | op, dst, 0, off, imm))
    for reg in range(1, 10):
        insns.append(isa.Insn(isa.ALU64 | isa.XOR | isa.X, 0, reg))
        insns.append(isa.Insn(isa.ALU64 | isa.MUL, 0, imm=3))
    insns.append(isa.Insn(isa.OP_EXIT))
    return isa.Program("fuzz", insns)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_interpreter_and_jit_agree_on_random_alu_code(seed):
    """Differential check of the two engines (the lesson of uBPF's bug history)."""
    from uringbpf.bpf import jit

    program = _random_alu_program(seed)
    assert Interpreter(program).run() == jit.compile(program, checked=True)()
