/* realistic: the same with a static function: its result is known to the caller */
#include "ho4.h"
static __attribute__((noinline)) int slot(__u32 x)
{
	return x & 7;
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 8);
	if (!p)
		return IOU_LOOP_STOP;
	p[slot(lp->cq_wait_idx)] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
