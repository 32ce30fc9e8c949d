/* realistic: divide by a value that may be zero (BPF defines x/0 = 0) */
#include "ho3.h"
STEP
{
	lp->cq_wait_idx = 1000 / lp->cq_wait_idx;
	return IOU_LOOP_CONTINUE;
}
OPS;
