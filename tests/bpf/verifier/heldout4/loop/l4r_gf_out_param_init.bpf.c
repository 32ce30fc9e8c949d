/* realistic: a global function returns a value through an initialised out-parameter */
#include "ho4.h"
__attribute__((noinline)) int get_slot(struct iou_loop_params *q, __u32 *out)
{
	if (!q || !out)
		return -1;
	*out = q->cq_wait_idx & 63;
	return 0;
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	__u32 s = 0;
	asm volatile("" : : "r"(&s) : "memory");
	if (!p || get_slot(lp, &s))
		return IOU_LOOP_STOP;
	if (s < 64)
		p[s] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
