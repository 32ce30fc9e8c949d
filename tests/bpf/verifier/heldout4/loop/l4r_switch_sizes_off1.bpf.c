/* one arm of the switch writes past its size */
#include "ho4.h"
STEP
{
	__u8 *p;
	switch (lp->cq_wait_idx & 3) {
	case 0: p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 8); if (p) p[7] = 1; break;
	case 1: p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 16); if (p) p[16] = 1; break;
	default: p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 32); if (p) p[31] = 1; break;
	}
	return IOU_LOOP_CONTINUE;
}
OPS;
