/* a signed 16-bit index checked against 64 */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	short i = (short)lp->cq_wait_idx;
	if (!p || i < 0 || i > 64)
		return IOU_LOOP_STOP;
	p[i] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
