/* the delta checked s>= -33 from the middle of 64 bytes */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	long d = (long)(int)lp->cq_wait_idx;
	if (!p || d < -33 || d > 31)
		return IOU_LOOP_STOP;
	p[32 + d] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
