/* realistic: a global function given the loop parameters writes cq_wait_idx */
#include "ho4.h"
__attribute__((noinline)) int set_wait(struct iou_loop_params *q, __u32 v)
{
	if (!q)
		return 0;
	q->cq_wait_idx = v;
	return 0;
}
STEP
{
	return set_wait(lp, lp->cq_wait_idx + 1);
}
OPS;
