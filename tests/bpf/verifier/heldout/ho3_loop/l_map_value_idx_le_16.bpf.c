/* the index check is <= 16 on a 16-byte value: one past */
#include "ho3.h"
STEP
{
	int k = 0;
	struct val16 *v = bpf_map_lookup_elem(&arr, &k);
	__u32 i = lp->cq_wait_idx;
	if (!v || i > 16)
		return IOU_LOOP_STOP;
	((volatile __u8 *)v)[i] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
