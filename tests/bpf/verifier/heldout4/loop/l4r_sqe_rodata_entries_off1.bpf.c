/* the mask is the .rodata entry count itself, not count - 1 */
#include "ho4.h"
struct sqe { __u8 opcode, flags; __u16 ioprio; __s32 fd; __u64 off, addr; __u32 len, rw_flags;
	     __u64 user_data; __u64 pad[3]; };

const volatile __u32 entries = 8;
STEP
{
	struct sqe *s = (struct sqe *)bpf_io_uring_get_region(ring, IOU_REGION_SQ, entries * sizeof(struct sqe));
	__u32 t = lp->cq_wait_idx;
	if (!s)
		return IOU_LOOP_STOP;
	s[t & entries].len = 4096;
	return IOU_LOOP_CONTINUE;
}
OPS;
