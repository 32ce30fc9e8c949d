/* realistic: a const volatile bound from .rodata (frozen at load) checks the index */
#include "ho3.h"
const volatile __u32 limit = 16;
STEP
{
	__u32 i = lp->cq_wait_idx;
	if (i >= limit)
		return IOU_LOOP_STOP;
	return tbl[i] & 1;
}
OPS;
