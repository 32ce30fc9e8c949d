/* Loader test: an arena shared between the program and Python. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_arena.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4);
} arena SEC(".maps");

__u64 page_addr;

SEC("syscall")
int fill(void *ctx)
{
	__u64 *p = bpf_arena_alloc_pages(&arena, NULL, 1, NUMA_NO_NODE, 0);

	if (!p)
		return -1;
	p[0] = 0xfeedULL;
	p[1] = p[0] + 1;
	page_addr = (__u64)p;
	return 0;
}
