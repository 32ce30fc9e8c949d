/* SPDX-License-Identifier: MIT */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";
/* verifier case: submit with a NULL context */
SEC("struct_ops.s/v_step")
int BPF_PROG(v_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	return bpf_io_uring_submit_sqes((struct io_ring_ctx *)0, 1) ? IOU_LOOP_STOP : IOU_LOOP_STOP;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops v_ops = {
	.loop_step = (void *)v_step,
};
