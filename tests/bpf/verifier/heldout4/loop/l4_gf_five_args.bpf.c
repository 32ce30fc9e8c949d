/* realistic: a global function with five arguments (pointer and four scalars) */
#include "ho4.h"
struct blk16 { __u8 b[16]; };
__attribute__((noinline)) int mix(struct blk16 *b, __u32 x, __u64 y, int z, __u16 w)
{
	if (!b)
		return 0;
	return b->b[(x ^ y ^ z ^ w) & 15];
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 16);
	__u32 v = lp->cq_wait_idx;
	return mix((struct blk16 *)p, v, v * 3, v - 7, v >> 3) & 1;
}
OPS;
