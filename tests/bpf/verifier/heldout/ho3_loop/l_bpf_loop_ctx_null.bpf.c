/* the callback dereferences its context while the caller passed NULL */
#include "ho3.h"
static int peek(__u32 idx, void *data)
{
	__u64 x = *(volatile __u64 *)data;
	(void)x;
	return 0;
}
STEP
{
	bpf_loop(4, peek, (void *)0, 0);
	return IOU_LOOP_CONTINUE;
}
OPS;
