/* the same with idx & 15 (16 values on 8 bytes) */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 8);
	__u32 i = lp->cq_wait_idx;
	if (!p)
		return IOU_LOOP_STOP;
	p[((i >> 3) & 7) ^ (i & 15)] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
