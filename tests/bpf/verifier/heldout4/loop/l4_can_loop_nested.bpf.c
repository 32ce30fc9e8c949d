/* realistic: nested can_loop loops over a 8x8 table in the region */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	__u32 s = 0;
	if (!p)
		return IOU_LOOP_STOP;
	for (__u32 r = 0; r < 8 && can_loop; r++)
		for (__u32 c = 0; c < 8 && can_loop; c++)
			s += p[r * 8 + c];
	return s & 1;
}
OPS;
