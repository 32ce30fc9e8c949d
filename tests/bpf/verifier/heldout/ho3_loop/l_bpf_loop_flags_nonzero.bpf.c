/* bpf_loop called with flags 1 (only 0 is defined) */
#include "ho3.h"
static int nop(__u32 idx, void *data)
{
	return 0;
}
STEP
{
	bpf_loop(4, nop, (void *)0, 1);
	return IOU_LOOP_CONTINUE;
}
OPS;
