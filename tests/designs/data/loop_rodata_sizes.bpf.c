/* SPDX-License-Identifier: MIT */
/*
 * A loop_step in the plain style of 7.1 selftests: region sizes and CQ offsets come
 * straight from `const volatile` .rodata, with no extra bounds checks.  The kernel's
 * verifier accepts this because it reads frozen .rodata as constants.
 */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile unsigned cq_head_offset, cq_tail_offset, cqes_offset;
const volatile unsigned cq_entries, sq_entries;

int reqs_to_run;
unsigned inflight;

SEC("struct_ops.s/plain_step")
int BPF_PROG(plain_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	struct io_uring_sqe *sqes = (void *)bpf_io_uring_get_region(ring, IOU_REGION_SQ,
					sq_entries * sizeof(struct io_uring_sqe));
	void *hdr = bpf_io_uring_get_region(ring, IOU_REGION_CQ,
					cqes_offset + cq_entries * sizeof(struct io_uring_cqe));
	struct io_uring_cqe *cqes;
	__u32 *head, *tail;
	unsigned i, n;

	if (!sqes || !hdr)
		return IOU_LOOP_STOP;
	head = hdr + cq_head_offset;
	tail = hdr + cq_tail_offset;
	cqes = hdr + cqes_offset;
	if (!inflight && reqs_to_run > 0) {
		n = reqs_to_run < (int)sq_entries ? reqs_to_run : sq_entries;
		for (i = 0; i < n && i < 64; i++) {
			__builtin_memset(&sqes[i], 0, sizeof(sqes[i]));
			sqes[i].user_data = i;
		}
		if (bpf_io_uring_submit_sqes(ring, n) != (int)n)
			return IOU_LOOP_STOP;
		inflight = n;
	}
	while (*head != *tail && inflight) {
		(void)cqes[*head & (cq_entries - 1)].res;
		*head += 1;
		inflight--;
		reqs_to_run--;
	}
	if (reqs_to_run <= 0 && !inflight)
		return IOU_LOOP_STOP;
	lp->cq_wait_idx = *head + inflight;
	return IOU_LOOP_CONTINUE;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops plain_ops = {
	.loop_step = (void *)plain_step,
};
