"""A Python-written program the running kernel must accept (tests/lang/test_kernel_load.py):
globals, an array map, a BPF-to-BPF call, an open-coded iterator loop, ring buffer
records reserved then submitted or discarded, signed floor division, bpf_printk -- and no
context access,
since the kernel's socket-filter context is a struct __sk_buff, not our data buffer."""

import ctypes

from uringbpf.lang import Module, bpf_printk, bpf_range, s32, u32, u64


class Event(ctypes.Structure):
    _fields_ = [("calls", ctypes.c_uint32), ("q", ctypes.c_int32), ("total", ctypes.c_uint64)]


bpf = Module("kernel_prog")
counts = bpf.array_map("counts", u32, u64, 8)
events = bpf.ringbuf("events", 4096)
# (no arena: this machine's kernel refuses to create one, EPERM, even for root)


@bpf.bss
class st:
    calls: u32
    total: u64


@bpf.function
def bump(k: u32) -> u64:
    c = counts.lookup(k & 7)
    if not c:
        return 0
    c[0] += 1
    return c[0]


@bpf.socket_filter
def kprog(skb, n) -> u64:
    st.calls += 1
    for i in bpf_range(0, 4):
        st.total += bump(u32(i))
    e = events.reserve(Event)
    if not e:
        return 0
    e.calls = st.calls
    e.q = (s32(st.calls) - 10) // 3
    e.total = st.total
    if st.calls & 1:
        bpf_printk("kprog: call %u total %llu", st.calls, st.total)
        events.submit(e)
    else:
        events.discard(e)
    return 0
