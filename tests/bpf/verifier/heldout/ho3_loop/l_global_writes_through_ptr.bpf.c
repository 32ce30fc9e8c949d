/* realistic: a global function fills a caller's stack buffer */
#include "ho3.h"
__attribute__((noinline)) int fill(__u64 *out)
{
	if (!out)
		return -1;
	*out = 42;
	return 0;
}
STEP
{
	__u64 v;
	if (fill(&v))
		return IOU_LOOP_STOP;
	return v & 1;
}
OPS;
