// SPDX-License-Identifier: MIT
/* The four programs of the 2021 "io_uring BPF requests" RFC's test suite, written anew for
 * uringbpf: features (slot 0 of the registered table), counting (1), pingpong (2) and
 * write_file (3).  Results go to the array map `arr`, which the Python drivers read.
 * All four are sleepable (SEC("iouring.s/")) because they queue SQEs or touch user memory.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/time_types.h>
#include <bpf/bpf_helpers.h>
#include <io_uring/bpf_requests.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define NR_SLOTS 256

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} arr SEC(".maps");

static __always_inline __u64 *slot(__u32 i)
{
	return bpf_map_lookup_elem(&arr, &i);
}

static __always_inline void put(__u32 i, __u64 v)
{
	__u64 *p = slot(i);

	if (p)
		*p = v;
}

static __always_inline void prep_sqe(struct io_uring_sqe *sqe, __u8 op, int fd, __u64 addr,
				     __u32 len, __u64 off, __u64 user_data, __u16 cq_idx)
{
	__builtin_memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = addr;
	sqe->len = len;
	sqe->off = off;
	sqe->user_data = user_data;
	io_uring_sqe_set_cq_idx(sqe, cq_idx);
}

/* 1. features: emit to CQ 0 and CQ 1, reap, queue a NOP, read and overwrite a user value,
 * then wait for one CQE on CQ 0; the second run (slot 10 set) completes the request. */
SEC("iouring.s/features")
int features(struct io_uring_bpf_ctx *ctx)
{
	struct io_uring_cqe cqe;
	struct io_uring_sqe sqe;
	__u64 secret = 0, new_secret = 31;
	__u64 *guard = slot(10);
	long ret;

	if (!guard || *guard)
		return 0;
	*guard = 1;
	put(0, 11);

	iouring_emit_cqe(ctx, 0, 3, 13, 0);
	iouring_emit_cqe(ctx, 1, 4, 17, 0);
	iouring_emit_cqe(ctx, 1, 5, 19, 0);
	ret = iouring_reap_cqe(ctx, 1, &cqe, sizeof(cqe));
	put(1, ret ? (__u64)ret : cqe.user_data);
	ret = iouring_reap_cqe(ctx, 1, &cqe, sizeof(cqe));
	put(2, ret ? (__u64)ret : cqe.user_data);
	/* CQ 1 is empty now: the RFC says -ENOENT and a zeroed cqe */
	ret = iouring_reap_cqe(ctx, 1, &cqe, sizeof(cqe));
	put(6, (__u64)ret);
	put(7, cqe.user_data);

	prep_sqe(&sqe, IORING_OP_NOP, -1, 0, 0, 0, 2, 0);
	ret = iouring_queue_sqe(ctx, &sqe, sizeof(sqe));
	put(3, ret >= 0 ? 21 : (__u64)ret);

	put(4, ctx->user_data);
	if (bpf_copy_from_user(&secret, sizeof(secret), (void *)ctx->user_data) == 0)
		put(5, secret);
	bpf_copy_to_user((void *)ctx->user_data, &new_secret, sizeof(new_secret));

	ctx->wait_idx = 0;
	ctx->wait_nr = 1;
	return 0;
}

/* 2. counting: `user_data` points at a struct __kernel_timespec.  Each run queues one
 * TIMEOUT to CQ 1 and waits for it; after 11 ticks the request completes. */
SEC("iouring.s/counting")
int counting(struct io_uring_bpf_ctx *ctx)
{
	struct io_uring_cqe cqe;
	struct io_uring_sqe sqe;
	__u64 *count = slot(0);

	if (!count || *count > 10)
		return 0;
	if (*count > 0 && iouring_reap_cqe(ctx, 1, &cqe, sizeof(cqe)) == 0)
		put(1, cqe.user_data);
	*count += 1;

	prep_sqe(&sqe, IORING_OP_TIMEOUT, -1, ctx->user_data, 1, 0, 5, 1);
	if (iouring_queue_sqe(ctx, &sqe, sizeof(sqe)) < 0) {
		put(2, 1);
		return 0;
	}
	ctx->wait_idx = 1;
	ctx->wait_nr = 1;
	return 0;
}

/* 3. pingpong: `user_data` points at a struct ping_ctx; program idx listens on CQ idx+1
 * and answers on the peer's CQ with the counter + 1, until the counter reaches 20. */
