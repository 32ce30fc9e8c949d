// SPDX-License-Identifier: MIT
/* crc32c of one write request's data, for the stripe target's integrity log.
 *
 * Context contract (struct crc_ctx, filled by integrity.py): `data` is the native address of
 * the registered request buffer (kbuf_table(ring).lookup(index) -> addr), `len` its length;
 * the program stores the finalised crc32c in `crc`. The pages are read with
 * bpf_probe_read_kernel in 256-byte steps: like a kernel program, this one gets no direct
 * pointer to memory it does not own.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define STEP 256
#define MAX_STEPS 4096          /* 1 MiB: the source's max_io_bytes */

struct crc_ctx {
	__u64 data;
	__u32 len;
	__u32 crc;
};

SEC("syscall")
int crc32c_write(struct crc_ctx *ctx)
{
	__u8 buf[STEP];
	__u64 data = ctx->data;
	__u32 len = ctx->len;
	__u32 crc = 0xffffffff;

	for (__u32 step = 0; step < MAX_STEPS; step++) {
		__u32 off = step * STEP;
		__u32 n;

		if (off >= len)
			break;
		n = len - off;
		if (n > STEP)
			n = STEP;
		if (bpf_probe_read_kernel(buf, n & (STEP * 2 - 1), (void *)(data + off)))
			return -1;
		for (__u32 i = 0; i < STEP; i++) {
			if (i >= n)
				break;
			crc ^= buf[i];
			for (int k = 0; k < 8; k++)
				crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
		}
	}
	ctx->crc = ~crc;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
