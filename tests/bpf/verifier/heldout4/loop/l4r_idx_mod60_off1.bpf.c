/* idx % 60 plus 4 is [4, 63] on 63 bytes */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 63);
	if (!p)
		return IOU_LOOP_STOP;
	p[lp->cq_wait_idx % 60u + 4] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
