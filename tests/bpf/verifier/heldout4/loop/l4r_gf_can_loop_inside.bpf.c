/* realistic: a global function scans its struct argument in a can_loop loop */
#include "ho4.h"
struct blk16 { __u8 b[16]; };
__attribute__((noinline)) int count_set(struct blk16 *b)
{
	int n = 0;
	if (!b)
		return 0;
	for (__u32 i = 0; i < 16 && can_loop; i++)
		n += b->b[i] != 0;
	return n;
}
STEP
{
	return count_set((struct blk16 *)bpf_io_uring_get_region(ring, IOU_REGION_MEM, 16)) & 1;
}
OPS;
