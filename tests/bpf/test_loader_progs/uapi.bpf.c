/* Loader test: the headers a liburing test program includes compile unchanged, and the
 * io_uring UAPI layout matches uringbpf.uring.uapi (offsets exported through .rodata). */
#include <linux/types.h>
#include <linux/errno.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "liburing/io_uring.h"
#include <io_uring/bpf_ops.h>
#include <linux/io_uring/bpf_filter.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 sqe_size = sizeof(struct io_uring_sqe);
const volatile __u32 cqe_size = sizeof(struct io_uring_cqe);
const volatile __u32 params_size = sizeof(struct io_uring_params);
const volatile __u32 off_user_data = offsetof(struct io_uring_sqe, user_data);
const volatile __u32 off_buf_index = offsetof(struct io_uring_sqe, buf_index);
const volatile __u32 off_personality = offsetof(struct io_uring_sqe, personality);
const volatile __u32 off_file_index = offsetof(struct io_uring_sqe, file_index);
const volatile __u32 off_addr3 = offsetof(struct io_uring_sqe, addr3);
const volatile __u32 off_cmd = offsetof(struct io_uring_sqe, cmd);
const volatile __u32 off_cq_off = offsetof(struct io_uring_params, cq_off);
const volatile __u32 op_uring_cmd128 = IORING_OP_URING_CMD128;
const volatile __u32 setup_sq_rewind = IORING_SETUP_SQ_REWIND;
const volatile __u32 reg_bpf_filter = IORING_REGISTER_BPF_FILTER;
const volatile __u32 filter_ctx_size = sizeof(struct io_uring_bpf_ctx);
const volatile __u32 loop_ops_size = sizeof(struct io_uring_bpf_ops);

unsigned reqs_inflight;
int reqs_to_run;

SEC("struct_ops.s/nops_loop_step")
int BPF_PROG(nops_loop_step, struct io_ring_ctx *ring, struct iou_loop_params *ls)
{
	struct io_uring_sqe *sqes;

	sqes = (void *)bpf_io_uring_get_region(ring, IOU_REGION_SQ, 8 * sizeof(struct io_uring_sqe));
	if (!sqes)
		return IOU_LOOP_STOP;
	sqes[0] = (struct io_uring_sqe){};
	sqes[0].opcode = IORING_OP_NOP;
	sqes[0].user_data = bpf_htonl(1);
	if (bpf_io_uring_submit_sqes(ring, 1) != 1)
		return IOU_LOOP_STOP;
	ls->cq_wait_idx = 1;
	return IOU_LOOP_CONTINUE;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops nops_ops = {
	.loop_step = (void *)nops_loop_step,
};
