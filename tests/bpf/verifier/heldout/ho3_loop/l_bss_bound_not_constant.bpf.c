/* the same bound in .bss is not a constant */
#include "ho3.h"
__u32 limit_bss = 16;
STEP
{
	__u32 i = lp->cq_wait_idx;
	if (i >= limit_bss)
		return IOU_LOOP_STOP;
	return ((volatile unsigned char *)tbl)[i] & 1;
}
OPS;
