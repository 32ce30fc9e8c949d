/* as l_rodata_bound_index with a .rodata bound of 17 */
#include "ho3.h"
const volatile __u32 limit = 17;
STEP
{
	__u32 i = lp->cq_wait_idx;
	if (i >= limit)
		return IOU_LOOP_STOP;
	return ((volatile unsigned char *)tbl)[i] & 1;
}
OPS;
