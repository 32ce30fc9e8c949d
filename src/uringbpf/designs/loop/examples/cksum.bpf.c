/* SPDX-License-Identifier: MIT */
/*
 * Copy a stream and checksum it on the way, from a Linux 7.1 loop_step.
 *
 * Links cannot express this at all: no chain of requests can look at the data.  The
 * copy buffer is the ring's registered parameter region (IOU_REGION_MEM), so after
 * each read the program sees the bytes themselves (through bpf_io_uring_get_region)
 * and folds them into a 32-bit FNV-1a hash before writing them out.  Reads may be
 * short (pipes, sockets); each write is exactly as long as the read before it.
 */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define UD_READ 1
#define UD_WRITE 2
#define CHUNK 1024		/* bytes per read: the verifier walks the hash loop CHUNK times */
#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

/* io_uring regions are whole pages: one page of the ring header is always there */
#define REGION_SIZE 4096

const volatile unsigned cq_head_offset;
const volatile unsigned cq_tail_offset;
const volatile unsigned cqes_offset;
const volatile unsigned cq_entries = 8;
const volatile unsigned sq_entries = 8;
const volatile int in_fd = -1;
const volatile int out_fd = -1;
const volatile __u64 buf_addr;		/* user address of the parameter region */

__u32 fnv1a = FNV_OFFSET;
__u64 copied;
int error;
int done;

static unsigned started, chunk_len, chunk_written;

static __always_inline int queue(struct io_ring_ctx *ring, __u8 op, int fd, __u64 addr, __u32 len, __u64 off,
		 __u64 ud)
{
	struct io_uring_sqe *sqe;

	sqe = (struct io_uring_sqe *)bpf_io_uring_get_region(ring, IOU_REGION_SQ,
							     sizeof(struct io_uring_sqe));
	if (!sqe)
		return -1;
	__builtin_memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = addr;
	sqe->len = len;
	sqe->off = off;
	sqe->user_data = ud;
	return bpf_io_uring_submit_sqes(ring, 1) == 1 ? 0 : -1;
}

static __always_inline void hash_chunk(const __u8 *data, unsigned len)
{
	__u32 h = fnv1a;
	unsigned i;

	for (i = 0; i < CHUNK; i++) {
		if (i >= len)
			break;
		h = (h ^ data[i]) * FNV_PRIME;
	}
	fnv1a = h;
}

SEC("struct_ops.s/cksum_loop_step")
int BPF_PROG(cksum_loop_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	struct io_uring_cqe *cqe;
	volatile __u32 *cq_head, *cq_tail;
	__u8 *hdr, *data;
	unsigned head_off, tail_off, cqes_base, mask, off;
	__u32 head;
	__u64 ud;
	int res;

	hdr = bpf_io_uring_get_region(ring, IOU_REGION_CQ, REGION_SIZE);
	data = bpf_io_uring_get_region(ring, IOU_REGION_MEM, CHUNK);
	if (!hdr || !data) {
		error = -14; /* EFAULT: no parameter region registered */
		return IOU_LOOP_STOP;
	}
	/* read each .rodata value once (a volatile is reloaded at every use) and bound it */
	head_off = cq_head_offset;
	tail_off = cq_tail_offset;
	cqes_base = cqes_offset;
	mask = cq_entries - 1;
	if (head_off > REGION_SIZE - 4 || tail_off > REGION_SIZE - 4) {
		error = -22; /* EINVAL */
		return IOU_LOOP_STOP;
	}
	cq_head = (volatile __u32 *)(hdr + head_off);
	cq_tail = (volatile __u32 *)(hdr + tail_off);
	head = *cq_head;

	if (!started) {
		started = 1;
		if (queue(ring, IORING_OP_READ, in_fd, buf_addr, CHUNK, (__u64)-1, UD_READ))
			goto submit_failed;
		lp->cq_wait_idx = head + 1;
		return IOU_LOOP_CONTINUE;
	}
	if (head == *cq_tail) {
		lp->cq_wait_idx = head + 1;
		return IOU_LOOP_CONTINUE;
	}
	off = cqes_base + (head & mask) * sizeof(struct io_uring_cqe);
	if (off > REGION_SIZE - sizeof(struct io_uring_cqe)) {
		error = -22;
		return IOU_LOOP_STOP;
	}
	cqe = (struct io_uring_cqe *)(hdr + off);
	res = cqe->res;
	ud = cqe->user_data;
	*cq_head = ++head;

	if (res < 0) {
		error = res;
		return IOU_LOOP_STOP;
	}
	if (ud == UD_READ) {
		if (res == 0) {
			done = 1;
			return IOU_LOOP_STOP;
		}
		hash_chunk(data, res);
		chunk_len = res;
		chunk_written = 0;
	} else {
		if (res == 0) {
			error = -5;
			return IOU_LOOP_STOP;
		}
		chunk_written += res;
		copied += res;
		if (chunk_written >= chunk_len) {
			if (queue(ring, IORING_OP_READ, in_fd, buf_addr, CHUNK, (__u64)-1, UD_READ))
				goto submit_failed;
			lp->cq_wait_idx = head + 1;
			return IOU_LOOP_CONTINUE;
		}
	}
	if (queue(ring, IORING_OP_WRITE, out_fd, buf_addr + chunk_written,
		  chunk_len - chunk_written, copied, UD_WRITE))
		goto submit_failed;
	lp->cq_wait_idx = head + 1;
	return IOU_LOOP_CONTINUE;

submit_failed:
	error = -11;
	return IOU_LOOP_STOP;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops cksum_ops = {
	.loop_step = (void *)cksum_loop_step,
};
