/* realistic: a loop bounded by a .rodata count over a region of that size */
#include "ho4.h"
const volatile __u32 n = 24;
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, n);
	__u32 s = 0;
	if (!p)
		return IOU_LOOP_STOP;
	for (__u32 i = 0; i < n; i++)
		s += p[i];
	return s & 1;
}
OPS;
