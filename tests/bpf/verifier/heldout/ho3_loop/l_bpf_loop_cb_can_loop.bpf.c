/* realistic: a can_loop loop inside a bpf_loop callback */
#include "ho3.h"
static int scan(__u32 idx, void *data)
{
	unsigned int i = 0;
	while (can_loop) {
		if (i >= 16)
			break;
		*(__u64 *)data += tbl[i++];
	}
	return 0;
}
STEP
{
	__u64 s = 0;
	bpf_loop(2, scan, &s, 0);
	return s & 1;
}
OPS;
