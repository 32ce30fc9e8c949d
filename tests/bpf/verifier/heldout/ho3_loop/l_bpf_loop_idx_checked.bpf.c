/* realistic: the callback checks its index before using it */
#include "ho3.h"
static int sum16(__u32 idx, void *data)
{
	if (idx >= 16)
		return 1;
	*(__u64 *)data += tbl[idx];
	return 0;
}
STEP
{
	__u64 s = 0;
	bpf_loop(32, sum16, &s, 0);
	return s & 1;
}
OPS;
