/* SPDX-License-Identifier: MIT */
#define ARENA_PAGES 2
#define ARENA_AT (1ULL << 44)
#include "arena_map.h"

/* verifier case: __arena globals and an allocated page, arena at map_extra 1 << 44 */

__u64 __arena hits;

SEC("struct_ops.s/v_step")
int BPF_PROG(v_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	__u64 __arena *p = bpf_arena_alloc_pages(&arena, NULL, 1, NUMA_NO_NODE, 0);

	hits++;
	if (p)
		p[3] = hits;
	return IOU_LOOP_STOP;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops v_ops = {
	.loop_step = (void *)v_step,
};
