/* realistic: idx % 60 plus 3 is [3, 62] */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 63);
	if (!p)
		return IOU_LOOP_STOP;
	p[lp->cq_wait_idx % 60u + 3] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
