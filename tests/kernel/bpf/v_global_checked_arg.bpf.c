/* SPDX-License-Identifier: MIT */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";
/* verifier case: the same global function with a NULL check: accepted */
__u32 word = 7;

__noinline int read_word(__u32 *p)
{
	return p ? *p : 0;
}

SEC("struct_ops.s/v_step")
int BPF_PROG(v_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	return read_word(&word) > 100 ? IOU_LOOP_CONTINUE : IOU_LOOP_STOP;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops v_ops = {
	.loop_step = (void *)v_step,
};
