/* realistic: the key of an array lookup is a variable; the value needs the NULL check anyway */
#include "ho3.h"
STEP
{
	int k = lp->cq_wait_idx & 3;
	struct val16 *v = bpf_map_lookup_elem(&arr, &k);
	if (!v)
		return IOU_LOOP_STOP;
	return v->b[15] & 1;
}
OPS;
