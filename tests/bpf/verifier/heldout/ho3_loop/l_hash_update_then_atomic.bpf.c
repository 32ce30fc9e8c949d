/* realistic: count in a hash map with an atomic add */
#include "ho3.h"
STEP
{
	int k = lp->cq_wait_idx & 3;
	__u64 one = 1, *v = bpf_map_lookup_elem(&hmap, &k);
	if (!v) {
		bpf_map_update_elem(&hmap, &k, &one, BPF_ANY);
		return IOU_LOOP_CONTINUE;
	}
	__sync_fetch_and_add(v, 1);
	return IOU_LOOP_CONTINUE;
}
OPS;
