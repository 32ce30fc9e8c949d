"""Control flow (nested loops, early returns, break/continue, BPF-to-BPF calls, inline
functions) gives the same results in the application and compiled."""

from __future__ import annotations

import pytest

from uringbpf.lang import Module, bpf_range, inline, ptr, u8, u32, u64

bpf = Module("control_flow")


@inline
def mix(a: u32, b: u32) -> u32:
    return (a * 31) ^ (b + 7)


@bpf.function
def first_zero(p: ptr[u8], n: u32) -> u32:
    for i in range(16):
        if i >= n:
            return n
        if p[i] == 0:
            return u32(i)
    return u32(16)


@bpf.function
def collatz_steps(x: u32) -> u32:
    steps = u32(0)
    for _ in bpf_range(0, 200):     # an open-coded iterator: checked once, not 200 times
        if x <= 1:
            break
        if x & 1:
            x = x * 3 + 1
        else:
            x = x >> 1
        steps += 1
    return steps


@bpf.socket_filter
def flow(data, n) -> u64:
    if n < 16:
        return 0
    acc = u32(0)
    for i in range(16):
        if data[i] == 0xFF:
            continue
        for j in range(4):
            if j > data[i] & 3:
                break
            acc = mix(acc, u32(data[i]) + u32(j))
        if acc & 0x80000000:
            acc ^= 0x1234
    total = u64(0)
    for k in bpf_range(0, 8):
        if k == 5:
            continue
        total += collatz_steps(u32(data[k]) + 1)
    z = first_zero(data, u32(n))
    return (u64(acc) << 16) ^ total ^ (u64(z) << 48)


CASES = [bytes(16), bytes(range(16)), bytes([0xFF] * 16), bytes([7, 0, 3, 255, 9, 27, 1, 2] * 2),
         bytes(range(200, 216)), bytes([97] * 15 + [0])]


@pytest.fixture(scope="module")
def runners():
    jit, interp = flow.loaded("jit"), flow.loaded("interp")
    yield jit, interp
    jit.close()
    interp.close()


@pytest.mark.parametrize("data", CASES)
def test_same_result_everywhere(runners, data):
    jit, interp = runners
    want = flow.run_in_app(data)
    assert jit(data) == want
    assert interp(data) == want
    assert want != 0


def test_plain_python_reference():
    # the same function, computed by hand in Python for one input
    data = bytes(range(16))
    acc = 0
    for i in range(16):
        for j in range(4):
            if j > data[i] & 3:
                break
            acc = (((acc * 31) & 0xFFFFFFFF) ^ ((data[i] + j + 7) & 0xFFFFFFFF))
        if acc & 0x80000000:
            acc ^= 0x1234

    def steps(x):
        s = 0
        while x > 1 and s < 200:   # the program's loop, in plain Python
            x = x * 3 + 1 if x & 1 else x >> 1
            x &= 0xFFFFFFFF
            s += 1
        return s

    total = sum(steps(data[k] + 1) for k in range(8) if k != 5)
    assert flow.run_in_app(data) == ((acc << 16) ^ total ^ (0 << 48))
