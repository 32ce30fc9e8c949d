/* the caller bounds the index; the global callee, verified alone, does not */
#include "ho4.h"
struct blk64 { __u8 b[64]; };
__attribute__((noinline)) int put(struct blk64 *b, __u32 i)
{
	if (!b)
		return 0;
	b->b[i] = 1;
	return 0;
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	__u32 i = lp->cq_wait_idx;
	if (!p || i > 63)
		return IOU_LOOP_STOP;
	return put((struct blk64 *)p, i);
}
OPS;
