/* a global function taking the ring and calling a kfunc with it */
#include "ho3.h"
__attribute__((noinline)) int submit_one(struct iou_ctx *r)
{
	return bpf_io_uring_submit_sqes(r, 1);
}
STEP
{
	return submit_one(ring) > 0;
}
OPS;
