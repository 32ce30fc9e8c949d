/* realistic: set the next CQ index to wait for */
#include "ho3.h"
STEP
{
	lp->cq_wait_idx += 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
