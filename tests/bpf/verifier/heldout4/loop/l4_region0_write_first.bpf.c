/* a zero-size region written: the byte is read-only */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 0);
	if (!p)
		return IOU_LOOP_STOP;
	p[0] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
