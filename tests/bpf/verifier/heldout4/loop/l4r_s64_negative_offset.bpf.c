/* realistic: a signed 64-bit delta from the region's middle, checked both ways */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	long d = (long)(int)lp->cq_wait_idx;
	if (!p || d < -32 || d > 31)
		return IOU_LOOP_STOP;
	p[32 + d] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
