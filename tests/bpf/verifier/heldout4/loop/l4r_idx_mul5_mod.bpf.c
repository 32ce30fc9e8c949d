/* realistic: (idx * 5) % 64 as u32 */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	if (!p)
		return IOU_LOOP_STOP;
	p[(lp->cq_wait_idx * 5) % 64u] ^= 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
