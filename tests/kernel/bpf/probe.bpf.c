/* SPDX-License-Identifier: MIT */
/*
 * One loop_step program for the error paths of the loop design (tests/kernel).
 * `mode` (in .bss, set before each run) picks what the step does; each step also
 * counts itself in `steps` and stops after `max_steps` (0: 4) so no case can spin.
 *
 *   MODE_RET      return `ret_value` (CONTINUE/STOP or anything else)
 *   MODE_WAIT     first step sets cq_wait_idx = `wait_idx` and continues; stop after
 *   MODE_SUBMIT   write `submit_nr` NOP SQEs (at most 64), submit `submit_nr`, stop
 *   MODE_REGION   get region `region_id` with size sizes[size_idx], record non-NULL, stop
 */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define MODE_RET 0
#define MODE_WAIT 1
#define MODE_SUBMIT 2
#define MODE_REGION 3

unsigned mode;
int ret_value;
unsigned max_steps;		/* 0: 4 */
unsigned wait_idx;
unsigned submit_nr;
unsigned region_id;
unsigned size_idx;

unsigned steps;
int submit_ret;
int region_ok;
unsigned long long nop_token = 0x6b65726eULL;

SEC("struct_ops.s/probe_loop_step")
int BPF_PROG(probe_loop_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	unsigned i, n;
	__u8 *r = 0;

	steps++;
	if (steps > (max_steps ? max_steps : 4))
		return IOU_LOOP_STOP;
	switch (mode) {
	case MODE_RET:
		return ret_value;
	case MODE_WAIT:
		if (steps > 1)
			return IOU_LOOP_STOP;
		lp->cq_wait_idx = wait_idx;
		return IOU_LOOP_CONTINUE;
	case MODE_SUBMIT: {
		struct io_uring_sqe *sqes;

		sqes = (struct io_uring_sqe *)bpf_io_uring_get_region(ring, IOU_REGION_SQ, 4096);
		if (!sqes)
			return IOU_LOOP_STOP;
		n = submit_nr;
		for (i = 0; i < 64 && i < n; i++) {
			__builtin_memset(&sqes[i], 0, sizeof(sqes[i]));
			sqes[i].opcode = IORING_OP_NOP;
			sqes[i].user_data = nop_token + i;
		}
		submit_ret = bpf_io_uring_submit_sqes(ring, n);
		return IOU_LOOP_STOP;
	}
	case MODE_REGION:
		switch (size_idx) {
		case 0: r = bpf_io_uring_get_region(ring, region_id, 8); break;
		case 1: r = bpf_io_uring_get_region(ring, region_id, 4096); break;
		case 2: r = bpf_io_uring_get_region(ring, region_id, 8192); break;
		case 3: r = bpf_io_uring_get_region(ring, region_id, 65536); break;
		default: r = bpf_io_uring_get_region(ring, region_id, 1 << 20); break;
		}
		region_ok = r != 0;
		return IOU_LOOP_STOP;
	}
	return IOU_LOOP_STOP;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops probe_ops = {
	.loop_step = (void *)probe_loop_step,
};
