/* a global function reads through its pointer argument without a NULL check */
#include "ho4.h"
struct pair { __u32 a, b; };
__attribute__((noinline)) int sum(struct pair *q)
{
	return q->a + q->b;
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 8);
	if (!p)
		return IOU_LOOP_STOP;
	return sum((struct pair *)p) & 1;
}
OPS;
