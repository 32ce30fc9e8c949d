/* region size from .data (writable, not frozen): not a constant */
#include "ho4.h"
__u32 dsz = 32;
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, dsz);
	if (!p)
		return IOU_LOOP_STOP;
	p[0] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
