/* the same index into a 63-byte region */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 63);
	__u16 be = (__u16)((lp->cq_wait_idx & 0x3f) << 8);
	if (!p)
		return IOU_LOOP_STOP;
	p[__builtin_bswap16(be)] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
