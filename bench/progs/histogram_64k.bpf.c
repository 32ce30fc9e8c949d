// SPDX-License-Identifier: MIT
/* Issue #19's second program: a byte histogram over 64 KiB (bench/load.py verifies and loads it).
 * bench/compute.py times its JIT code, to hold compile-time work to the same code quality. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";
__u8 data[65536];
__u32 hist[256];

SEC("socket")
int histogram_64k(void *ctx)
{
	for (int i = 0; i < 65536; i++)
		hist[data[i]]++;
	return hist[0];
}
