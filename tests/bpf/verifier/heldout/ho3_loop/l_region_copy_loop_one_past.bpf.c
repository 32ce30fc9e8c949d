/* the copy loop runs to i <= 16 on a 16-byte source: one byte past the end */
#include "ho3.h"
STEP
{
	__u8 *dst = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	__u8 *src = bpf_io_uring_get_region(ring, IOU_REGION_CQ, 16);
	if (!dst || !src)
		return IOU_LOOP_STOP;
	for (int i = 0; i <= 16; i++)
		dst[i] = src[i];
	return IOU_LOOP_CONTINUE;
}
OPS;
