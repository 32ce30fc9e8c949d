/* realistic: a stack buffer written then read at a masked index */
#include "ho4.h"
STEP
{
	__u8 buf[32];
	for (int i = 0; i < 32; i++)
		buf[i] = i;
	return buf[lp->cq_wait_idx & 31] & 1;
}
OPS;
