/* realistic: bpf_iter_num over [0, 16) indexes a 16-byte region */
#include "ho4.h"
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 16);
	struct bpf_iter_num it;
	int *v, s = 0;
	if (!p)
		return IOU_LOOP_STOP;
	bpf_iter_num_new(&it, 0, 16);
	while ((v = bpf_iter_num_next(&it))) {
		if (*v < 0 || *v >= 16)
			break;
		s += p[*v];
	}
	bpf_iter_num_destroy(&it);
	return s & 1;
}
OPS;
