/* a global function indexes its struct argument by an unchecked u32 */
#include "ho4.h"
struct blk64 { __u8 b[64]; };
__attribute__((noinline)) int rd(struct blk64 *b, __u32 i)
{
	if (!b)
		return 0;
	return b->b[i];
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	if (!p)
		return IOU_LOOP_STOP;
	return rd((struct blk64 *)p, lp->cq_wait_idx & 63) & 1;
}
OPS;
