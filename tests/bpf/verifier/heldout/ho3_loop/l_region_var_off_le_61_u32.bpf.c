/* as l_region_var_off_le_60_u32 with one more: one byte past the end */
#include "ho3.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	__u32 i = lp->cq_wait_idx;
	if (!p || i > 61)
		return IOU_LOOP_STOP;
	*(__u32 *)(p + i) = 0;
	return IOU_LOOP_CONTINUE;
}
OPS;
