// SPDX-License-Identifier: MIT
/* A loop keeping its accumulators in a stack array (spills and fills every iteration;
 * bench/load.py: >= 100k processed). */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";
__u8 data[8192];

SEC("socket")
int stack_acc_8k(void *ctx)
{
	volatile __u64 acc[4] = {};

	for (int i = 0; i < 8192; i++) {
		acc[0] += data[i];
		acc[1] ^= data[i] << 3;
		acc[2] += acc[0] >> 2;
	}
	return (acc[0] + acc[1] + acc[2]) & 0xff;
}
