/* a zero-size region read one byte past its single byte */
#include "ho4.h"
STEP
{
	volatile __u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_CQ, 0);
	if (!p)
		return IOU_LOOP_STOP;
	return p[1] & 1;
}
OPS;
