/* realistic: the caller bounds the global function's result before indexing */
#include "ho3.h"
__attribute__((noinline)) int pick(int x) { return x & 15; }
STEP
{
	unsigned int i = pick(lp->cq_wait_idx);
	if (i >= 16)
		return IOU_LOOP_STOP;
	return tbl[i] & 1;
}
OPS;
