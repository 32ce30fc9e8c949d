/* a global function writes p[i & 63] through a __u8 * parameter (1 byte by its type) */
#include "ho3.h"
__attribute__((noinline)) int put(__u8 *p, __u32 i)
{
	if (!p)
		return 0;
	p[i & 63] = 1;
	return 0;
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	if (!p)
		return IOU_LOOP_STOP;
	return put(p, lp->cq_wait_idx);
}
OPS;
