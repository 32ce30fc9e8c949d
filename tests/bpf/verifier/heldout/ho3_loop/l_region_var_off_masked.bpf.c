/* realistic: a byte of the memory region at a masked variable offset */
#include "ho3.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	if (!p)
		return IOU_LOOP_STOP;
	p[lp->cq_wait_idx & 63] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
