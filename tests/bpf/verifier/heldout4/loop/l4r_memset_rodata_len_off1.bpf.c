/* memset of the .rodata size plus one */
#include "ho4.h"
const volatile __u32 rsz = 32;
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, rsz);
	if (!p)
		return IOU_LOOP_STOP;
	__builtin_memset(p, 0, 16);
	p[rsz] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
