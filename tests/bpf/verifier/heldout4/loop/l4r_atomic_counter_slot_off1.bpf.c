/* the counter slot idx & 7 of a region of 7 counters */
#include "ho4.h"
STEP
{
	__u64 *n = (__u64 *)bpf_io_uring_get_region(ring, IOU_REGION_MEM, 7 * 8);
	if (!n)
		return IOU_LOOP_STOP;
	__sync_fetch_and_add(&n[lp->cq_wait_idx & 7], 1);
	return IOU_LOOP_CONTINUE;
}
OPS;
