// SPDX-License-Identifier: MIT
/* Two nested bounded loops over a table (bench/load.py: verification of a program
 * processing >= 100k instructions). */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";
__u32 tab[256];
__u64 out;

SEC("socket")
int nested_256x64(void *ctx)
{
	__u64 x = 0;

	for (int i = 0; i < 256; i++)
		for (int j = 0; j < 64; j++)
			x += tab[(i + j) & 255] ^ j;
	out = x;
	return x & 0xff;
}
