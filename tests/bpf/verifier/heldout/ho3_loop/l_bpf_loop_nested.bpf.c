/* bpf_loop inside a bpf_loop callback */
#include "ho3.h"
static int inner(__u32 idx, void *data)
{
	*(__u64 *)data += 1;
	return 0;
}
static int outer(__u32 idx, void *data)
{
	bpf_loop(4, inner, data, 0);
	return 0;
}
STEP
{
	__u64 n = 0;
	bpf_loop(4, outer, &n, 0);
	return n & 1;
}
OPS;
