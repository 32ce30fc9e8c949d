/* realistic: a zero-size region is one read-only byte; read it */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 0);
	if (!p)
		return IOU_LOOP_STOP;
	return p[0] & 1;
}
OPS;
