/* realistic: bpf_loop with a run-time count; the callback bounds its own index */
#include "ho3.h"
static int bump(__u32 idx, void *data)
{
	*(__u64 *)data += tbl[idx & 15];
	return idx >= 64;
}
STEP
{
	__u64 sum = 0;
	bpf_loop(lp->cq_wait_idx, bump, &sum, 0);
	return sum & 1;
}
OPS;
