/* the same loop over 17 words of a 64-byte region */
#include "ho4.h"
STEP
{
	__u32 *w = (__u32 *)bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	__u32 x = 0;
	if (!w)
		return IOU_LOOP_STOP;
	for (int i = 0; i < 17; i++)
		x ^= w[i];
	return x & 1;
}
OPS;
