/* a bpf_loop callback returns 2 (callbacks must return 0 or 1) */
#include "ho3.h"
static int two(__u32 idx, void *data)
{
	return 2;
}
STEP
{
	bpf_loop(4, two, (void *)0, 0);
	return IOU_LOOP_CONTINUE;
}
OPS;
