/* the same SQE index masked with 15 on 8 entries */
#include "ho4.h"
struct sqe { __u8 opcode, flags; __u16 ioprio; __s32 fd; __u64 off, addr; __u32 len, rw_flags;
	     __u64 user_data; __u64 pad[3]; };

STEP
{
	struct sqe *s = (struct sqe *)bpf_io_uring_get_region(ring, IOU_REGION_SQ, 8 * sizeof(struct sqe));
	__u32 t = lp->cq_wait_idx;
	if (!s)
		return IOU_LOOP_STOP;
	s[t & 15].opcode = 0;
	s[t & 15].user_data = t;
	return bpf_io_uring_submit_sqes(ring, 1) > 0 ? IOU_LOOP_CONTINUE : IOU_LOOP_STOP;
}
OPS;
