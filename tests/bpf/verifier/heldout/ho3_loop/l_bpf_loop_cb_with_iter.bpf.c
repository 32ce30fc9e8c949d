/* realistic: a bpf_for loop inside a bpf_loop callback */
#include "ho3.h"
static int rows(__u32 idx, void *data)
{
	int j;
	bpf_for(j, 0, 4)
		*(__u64 *)data += tbl[(idx & 3) * 4 + j];
	return 0;
}
STEP
{
	__u64 s = 0;
	bpf_loop(4, rows, &s, 0);
	return s & 1;
}
OPS;
