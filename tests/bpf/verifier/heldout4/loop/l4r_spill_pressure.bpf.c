/* realistic: many live values (spills under register pressure) then a checked index */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	__u32 a = lp->cq_wait_idx, b = a * 3, c = a ^ 0x55, d = a >> 2, e = a + 7, f = b - c;
	if (!p)
		return IOU_LOOP_STOP;
	bpf_io_uring_submit_sqes(ring, 0);
	__u32 i = (a + b + c + d + e + f) & 127;
	if (i >= 64)
		return IOU_LOOP_STOP;
	p[i] = (__u8)(a ^ b ^ c ^ d ^ e ^ f);
	return IOU_LOOP_CONTINUE;
}
OPS;
