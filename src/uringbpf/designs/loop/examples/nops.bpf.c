/* SPDX-License-Identifier: MIT */
/*
 * N NOPs with at most max_inflight in flight, driven from a Linux 7.1 loop_step:
 * each step queues NOPs in SQE slots 0..n-1 (an SQ_REWIND ring), submits them,
 * consumes every CQE that is ready (checking its token) and asks the loop to sleep
 * until all in-flight NOPs have completed.  One io_uring_enter() runs the whole
 * thing; the application only sets reqs_to_run and the ring offsets.
 */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define NOP_TOKEN 0xabba1741ULL
#define MAX_BATCH 64		/* SQEs per step at most (one page of SQEs) */
/*
 * io_uring regions are whole pages, so asking for one page of each always succeeds
 * and gives the verifier constant sizes; offsets from .rodata are checked against them.
 */
#define REGION_SIZE 4096

/* set by the application before load (ring->params offsets) */
const volatile unsigned cq_head_offset;
const volatile unsigned cq_tail_offset;
const volatile unsigned cqes_offset;
const volatile unsigned cq_entries = 8;
const volatile unsigned sq_entries = 8;
const volatile unsigned max_inflight = 8;

int reqs_to_run;		/* NOPs still to complete: 0 when the run succeeded */
unsigned reqs_inflight;
unsigned bad_cqes;		/* CQEs that did not carry NOP_TOKEN */

static unsigned batch_size(void)
{
	int room = (int)max_inflight - (int)reqs_inflight;
	int left = reqs_to_run - (int)reqs_inflight;

	if (room > left)
		room = left;
	if (room > (int)sq_entries)
		room = sq_entries;
	if (room > MAX_BATCH)
		room = MAX_BATCH;
	return room > 0 ? room : 0;
}

SEC("struct_ops.s/nops_loop_step")
int BPF_PROG(nops_loop_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	struct io_uring_sqe *sqes;
	volatile __u32 *cq_head, *cq_tail;
	unsigned head_off, tail_off, cqes_base, mask;
	__u8 *hdr;
	unsigned n, i, head, tail, seen = 0;

	sqes = (struct io_uring_sqe *)bpf_io_uring_get_region(ring, IOU_REGION_SQ, REGION_SIZE);
	hdr = bpf_io_uring_get_region(ring, IOU_REGION_CQ, REGION_SIZE);
	if (!sqes || !hdr)
		return IOU_LOOP_STOP;
	/* read each .rodata value once: a volatile is reloaded at every use */
	head_off = cq_head_offset;
	tail_off = cq_tail_offset;
	cqes_base = cqes_offset;
	mask = cq_entries - 1;
	if (head_off > REGION_SIZE - 4 || tail_off > REGION_SIZE - 4)
		return IOU_LOOP_STOP;
	cq_head = (volatile __u32 *)(hdr + head_off);
	cq_tail = (volatile __u32 *)(hdr + tail_off);

	n = batch_size();
	if (n) {
		for (i = 0; i < MAX_BATCH && i < n; i++) {
			struct io_uring_sqe *sqe = &sqes[i];

			__builtin_memset(sqe, 0, sizeof(*sqe));
			sqe->opcode = IORING_OP_NOP;
			sqe->user_data = NOP_TOKEN;
		}
		if (bpf_io_uring_submit_sqes(ring, n) != (int)n)
			return IOU_LOOP_STOP;
		reqs_inflight += n;
	}

	head = *cq_head;
	tail = *cq_tail;
	for (i = 0; i < MAX_BATCH && head != tail; i++) {
		unsigned off = cqes_base + (head & mask) * sizeof(struct io_uring_cqe);
		struct io_uring_cqe *cqe;

		if (off > REGION_SIZE - sizeof(struct io_uring_cqe))
			return IOU_LOOP_STOP;
		cqe = (struct io_uring_cqe *)(hdr + off);
		if (cqe->user_data != NOP_TOKEN) {
			bad_cqes++;
			*cq_head = head;
			return IOU_LOOP_STOP;
		}
		head++;
		seen++;
	}
	*cq_head = head;
	reqs_inflight -= seen;
	reqs_to_run -= seen;
	if (reqs_to_run <= 0 && !reqs_inflight)
		return IOU_LOOP_STOP;

	/* CQEs still pending: come straight back; else sleep until all in flight are done */
	lp->cq_wait_idx = head + (head != *cq_tail ? 0 : reqs_inflight);
	return IOU_LOOP_CONTINUE;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops nops_ops = {
	.loop_step = (void *)nops_loop_step,
};
