/* realistic: can_loop scan of a region up to an index from the params */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	__u32 n = lp->cq_wait_idx, i = 0, s = 0;
	if (!p)
		return IOU_LOOP_STOP;
	while (i < n && can_loop) {
		if (i >= 64)
			break;
		s += p[i];
		i++;
	}
	return s & 1;
}
OPS;
