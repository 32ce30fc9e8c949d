/* realistic: a packed struct on the stack (the compiler splits the unaligned field) */
#include "ho4.h"
struct __attribute__((packed)) rec { __u8 tag; __u32 v; __u8 pad[3]; };
STEP
{
	struct rec r;
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, sizeof(r));
	r.tag = 1;
	r.v = lp->cq_wait_idx;
	r.pad[0] = r.pad[1] = r.pad[2] = 0;
	if (!p)
		return IOU_LOOP_STOP;
	__builtin_memcpy(p, &r, sizeof(r));
	return IOU_LOOP_CONTINUE;
}
OPS;
