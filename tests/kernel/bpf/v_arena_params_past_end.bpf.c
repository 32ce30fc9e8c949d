/* SPDX-License-Identifier: MIT */
#define ARENA_PAGES 2
#define ARENA_AT (1ULL << 44)
#include "arena_map.h"

/* verifier case: an arena at map_extra 1 << 44 and a write past struct iou_loop_params.
 * A refused kernel load must leave the address free for the next object. */

__u64 __arena hits;

SEC("struct_ops.s/v_step")
int BPF_PROG(v_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	hits++;
	((volatile __u32 *)lp)[1] = 1;
	return IOU_LOOP_STOP;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops v_ops = {
	.loop_step = (void *)v_step,
};
