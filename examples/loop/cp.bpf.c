/* SPDX-License-Identifier: MIT */
/*
 * File copy driven by a Linux 7.1 loop_step: read a chunk, write exactly what the
 * read returned, repeat until a read returns 0.
 *
 * This is what IOSQE_IO_LINK cannot do: a linked read->write pair must fix the write
 * length when it is queued, so a short read (a pipe, a socket, a signal, the tail of a
 * file) writes garbage or leaves a hole.  Here each completion decides the next
 * request: the write length is the read's result, a short write is resumed, and any
 * error stops the loop with the error recorded for the application.
 *
 * Input is read at offset -1 (the file position), so in_fd may be a pipe or a socket;
 * output is written at explicit offsets.  One request is in flight at a time.
 */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define UD_READ 1
#define UD_WRITE 2

/* io_uring regions are whole pages: one page of the ring header is always there */
#define REGION_SIZE 4096

const volatile unsigned cq_head_offset;
const volatile unsigned cq_tail_offset;
const volatile unsigned cqes_offset;
const volatile unsigned cq_entries = 8;
const volatile unsigned sq_entries = 8;
const volatile int in_fd = -1;
const volatile int out_fd = -1;
const volatile __u64 buf_addr;		/* user address of the copy buffer */
const volatile unsigned chunk_size = 4096;

__u64 copied;		/* bytes written so far (the output offset) */
__u64 reads, writes, short_reads, short_writes;
int error;		/* first negative result, 0 on success */
int done;		/* 1 once a read returned 0 */

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

static __always_inline int queue_read(struct io_ring_ctx *ring)
{
	reads++;
	return queue(ring, IORING_OP_READ, in_fd, buf_addr, chunk_size, (__u64)-1, UD_READ);
}

static __always_inline int queue_write(struct io_ring_ctx *ring)
{
	writes++;
	return queue(ring, IORING_OP_WRITE, out_fd, buf_addr + chunk_written,
		     chunk_len - chunk_written, copied, UD_WRITE);
}

SEC("struct_ops.s/cp_loop_step")
int BPF_PROG(cp_loop_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	struct io_uring_cqe *cqe;
	volatile __u32 *cq_head, *cq_tail;
	__u8 *hdr;
	unsigned head_off, tail_off, cqes_base, mask, off;
	__u32 head;
	__u64 ud;
	int res;

	hdr = bpf_io_uring_get_region(ring, IOU_REGION_CQ, REGION_SIZE);
	if (!hdr) {
		error = -14; /* EFAULT */
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
		if (queue_read(ring))
			goto submit_failed;
		lp->cq_wait_idx = head + 1;
		return IOU_LOOP_CONTINUE;
	}
	if (head == *cq_tail) {		/* early wake-up: keep waiting */
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
		if ((unsigned)res < chunk_size)
			short_reads++;
		chunk_len = res;
		chunk_written = 0;
		if (queue_write(ring))
			goto submit_failed;
	} else {
		if (res == 0) {
			error = -5; /* EIO: a write that makes no progress */
			return IOU_LOOP_STOP;
		}
		chunk_written += res;
		copied += res;
		if (chunk_written < chunk_len) {
			short_writes++;
			if (queue_write(ring))
				goto submit_failed;
		} else if (queue_read(ring)) {
			goto submit_failed;
		}
	}
	lp->cq_wait_idx = head + 1;
	return IOU_LOOP_CONTINUE;

submit_failed:
	error = -11; /* EAGAIN: the SQE was not consumed */
	return IOU_LOOP_STOP;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops cp_ops = {
	.loop_step = (void *)cp_loop_step,
};