struct ping_ctx {
	__u64 idx;
};

SEC("iouring.s/pingpong")
int pingpong(struct io_uring_bpf_ctx *ctx)
{
	struct io_uring_cqe cqe;
	struct ping_ctx pc;
	__u64 *started, iter;
	__u32 idx;

	if (bpf_copy_from_user(&pc, sizeof(pc), (void *)ctx->user_data))
		return 0;
	idx = pc.idx & 1;
	started = slot(idx);
	if (!started)
		return 0;
	if (!*started) {
		*started = 1;
		ctx->wait_idx = idx + 1;
		ctx->wait_nr = 1;
		return 0;
	}
	if (iouring_reap_cqe(ctx, idx + 1, &cqe, sizeof(cqe)))
		return 0;
	iter = cqe.user_data;
	iouring_emit_cqe(ctx, (idx ^ 1) + 1, iter + 1, 0, 0);
	if (iter < 20) {
		ctx->wait_idx = idx + 1;
		ctx->wait_nr = 1;
	} else {
		put(5 + idx, iter);
	}
	return 0;
}

/* 4. write_file: write FILL_BLOCKS blocks of FILL_BLOCK_SIZE bytes from the user buffer
 * at `user_data` to fixed file 0, keeping up to FILL_QD writes in flight on CQ 1. */
#define FILL_QD 4
#define FILL_BLOCKS 16
#define FILL_BLOCK_SIZE (4096 * 4)

SEC("iouring.s/write_file")
int write_file(struct io_uring_bpf_ctx *ctx)
{
	__u64 *inflight = slot(0), *next = slot(1), *errors = slot(2), *peak = slot(3);
	struct io_uring_cqe cqe;
	struct io_uring_sqe sqe;
	int i;

	if (!inflight || !next || !errors || !peak)
		return 0;
	for (i = 0; i < FILL_QD; i++) {
		if (!*inflight || iouring_reap_cqe(ctx, 1, &cqe, sizeof(cqe)))
			break;
		*inflight -= 1;
		if (cqe.res != FILL_BLOCK_SIZE)
			*errors += 1;
	}
	for (i = 0; i < FILL_QD; i++) {
		if (*inflight >= FILL_QD || *next >= FILL_BLOCKS)
			break;
		prep_sqe(&sqe, IORING_OP_WRITE, 0, ctx->user_data + *next * FILL_BLOCK_SIZE,
			 FILL_BLOCK_SIZE, *next * FILL_BLOCK_SIZE, *next, 1);
		sqe.flags = IOSQE_FIXED_FILE;
		if (iouring_queue_sqe(ctx, &sqe, sizeof(sqe)) < 0) {
			*errors += 1;
			break;
		}
		*inflight += 1;
		*next += 1;
	}
	if (*inflight > *peak)
		*peak = *inflight;
	ctx->wait_idx = 1;
	ctx->wait_nr = *inflight;
	return 0;
}

/* 5. nop_loop (not in the RFC; for bench_engines.py): run `user_data` NOPs with up to
 * NOP_QD in flight on CQ 1, re-running on every completion batch. */
#define NOP_QD 8

SEC("iouring.s/nop_loop")
int nop_loop(struct io_uring_bpf_ctx *ctx)
{
	__u64 *inflight = slot(20), *issued = slot(21), *done = slot(22);
	struct io_uring_cqe cqe;
	struct io_uring_sqe sqe;
	int i;

	if (!inflight || !issued || !done)
		return 0;
	for (i = 0; i < NOP_QD; i++) {
		if (!*inflight || iouring_reap_cqe(ctx, 1, &cqe, sizeof(cqe)))
			break;
		*inflight -= 1;
		*done += 1;
	}
	for (i = 0; i < NOP_QD; i++) {
		if (*inflight >= NOP_QD || *issued >= ctx->user_data)
			break;
		prep_sqe(&sqe, IORING_OP_NOP, -1, 0, 0, 0, *issued, 1);
		if (iouring_queue_sqe(ctx, &sqe, sizeof(sqe)) < 0)
			break;
		*inflight += 1;
		*issued += 1;
	}
	ctx->wait_idx = 1;
	ctx->wait_nr = *inflight ? 1 : 0;
	return 0;
}
