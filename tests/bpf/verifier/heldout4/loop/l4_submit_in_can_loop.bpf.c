/* realistic: submit SQEs in a can_loop loop until the params say stop */
#include "ho4.h"
STEP
{
	__u32 n = lp->cq_wait_idx & 7;
	int done = 0;
	for (__u32 i = 0; i < n && can_loop; i++)
		done += bpf_io_uring_submit_sqes(ring, 1);
	return done > 0 ? IOU_LOOP_CONTINUE : IOU_LOOP_STOP;
}
OPS;
