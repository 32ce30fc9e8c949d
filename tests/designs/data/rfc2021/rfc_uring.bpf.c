// SPDX-License-Identifier: MIT
/* The four programs of the 2021 "io_uring BPF requests" RFC v2 test suite, written for
 * uringbpf in the style of the RFC's examples/bpf/uring.bpf.c, to check that such a
 * program builds unchanged: the kernel types come from `uringbpf vmlinux --design rfc2021`,
 * the RFC's helpers are declared here by id (as the RFC's examples did), and the result
 * array is a libbpf 0.x legacy map definition. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "uring.h"

static long (*iouring_queue_sqe)(void *ctx, struct io_uring_sqe *sqe, u32 len) = (void *) 164;
static long (*iouring_emit_cqe)(void *ctx, u32 cq, u64 data, u32 res, u32 flags) = (void *) 165;
static long (*iouring_reap_cqe)(void *ctx, u32 cq, struct io_uring_cqe *cqe, u32 len) = (void *) 166;
static long (*bpf_copy_to_user)(void *user_ptr, const void *src, __u32 size) = (void *) 167;

#define IOSQE_FIXED_FILE	(1U << IOSQE_FIXED_FILE_BIT)

struct bpf_map_def SEC("maps") arr = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(unsigned long),
	.max_entries = 256,
};

#define RES_SLOT	0
#define GUARD_SLOT	10

static void put(u32 slot, unsigned long val)
{
	unsigned long *p = bpf_map_lookup_elem(&arr, &slot);

	if (p)
		*p = val;
}

static unsigned long get(u32 slot)
{
	unsigned long *p = bpf_map_lookup_elem(&arr, &slot);

	return p ? *p : -1UL;
}

static inline void prep_rw(int op, struct io_uring_sqe *sqe, int fd, const void *addr,
			   unsigned int len, __u64 off)
{
	sqe->opcode = op;
	sqe->flags = 0;
	sqe->ioprio = 0;
	sqe->fd = fd;
	sqe->off = off;
	sqe->addr = (unsigned long)addr;
	sqe->len = len;
	sqe->rw_flags = 0;
	sqe->user_data = 0;
	sqe->__pad2[0] = sqe->__pad2[1] = sqe->__pad2[2] = 0;
}

/* test1: one of every feature, then a wait for CQ 0 that brings us back once */
SEC("iouring.s/")
int test(struct io_uring_bpf_ctx *ctx)
{
	struct io_uring_cqe cqe = {};
	struct io_uring_sqe sqe;
	unsigned long secret;
	u64 *uptr;
	int ret;

	if (get(GUARD_SLOT))
		return 0;
	put(GUARD_SLOT, 1);
	put(RES_SLOT, 11);

	iouring_emit_cqe(ctx, 0, 3, 13, 0);
	iouring_emit_cqe(ctx, 1, 4, 17, 0);
	iouring_emit_cqe(ctx, 1, 5, 19, 0);
	ret = iouring_reap_cqe(ctx, 1, &cqe, sizeof(cqe));
	put(RES_SLOT + 1, ret ? ret : cqe.user_data);
	ret = iouring_reap_cqe(ctx, 1, &cqe, sizeof(cqe));
	put(RES_SLOT + 2, ret ? ret : cqe.user_data);

	prep_rw(IORING_OP_NOP, &sqe, -1, 0, 0, 0);
	sqe.user_data = 2;
	ret = iouring_queue_sqe(ctx, &sqe, sizeof(sqe));
	put(RES_SLOT + 3, ret < 0 ? ret : 21);

	put(RES_SLOT + 4, ctx->user_data);
	uptr = (u64 *)(unsigned long)ctx->user_data;
	bpf_copy_from_user(&secret, sizeof(secret), uptr);
	put(RES_SLOT + 5, secret);
	secret = 31;
	bpf_copy_to_user(uptr, &secret, sizeof(secret));

	ctx->wait_idx = 0;
	ctx->wait_nr = 1;
	return 0;
}

/* test2: a timeout per tick into CQ 1, eleven ticks, all handled here */
SEC("iouring.s/")
int counting(struct io_uring_bpf_ctx *ctx)
{
	struct counting_ctx *uctx = (void *)(unsigned long)ctx->user_data;
	unsigned long v = get(0);
	struct io_uring_sqe sqe;
	struct io_uring_cqe cqe;
	unsigned int cq_idx = 1;

	if (v > 10)
		return 0;
	put(0, v + 1);
	if (v != 0) {
		int ret = iouring_reap_cqe(ctx, cq_idx, &cqe, sizeof(cqe));

		put(1, ret ? ret : cqe.user_data);
	}
	prep_rw(IORING_OP_TIMEOUT, &sqe, -1, &uctx->ts, 1, 0);
	sqe.timeout_flags = 0;
	sqe.user_data = 5;
	sqe.cq_idx = cq_idx;
	iouring_queue_sqe(ctx, &sqe, sizeof(sqe));
	ctx->wait_idx = cq_idx;
	ctx->wait_nr = 1;
	return 0;
}

/* test3: two requests bounce a counter through each other's CQ until 20 */
SEC("iouring.s/")
int pingpong(struct io_uring_bpf_ctx *ctx)
{
	struct ping_ctx *uctx = (void *)(unsigned long)ctx->user_data;
	struct io_uring_cqe cqe;
	int idx, iter;

	bpf_copy_from_user(&idx, sizeof(idx), &uctx->idx);
	if (!get(idx)) {
		put(idx, 1);
		goto wait;
	}
	iouring_reap_cqe(ctx, idx + 1, &cqe, sizeof(cqe));
	iter = cqe.user_data;
	iouring_emit_cqe(ctx, (idx ^ 1) + 1, iter + 1, 0, 0);
	if (iter >= 20) {
		put(idx + 5, iter);
		return 0;
	}
wait:
	ctx->wait_idx = idx + 1;
	ctx->wait_nr = 1;
	return 0;
}

/* test4: write FILL_BLOCKS blocks to fixed file 0 with FILL_QD in flight */
SEC("iouring.s/")
int write_file(struct io_uring_bpf_ctx *ctx)
{
	void *buf = (void *)(unsigned long)ctx->user_data;
	u64 i, inflight = get(0), cur_off = get(1);
	struct io_uring_sqe sqe;
	struct io_uring_cqe cqe;

	for (i = 0; i < FILL_QD; i++) {
		if (inflight && !iouring_reap_cqe(ctx, 1, &cqe, sizeof(cqe)))
			inflight--;
	}
	for (i = 0; i < FILL_QD; i++) {
		if (inflight >= FILL_QD || cur_off >= FILL_BLOCKS)
			break;
		prep_rw(IORING_OP_WRITE, &sqe, 0, buf, FILL_BLOCK_SIZE, cur_off * FILL_BLOCK_SIZE);
		sqe.flags = IOSQE_FIXED_FILE;
		sqe.cq_idx = 1;
		if (iouring_queue_sqe(ctx, &sqe, sizeof(sqe)) < 0)
			break;
		inflight++;
		cur_off++;
	}
	put(1, cur_off);
	put(0, inflight);
	ctx->wait_idx = 1;
	ctx->wait_nr = inflight;
	return 0;
}

/* the RFC's access check looks at offset and size only: user_data may be written (the
 * next run gets a fresh context, and the CQE keeps the SQE's user_data) */
SEC("iouring/")
int scribble(struct io_uring_bpf_ctx *ctx)
{
	put(20, ctx->user_data);
	ctx->user_data = 0xdead;
	put(21, ctx->user_data);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
