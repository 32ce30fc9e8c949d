/* realistic: a 256-byte stack buffer zeroed and read back at a checked index */
#include "ho3.h"
STEP
{
	volatile __u8 buf[256];
	for (int i = 0; i < 256; i += 8)
		*(volatile __u64 *)&buf[i] = 0;
	return buf[lp->cq_wait_idx & 255] & 1;
}
OPS;
