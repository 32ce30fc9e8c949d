/* realistic: bpf_loop accumulating into a stack struct through its context */
#include "ho3.h"
struct acc { __u64 sum; };
static int add_one(__u32 idx, void *data)
{
	struct acc *a = data;
	a->sum += tbl[idx & 15];
	return 0;
}
STEP
{
	struct acc a = { 0 };
	bpf_loop(16, add_one, &a, 0);
	return a.sum & 1;
}
OPS;
