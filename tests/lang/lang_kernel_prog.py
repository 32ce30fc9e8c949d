"""A Python-written program the running kernel must accept (tests/lang/test_kernel_load.py):
globals, an array map, a BPF-to-BPF call, an open-coded iterator loop -- and no
context access,
since the kernel's socket-filter context is a struct __sk_buff, not our data buffer."""

from uringbpf.lang import Module, bpf_range, u32, u64

bpf = Module("kernel_prog")
counts = bpf.array_map("counts", u32, u64, 8)
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
    return 0
