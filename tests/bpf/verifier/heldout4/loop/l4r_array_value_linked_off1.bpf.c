/* the byte checked against 56 for a +8 index into 64 bytes */
#include "ho4.h"
STEP
{
	int k = 1;
	struct val16 *v = bpf_map_lookup_elem(&arr, &k);
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64);
	__u64 b, j;
	if (!v || !p)
		return IOU_LOOP_STOP;
	b = v->b[3];
	j = b + 8;
	if (b > 56)
		return IOU_LOOP_STOP;
	p[j] = 1;
	return IOU_LOOP_CONTINUE;
}
OPS;
