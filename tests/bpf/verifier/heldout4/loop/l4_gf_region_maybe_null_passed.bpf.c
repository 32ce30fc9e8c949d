/* realistic: a region passed before its NULL check (the parameter may be NULL) */
#include "ho4.h"
struct blk8 { __u8 b[8]; };
__attribute__((noinline)) int first(struct blk8 *b)
{
	if (!b)
		return 0;
	return b->b[0] & 1;
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 8);
	return first((struct blk8 *)p);
}
OPS;
