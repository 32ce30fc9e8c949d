/* the callback writes 8 bytes past the 8-byte context it was given */
#include "ho3.h"
static int over(__u32 idx, void *data)
{
	((volatile __u64 *)data)[1] = idx;
	return 0;
}
STEP
{
	__u64 n = 0;
	bpf_loop(4, over, &n, 0);
	return n & 1;
}
OPS;
