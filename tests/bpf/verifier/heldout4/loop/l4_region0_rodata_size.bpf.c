/* realistic: the size comes from .rodata and is 0: one read-only byte */
#include "ho4.h"
const volatile __u32 rsz0 = 0;
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, rsz0);
	if (!p)
		return IOU_LOOP_STOP;
	return p[0] & 1;
}
OPS;
