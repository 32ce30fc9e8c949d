/* SPDX-License-Identifier: MIT */
/* What the arena loop_step programs share: the headers, the license and the arena map
 * (ARENA_PAGES pages; at the user address ARENA_AT when that is defined, else wherever
 * the first mmap puts it). */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>
#define UBPF_ARENA_ADDR_SPACE
#include <bpf/bpf_arena.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, ARENA_PAGES);
#ifdef ARENA_AT
	__ulong(map_extra, ARENA_AT);
#endif
} arena SEC(".maps");
