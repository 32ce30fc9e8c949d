/* a u8 argument is an unknown scalar in the callee (not truncated for it) */
#include "ho4.h"
struct blk64 { __u8 b[64]; };
__attribute__((noinline)) int rd(struct blk64 *b, __u8 i)
{
	if (!b)
		return 0;
	return b->b[i >> 2];
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	return rd((struct blk64 *)p, lp->cq_wait_idx) & 1;
}
OPS;
