/* the loop reads one CQE past the region */
#include "ho4.h"
struct cqe { __u64 user_data; __s32 res; __u32 flags; };
STEP
{
	struct cqe *c = (struct cqe *)bpf_io_uring_get_region(ring, IOU_REGION_CQ, 8 * sizeof(struct cqe));
	int bad = 0;
	if (!c)
		return IOU_LOOP_STOP;
	for (int i = 0; i < 9; i++)
		bad += c[i].res < 0;
	return bad ? IOU_LOOP_STOP : IOU_LOOP_CONTINUE;
}
OPS;
