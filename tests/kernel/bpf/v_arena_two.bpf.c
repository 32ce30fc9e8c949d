/* SPDX-License-Identifier: MIT */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>
#include <bpf/bpf_arena.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";
/* verifier case: one program using two arenas (the kernel allows one per program) */
struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
} arena_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
} arena_b SEC(".maps");

SEC("struct_ops.s/v_step")
int BPF_PROG(v_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	bpf_arena_alloc_pages(&arena_a, NULL, 1, NUMA_NO_NODE, 0);
	bpf_arena_alloc_pages(&arena_b, NULL, 1, NUMA_NO_NODE, 0);
	return IOU_LOOP_STOP;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops v_ops = {
	.loop_step = (void *)v_step,
};
