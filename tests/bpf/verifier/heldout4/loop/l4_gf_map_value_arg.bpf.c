/* realistic: a map value (maybe NULL) passed to a global function that checks it */
#include "ho4.h"
struct pair { __u32 a, b; };
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, int);
	__type(value, struct pair);
} pairs SEC(".maps");
__attribute__((noinline)) int bump(struct pair *q)
{
	if (!q)
		return 0;
	q->b += q->a;
	return 0;
}
STEP
{
	int k = lp->cq_wait_idx & 1;
	return bump(bpf_map_lookup_elem(&pairs, &k));
}
OPS;
