/* the callback index used unchecked as a table index */
#include "ho3.h"
static int touch(__u32 idx, void *data)
{
	*(__u64 *)data += ((volatile unsigned char *)tbl)[idx];
	return 0;
}
STEP
{
	__u64 sum = 0;
	bpf_loop(16, touch, &sum, 0);
	return sum & 1;
}
OPS;
