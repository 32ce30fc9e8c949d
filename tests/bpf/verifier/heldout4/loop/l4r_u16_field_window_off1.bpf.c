/* the window's base checked against 57 */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	__u16 base = (__u16)lp->cq_wait_idx;
	if (!p || base > 57)
		return IOU_LOOP_STOP;
	for (int k = 0; k < 8; k++)
		p[base + k] = 0;
	return IOU_LOOP_CONTINUE;
}
OPS;
