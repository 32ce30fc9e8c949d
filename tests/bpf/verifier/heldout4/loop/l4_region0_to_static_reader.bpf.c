/* the read-only byte passed to a static function that reads it */
#include "ho4.h"
static __attribute__((noinline)) int peek(const __u8 *b)
{
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
