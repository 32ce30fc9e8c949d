// SPDX-License-Identifier: MIT
/* bench/compute.py's program: loaded by our JIT and, as a socket filter, by the kernel. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "compute.h"

char LICENSE[] SEC("license") = "GPL";

SEC("socket")
int compute(void *ctx)
{
	unsigned long long seed = 0x9E3779B97F4A7C15ULL;
	unsigned long long h;

	barrier_var(seed);          /* keep the compiler from folding the whole loop */
	h = compute_kernel(seed);
	return (int)(unsigned int)(h ^ (h >> 32));
}
