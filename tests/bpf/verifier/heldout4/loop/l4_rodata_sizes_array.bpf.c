/* realistic: the size is an element of a .rodata array at a constant index */
#include "ho4.h"
const volatile __u32 sizes[3] = { 8, 16, 24 };
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, sizes[2]);
	if (!p)
		return IOU_LOOP_STOP;
	p[23] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
