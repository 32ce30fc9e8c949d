/* the copy reads the source without its NULL check */
#include "ho4.h"
struct blk8 { __u8 b[8]; };
__attribute__((noinline)) int copy8(struct blk8 *d, struct blk8 *s)
{
	if (!d )
		return 0;
	for (int i = 0; i < 8; i++)
		d->b[i] = s->b[i];
	return 1;
}
STEP
{
	__u8 *a = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 8);
	__u8 *b = bpf_io_uring_get_region(ring, IOU_REGION_CQ, 8);
	return copy8((struct blk8 *)a, (struct blk8 *)b) & 1;
}
OPS;
