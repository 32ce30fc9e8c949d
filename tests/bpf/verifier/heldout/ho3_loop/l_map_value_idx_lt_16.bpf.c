/* realistic: a checked index into a 16-byte array map value */
#include "ho3.h"
STEP
{
	int k = 0;
	struct val16 *v = bpf_map_lookup_elem(&arr, &k);
	__u32 i = lp->cq_wait_idx;
	if (!v || i >= 16)
		return IOU_LOOP_STOP;
	v->b[i]++;
	return IOU_LOOP_CONTINUE;
}
OPS;
