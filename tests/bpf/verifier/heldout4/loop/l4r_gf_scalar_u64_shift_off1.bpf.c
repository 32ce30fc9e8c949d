/* the shift leaves 65 values for 64 bytes */
#include "ho4.h"
struct blk64 { __u8 b[64]; };
__attribute__((noinline)) int bump(struct blk64 *b, __u64 h)
{
	if (!b)
		return 0;
	b->b[h >> 57] += 1;
	return 0;
}
STEP
{
	__u64 h = lp->cq_wait_idx;
	return bump((struct blk64 *)bpf_io_uring_get_region(ring, IOU_REGION_MEM, 64), h * 0x9e3779b97f4a7c15ull);
}
OPS;
