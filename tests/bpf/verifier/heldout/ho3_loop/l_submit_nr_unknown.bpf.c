/* realistic: submit as many SQEs as the parameter says */
#include "ho3.h"
STEP
{
	bpf_io_uring_submit_sqes(ring, lp->cq_wait_idx);
	return IOU_LOOP_STOP;
}
OPS;
