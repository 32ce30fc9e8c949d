/* realistic: a bounded loop over the region's 16 u32 words */
#include "ho4.h"
STEP
{
	__u32 *w = (__u32 *)bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	__u32 x = 0;
	if (!w)
		return IOU_LOOP_STOP;
	for (int i = 0; i < 16; i++)
		x ^= w[i];
	return x & 1;
}
OPS;
