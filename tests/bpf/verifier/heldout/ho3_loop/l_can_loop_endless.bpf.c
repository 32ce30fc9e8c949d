/* realistic: wait loop on the CQ region bounded only by can_loop */
#include "ho3.h"
STEP
{
	volatile __u32 *cq = (volatile __u32 *)bpf_io_uring_get_region(ring, IOU_REGION_CQ, 64);
	if (!cq)
		return IOU_LOOP_STOP;
	while (can_loop)
		if (cq[1] != cq[0])
			break;
	return IOU_LOOP_CONTINUE;
}
OPS;
