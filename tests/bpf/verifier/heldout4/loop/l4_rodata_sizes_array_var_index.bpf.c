/* the size is a .rodata array element at a variable index: not a constant */
#include "ho4.h"
const volatile __u32 sizes[4] = { 8, 16, 24, 32 };
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, sizes[lp->cq_wait_idx & 3]);
	if (!p)
		return IOU_LOOP_STOP;
	p[0] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
