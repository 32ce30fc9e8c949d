// SPDX-License-Identifier: MIT
/* crc32c of a write request's data, for the stripe target's integrity log.
 *
 * Program type "syscall": r1 points to the context buffer, r2 is its length (checked before
 * any access, as the verifier requires). Context (struct crc_ctx, filled by integrity.py):
 * `data` is the native address of up to CHUNK bytes of the request's pages (in zero-copy
 * mode derived from kbuf_table(ring).lookup(index)), `len` their length (a multiple of 8:
 * requests are whole sectors), `crc` the running crc32c (0 to start; finalised form, so
 * calls chain). Returns 0, or -1 for a bad length or a failed read.
 *
 * The pages are not the program's memory, so it copies each 4 KiB in with one
 * bpf_probe_read_kernel into a global buffer, and folds 8 bytes per loop iteration in with
 * the reflected Castagnoli table below (fewer iterations for the verifier to walk). The
 * loops are plain bounded loops (no bpf_loop), so any verifier that handles bounded loops
 * accepts the program; the host calls it once per 4 KiB.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <uringbpf/crc32c.h>

#define STEP 256
#define CHUNK 4096

struct crc_ctx {
	__u64 data;
	__u32 len;
	__u32 crc;
};

/* crc32c, reflected polynomial 0x82F63B78: table[i] = crc of the single byte i */
static const __u32 crc_table[256] = UBPF_CRC32C_TABLE;

/* one page of the request, copied in by a single helper call (global data is an array
 * map value: 4 KiB, more than the 512-byte stack allows) */
static __u64 page[CHUNK / 8];

SEC("syscall")
int crc32c_write(struct crc_ctx *ctx, __u64 ctx_len)
{
	__u64 data, w;
	__u32 len, crc, i;

	if (ctx_len < sizeof(*ctx))
		return -1;
	data = ctx->data;
	len = ctx->len;
	crc = ~ctx->crc;
	if (len == 0 || len > CHUNK || len % 8)
		return -1;
	if (bpf_probe_read_kernel(page, len, (const void *)data))
		return -1;
	for (i = 0; i < CHUNK / 8; i++) {
		if (i * 8 >= len)
			break;
		w = page[i];
#pragma unroll
		for (int k = 0; k < 8; k++) {
			crc = crc_table[(crc ^ w) & 0xff] ^ (crc >> 8);
			w >>= 8;
		}
	}
	ctx->crc = ~crc;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
