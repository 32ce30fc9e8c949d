/* the same halved index one byte too far */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 32);
	int i = (int)(lp->cq_wait_idx & 63);
	if (!p)
		return IOU_LOOP_STOP;
	p[i / 2 + 1] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
