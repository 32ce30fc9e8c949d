/* realistic: a signed 64-bit argument checked on both sides in the callee */
#include "ho4.h"
struct blk64 { __u8 b[64]; };
__attribute__((noinline)) int rd(struct blk64 *b, long i)
{
	if (!b || i < 0 || i > 63)
		return 0;
	return b->b[i];
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	if (!p)
		return IOU_LOOP_STOP;
	return rd((struct blk64 *)p, (long)(int)lp->cq_wait_idx) & 1;
}
OPS;
