/* SPDX-License-Identifier: MIT */
/* loop_step with a BPF_MAP_TYPE_ARENA: __arena globals (.addr_space.1, which the loader
 * puts in the arena's last pages and copies in), a page from bpf_arena_alloc_pages, and
 * arena pointers kept where Python reads them.  arena_fixed.bpf.c puts the arena at
 * map_extra = 1 << 44 (as Ming Lei's bpf_ext_memcpy reproduction does), arena_any.bpf.c
 * lets the mmap pick the address. */
#define ARENA_PAGES 8
#include "arena_map.h"

__u64 __arena steps_a;			/* zero-initialised arena global */
__u64 __arena table[4] = {1, 2, 3, 4};	/* initialised: the ELF's bytes are copied in */
__u64 __arena seed;			/* set from Python before load() */

__u64 page_addr;			/* the allocated page, as the program sees it */
__u64 table_addr;			/* &table[0] */
__u64 sum;
__u32 steps;

SEC("struct_ops.s/arena_step")
int BPF_PROG(arena_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	__u64 __arena *page;
	int i;

	if (steps == 0) {
		page = bpf_arena_alloc_pages(&arena, NULL, 2, NUMA_NO_NODE, 0);
		if (!page)
			return IOU_LOOP_STOP;
		page_addr = (__u64)page;
		table_addr = (__u64)&table[0];
		for (i = 0; i < 16; i++)
			page[i] = seed * 100 + i;
		page[512 + 7] = 0xabcdef;	/* the second page */
	}
	page = (__u64 __arena *)page_addr;
	steps++;
	steps_a += 1;
	table[steps & 3] += steps;
	sum = 0;
	for (i = 0; i < 4; i++)
		sum += table[i];
	page[16 + (steps & 7)] = sum;
	return steps >= 5 ? IOU_LOOP_STOP : IOU_LOOP_CONTINUE;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops arena_ops = {
	.loop_step = (void *)arena_step,
};
