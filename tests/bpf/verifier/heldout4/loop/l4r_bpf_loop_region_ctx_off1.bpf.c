/* the callback indexes with idx & 31 on a 16-byte region */
#include "ho4.h"
struct lctx { __u8 *p; __u32 s; };
static int cb(__u32 i, void *d)
{
	struct lctx *x = d;
	if (!x->p)
		return 1;
	x->s += x->p[i & 31];
	return 0;
}
STEP
{
	struct lctx x = { .p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 16), .s = 0 };
	bpf_loop(16, cb, &x, 0);
	return x.s & 1;
}
OPS;
