/* the 16-byte value read from offset 49 of a 64-byte region */
#include "ho3.h"
STEP
{
	int k = 0;
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	if (!p)
		return IOU_LOOP_STOP;
	bpf_map_update_elem(&arr, &k, p + 49, BPF_ANY);
	return IOU_LOOP_CONTINUE;
}
OPS;
