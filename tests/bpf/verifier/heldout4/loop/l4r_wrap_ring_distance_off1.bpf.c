/* the distance checked <= 8 */
#include "ho4.h"
STEP
{
	__u32 *h = (__u32 *)bpf_io_uring_get_region(ring, IOU_REGION_CQ, 64);
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 8);
	__u32 d;
	if (!h || !p)
		return IOU_LOOP_STOP;
	d = h[1] - h[0];
	if (d > 8)
		return IOU_LOOP_STOP;
	p[d] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
