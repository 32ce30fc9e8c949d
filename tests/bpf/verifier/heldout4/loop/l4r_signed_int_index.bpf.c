/* realistic: a signed int index checked for both ends */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 32);
	int i = (int)lp->cq_wait_idx - 16;
	if (!p || i < 0 || i > 31)
		return IOU_LOOP_STOP;
	p[i] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
