// SPDX-License-Identifier: MIT
/*
 * A filter-style program of about 1,000 instructions (64 rules of loads, compares and
 * arithmetic on a data buffer): what bench/compute.py compiles to measure JIT compile time
 * on code shaped like real programs (many small blocks), not on one tight loop.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define RULE(n)                                                         \
	if (len >= (n) * 4 + 4) {                                       \
		__u32 v = *(__u32 *)(data + (n) * 4);                   \
		if ((v & 0xff) == (((n) * 37) & 0xff))                  \
			acc += (__u64)v * ((n) + 1);                    \
		else if ((v >> 8) > (n) * 3)                            \
			acc ^= (__u64)v << ((n) & 15);                  \
		else                                                    \
			acc -= (n) ^ v;                                 \
	}

#define RULES8(b) RULE(b) RULE(b + 1) RULE(b + 2) RULE(b + 3) RULE(b + 4) RULE(b + 5) \
	RULE(b + 6) RULE(b + 7)

SEC("socket")
int branchy(unsigned char *data, unsigned long len)
{
	__u64 acc = len;

	RULES8(0) RULES8(8) RULES8(16) RULES8(24) RULES8(32) RULES8(40) RULES8(48) RULES8(56)
	return (int)(acc ^ (acc >> 32));
}
