/* realistic: index masked with a .rodata size minus one */
#include "ho4.h"
const volatile __u32 rsz = 64;
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, rsz);
	if (!p)
		return IOU_LOOP_STOP;
	p[lp->cq_wait_idx & (rsz - 1)] += 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
