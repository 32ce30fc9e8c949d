/* the read-only byte of a zero-size region passed to a global function */
#include "ho4.h"
__attribute__((noinline)) int peek(const __u8 *b)
{
	if (!b)
		return 0;
	return *b & 1;
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 0);
	if (!p)
		return IOU_LOOP_STOP;
	return peek(p);
}
OPS;
