/* realistic: the caller checks a global function's result before indexing */
#include "ho4.h"
__attribute__((noinline)) int slot(__u32 x)
{
	return x & 7;
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 8);
	unsigned int s;
	if (!p)
		return IOU_LOOP_STOP;
	s = slot(lp->cq_wait_idx);
	if (s < 8)
		p[s] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
