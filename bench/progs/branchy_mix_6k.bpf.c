// SPDX-License-Identifier: MIT
/* A loop with a data-dependent branch in every iteration and some mixing on each side
 * (bench/load.py: verification of >= 100k processed instructions; 6,000 iterations keep
 * the pending branches under the kernel's 8,192). */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";
__u8 data[6000];
__u64 out;

SEC("socket")
int branchy_mix_6k(void *ctx)
{
	__u64 h = 0xcbf29ce484222325ull;

	for (int i = 0; i < 6000; i++) {
		__u8 v = data[i];
		if (v & 1)
			h = (h ^ v) * 0x100000001b3ull;
		else
			h = (h + i) ^ (h >> 7);
		h ^= h << 13;
	}
	out = h;
	return h & 0xff;
}
