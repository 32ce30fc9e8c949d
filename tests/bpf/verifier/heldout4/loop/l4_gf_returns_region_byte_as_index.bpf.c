/* a global function returns a region byte; the caller uses it as an index unchecked */
#include "ho4.h"
struct blk8 { __u8 b[8]; };
__attribute__((noinline)) int get(struct blk8 *b)
{
	if (!b)
		return 0;
	return b->b[0] & 7;
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 8);
	if (!p)
		return IOU_LOOP_STOP;
	p[get((struct blk8 *)p)] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
