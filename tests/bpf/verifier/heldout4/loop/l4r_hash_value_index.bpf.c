/* realistic: a hash map value holds the slot; checked before use */
#include "ho4.h"
STEP
{
	int k = 0;
	__u64 *slot = bpf_map_lookup_elem(&hmap, &k);
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	if (!slot || !p || *slot > 63)
		return IOU_LOOP_STOP;
	p[*slot] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
