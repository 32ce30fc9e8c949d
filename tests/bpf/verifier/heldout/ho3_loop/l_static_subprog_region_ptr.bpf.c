/* realistic: a static function writes through a region pointer its caller checked */
#include "ho3.h"
static __attribute__((noinline)) void put(__u8 *p, __u32 i)
{
	p[i & 63] = 1;
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	if (!p)
		return IOU_LOOP_STOP;
	put(p, lp->cq_wait_idx);
	return IOU_LOOP_CONTINUE;
}
OPS;
