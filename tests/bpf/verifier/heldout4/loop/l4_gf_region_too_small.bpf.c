/* a 32-byte region passed as a pointer to a 64-byte struct */
#include "ho4.h"
struct blk64 { __u8 b[64]; };
__attribute__((noinline)) int put(struct blk64 *b)
{
	if (!b)
		return 0;
	b->b[0] = 1;
	return 0;
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 32);
	if (!p)
		return IOU_LOOP_STOP;
	return put((struct blk64 *)p);
}
OPS;
