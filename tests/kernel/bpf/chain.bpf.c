/* SPDX-License-Identifier: MIT */
/* loop_step submitting one batch of NOPs with the link flags in .rodata (user_data
 * 1..n), then stopping: what a cBPF filter refusing some of them does to link chains
 * of program-submitted SQEs (tests/kernel/cases.py loop_filter_chain_*). */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define MAX_N 8

const volatile __u32 n = 4;
const volatile __u8 sqe_flags[MAX_N];

int submit_ret = -1;

SEC("struct_ops.s/chain_step")
int BPF_PROG(chain_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	struct io_uring_sqe *sqes;
	__u32 i, cnt = n;

	sqes = (struct io_uring_sqe *)bpf_io_uring_get_region(ring, IOU_REGION_SQ, 4096);
	if (!sqes || cnt > MAX_N)
		return IOU_LOOP_STOP;
	for (i = 0; i < MAX_N && i < cnt; i++) {
		struct io_uring_sqe *sqe = &sqes[i];

		__builtin_memset(sqe, 0, sizeof(*sqe));
		sqe->opcode = IORING_OP_NOP;
		sqe->flags = sqe_flags[i];
		sqe->user_data = i + 1;
	}
	submit_ret = bpf_io_uring_submit_sqes(ring, cnt);
	return IOU_LOOP_STOP;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops chain_ops = {
	.loop_step = (void *)chain_step,
};
