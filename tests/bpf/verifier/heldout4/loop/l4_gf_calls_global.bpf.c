/* realistic: a global function calling another global function */
#include "ho4.h"
struct blk16 { __u8 b[16]; };
__attribute__((noinline)) int inner(struct blk16 *b, __u32 i)
{
	if (!b)
		return 0;
	return b->b[i & 15];
}
__attribute__((noinline)) int outer(struct blk16 *b, __u32 i)
{
	return inner(b, i) + inner(b, i + 1);
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 16);
	return outer((struct blk16 *)p, lp->cq_wait_idx) & 1;
}
OPS;
