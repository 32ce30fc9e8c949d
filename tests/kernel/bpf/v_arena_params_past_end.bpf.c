/* SPDX-License-Identifier: MIT */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>
#define UBPF_ARENA_ADDR_SPACE
#include <bpf/bpf_arena.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";
/* verifier case: an arena at map_extra 1 << 44 and a write past struct iou_loop_params.
 * A refused kernel load must leave the address free for the next object. */
struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2);
	__ulong(map_extra, 1ULL << 44);
} arena SEC(".maps");

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
