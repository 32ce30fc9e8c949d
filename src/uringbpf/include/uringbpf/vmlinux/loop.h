/* loop: Linux 7.1's io_uring loop struct_ops (io_uring/bpf-ops.c). The kernel adds no UAPI
 * header; these are the types its BTF has (checked on a 7.2 kernel: the loop_step context
 * is `struct iou_ctx`, of size 0; earlier postings and liburing's test/bpf_defs.h call it
 * `struct io_ring_ctx`, which is kept here opaque too so either spelling builds). */
struct iou_ctx {};

struct io_ring_ctx;

struct iou_loop_params {
	__u32 cq_wait_idx;
};

enum {
	IOU_REGION_MEM = 0,
	IOU_REGION_CQ = 1,
	IOU_REGION_SQ = 2,
};

enum {
	IOU_LOOP_CONTINUE = 0,
	IOU_LOOP_STOP = 1,
};

struct io_uring_bpf_ops {
	int (*loop_step)(struct iou_ctx *, struct iou_loop_params *);
	__u32 ring_fd;
	void *priv;
};

#ifdef UBPF_VMLINUX_KFUNCS
extern __u8 *bpf_io_uring_get_region(struct iou_ctx *loop_ctx, __u32 region_id, const size_t rdwr_buf_size) __attribute__((weak)) __attribute__((section(".ksyms")));
extern int bpf_io_uring_submit_sqes(struct iou_ctx *loop_ctx, u32 nr) __attribute__((weak)) __attribute__((section(".ksyms")));
#endif
