// SPDX-License-Identifier: MIT
/* A loop calling bpf_map_lookup_elem with a key on the stack in every iteration, and a
 * null check (bench/load.py: helper calls, stack and pointer compares; 4,096 iterations
 * keep the pending branches under the kernel's 8,192). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("socket")
int lookup_loop_4k(void *ctx)
{
	__u64 total = 0;

	for (__u32 i = 0; i < 4096; i++) {
		__u32 key = i & 63;
		__u64 *v = bpf_map_lookup_elem(&counts, &key);
		if (v) {
			*v += i;
			total += *v >> 1;
		}
	}
	return total & 0xff;
}
