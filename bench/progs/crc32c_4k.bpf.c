// SPDX-License-Identifier: MIT
/* Issue #19's first program: crc32c over 4 KiB, bitwise (bench/load.py verifies and loads it).
 * bench/compute.py times its JIT code, to hold compile-time work to the same code quality. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";
__u8 buf[4096];

SEC("socket")
int crc32c_4k(void *ctx)
{
	__u32 crc = ~0u;

	for (int i = 0; i < 4096; i++) {
		crc ^= buf[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & -(crc & 1));
	}
	return ~crc;
}
