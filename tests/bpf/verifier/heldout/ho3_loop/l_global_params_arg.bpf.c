/* the loop parameters passed to a global function taking a struct iou_loop_params pointer */
#include "ho3.h"
__attribute__((noinline)) int wait_idx(struct iou_loop_params *p)
{
	if (!p)
		return 0;
	return p->cq_wait_idx;
}
STEP
{
	return wait_idx(lp) & 1;
}
OPS;
