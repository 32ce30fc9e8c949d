/* a can_loop loop stepping a cursor by 3, masked: realistic ring walk */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 16);
	__u32 cur = lp->cq_wait_idx, s = 0;
	if (!p)
		return IOU_LOOP_STOP;
	for (int k = 0; k < 40 && can_loop; k++) {
		s += p[cur & 15];
		cur += 3;
	}
	return s & 1;
}
OPS;
