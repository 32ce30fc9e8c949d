/* a 2-byte store at offset (idx & 63) of a 64-byte region: one byte past the end */
#include "ho3.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	if (!p)
		return IOU_LOOP_STOP;
	*(__u16 *)(p + (lp->cq_wait_idx & 63)) = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
