/* SPDX-License-Identifier: MIT */
/* loop_step with global (non-static) BPF functions: the kernel verifies each on its own,
 * from its BTF prototype, which it only has when the loader sends func_info. */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

__u32 steps;
__u32 total;

__noinline int add_scaled(int x, int y)
{
	return x + 3 * y;
}

static __noinline int bump(int x)
{
	return x + 1;
}

__noinline int count_step(__u32 *counter)
{
	if (!counter)
		return 0;
	*counter += 1;
	return *counter;
}

SEC("struct_ops.s/g_step")
int BPF_PROG(g_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	int n = count_step(&steps);

	total = add_scaled(bump(n), n);
	return n >= 3 ? IOU_LOOP_STOP : IOU_LOOP_CONTINUE;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops g_ops = {
	.loop_step = (void *)g_step,
};
