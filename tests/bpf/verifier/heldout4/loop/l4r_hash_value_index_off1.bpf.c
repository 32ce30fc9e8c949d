/* the slot from the hash map value checked against 64 instead of 63 */
#include "ho4.h"
STEP
{
	int k = 0;
	__u64 *slot = bpf_map_lookup_elem(&hmap, &k);
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	if (!slot || !p || *slot > 64)
		return IOU_LOOP_STOP;
	p[*slot] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
