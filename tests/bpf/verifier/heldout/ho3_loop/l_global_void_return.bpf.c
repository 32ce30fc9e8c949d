/* realistic: a global void function updating a map */
#include "ho3.h"
__attribute__((noinline)) void bump(int k)
{
	__u64 *v = bpf_map_lookup_elem(&hmap, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
}
STEP
{
	bump(lp->cq_wait_idx & 3);
	return IOU_LOOP_CONTINUE;
}
OPS;
