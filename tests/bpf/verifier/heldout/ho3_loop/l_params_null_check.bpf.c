/* realistic: a defensive NULL check of the trusted params pointer */
#include "ho3.h"
STEP
{
	if (!lp)
		return IOU_LOOP_STOP;
	return lp->cq_wait_idx & 1;
}
OPS;
