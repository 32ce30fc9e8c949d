/* a 2-byte region passed as a 4-byte map key */
#include "ho3.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 2);
	if (!p)
		return IOU_LOOP_STOP;
	__u64 *v = bpf_map_lookup_elem(&hmap, p);
	return v ? 1 : 0;
}
OPS;
