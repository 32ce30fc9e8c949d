/* uringbpf: the Linux 7.1 io_uring loop struct_ops ("io_uring_bpf_ops", io_uring/bpf-ops.h).
 * The kernel adds no UAPI header for it (programs take the types from vmlinux BTF); liburing's
 * tests declare them in test/bpf_defs.h. This header provides exactly those names. */
#ifndef __UBPF_IO_URING_BPF_OPS_H
#define __UBPF_IO_URING_BPF_OPS_H

#include <linux/types.h>
#ifndef __VMLINUX_H__
#include <linux/bpf.h>	/* map types etc.; a vmlinux.h brings its own */
#endif
#include <bpf/bpf_helpers.h>
#include <liburing/io_uring.h>

#ifndef __UBPF_SIZE_T_DEFINED
#define __UBPF_SIZE_T_DEFINED
typedef __SIZE_TYPE__ __ubpf_size_t;
#endif

/* The context loop_step and the kfuncs get: 7.2's BTF names it struct iou_ctx (size 0);
 * 7.1's postings and liburing's test/bpf_defs.h say struct io_ring_ctx, which stays an
 * alias so those programs build unchanged.  A vmlinux.h (uringbpf vmlinux --design loop)
 * already defines struct iou_ctx. */
#ifndef __VMLINUX_H__
struct iou_ctx {};
#endif
#define io_ring_ctx iou_ctx

struct iou_loop_params {
	/* CQE index to wait for (a hint: wake-ups may come early) */
	__u32 cq_wait_idx;
};

enum {
	IOU_REGION_MEM = 0,	/* parameter/memory region registered by the user */
	IOU_REGION_CQ = 1,	/* SQ/CQ headers, SQ array and CQEs */
	IOU_REGION_SQ = 2,	/* the SQE array */
};

enum {
	IOU_LOOP_CONTINUE = 0,
	IOU_LOOP_STOP = 1,
};

struct io_uring_bpf_ops {
	int (*loop_step)(struct iou_ctx *, struct iou_loop_params *);
	__u32 ring_fd;
	void *priv;	/* the kernel's 7.1 layout; programs leave it NULL */
};

extern __u8 *bpf_io_uring_get_region(struct iou_ctx *ctx, __u32 region_id,
				     const __ubpf_size_t rdwr_buf_size) __weak __ksym;
extern int bpf_io_uring_submit_sqes(struct iou_ctx *ctx, __u32 nr) __weak __ksym;

#endif
