"""A socket-filter-style program that exercises the integer subset (used by the tests)."""

from uringbpf.lang import Module, array, ptr, s8, s32, s64, u8, u16, u32, u64

bpf = Module("semantics")


@bpf.bss
class out:
    add32: u32
    sub32: u32
    mul16: u16
    neg8: s8
    div: u32
    mod: u32
    shl: u32
    sar: s32
    shr: u32
    mixed: u64
    widened: s64
    lt_mixed: u8
    lt_signed: u8
    inv: u16
    loops: u32
    hist: array(u32, 4)


@bpf.function
def clamp(x: s32, lo: s32, hi: s32) -> s32:
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


@bpf.socket_filter
def arith(data, n) -> u64:
    if n < 16:
        return 0
    p = ptr[u32](data)
    a = p[0]
    b = p[1]
    c = s32(p[2])
    d = data[12]
    out.add32 = a + b
    out.sub32 = a - b
    out.mul16 = u16(a) * u16(b)
    out.neg8 = -s8(d)
    out.div = a // b
    out.mod = a % b
    out.shl = a << b
    out.sar = c >> d
    out.shr = a >> (b & 7)
    out.mixed = u64(a) * 3 + c            # s32 joins u64: converted as C does
    out.widened = s64(c) - a
    out.lt_mixed = u8(1) if c < a else u8(0)   # s32 vs u32 compares unsigned
    out.lt_signed = u8(1) if c < s32(a) else u8(0)
    out.inv = ~u16(b)
    i = 0
    total = u32(0)
    while True:
        i += 1
        if i > 20:
            break
        if u32(i) % 3 == 0:
            continue
        total += u32(i) * b
    out.loops = total
    for k in range(4):
        out.hist[k] = u32(clamp(c, s32(k * -2), s32(k * 5)))
    data[13] = d ^ 0xFF
    return u64(a) + b
