/* SPDX-License-Identifier: MIT */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";
/* verifier case: read through the opaque ring context */
SEC("struct_ops.s/v_step")
int BPF_PROG(v_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	return *(volatile __u32 *)ring;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops v_ops = {
	.loop_step = (void *)v_step,
};
