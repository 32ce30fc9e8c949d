/* a .rodata offset one u64 too far into the region */
#include "ho4.h"
const volatile __u32 rsz = 64;
const volatile __u32 hdr = 60;
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, rsz);
	if (!p)
		return IOU_LOOP_STOP;
	*(__u64 *)(p + hdr) = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
