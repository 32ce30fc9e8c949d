/* realistic: a global function takes the region as a pointer to a 64-byte struct */
#include "ho3.h"
struct blk { __u8 b[64]; };
__attribute__((noinline)) int put(struct blk *p, __u32 i)
{
	if (!p)
		return 0;
	p->b[i & 63] = 1;
	return 0;
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	if (!p)
		return IOU_LOOP_STOP;
	return put((struct blk *)p, lp->cq_wait_idx);
}
OPS;
