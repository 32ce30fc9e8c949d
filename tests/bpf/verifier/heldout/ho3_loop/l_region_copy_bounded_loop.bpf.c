/* realistic: copy the first 16 bytes of the CQ region into the memory region */
#include "ho3.h"
STEP
{
	__u8 *dst = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	__u8 *src = bpf_io_uring_get_region(ring, IOU_REGION_CQ, 16);
	if (!dst || !src)
		return IOU_LOOP_STOP;
	for (int i = 0; i < 16; i++)
		dst[i] = src[i];
	return IOU_LOOP_CONTINUE;
}
OPS;
