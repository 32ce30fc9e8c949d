/* uringbpf: Ming Lei's IORING_OP_BPF ("bpf_ext", v3 2026, not merged): per-ring struct_ops
 * "uring_bpf_ops" whose callbacks implement an io_uring operation. */
#ifndef __UBPF_IO_URING_BPF_EXT_H
#define __UBPF_IO_URING_BPF_EXT_H
#include <linux/types.h>
#ifndef __VMLINUX_H__
#include <linux/bpf.h>	/* map types etc.; a vmlinux.h brings its own */
#endif
#include <bpf/bpf_helpers.h>
#include <liburing/io_uring.h>

#define IORING_OP_BPF (IORING_OP_URING_CMD128 + 1)
#define IORING_SETUP_BPF_EXT (1U << 21)
#define IORING_FEAT_BPF (1U << 18)
#define IORING_BPF_OP_SHIFT 24
#define IO_RING_MAX_BPF_OPS 16

enum io_bpf_buf_type {
	IO_BPF_BUF_USER = 0,
	IO_BPF_BUF_FIXED = 1,
	IO_BPF_BUF_VEC = 2,
	IO_BPF_BUF_KFIXED = 3,
	IO_BPF_BUF_REG_VEC = 4,
};

struct io_bpf_buf_desc {
	__u8	type;
	__u8	reserved;
	__u16	buf_index;
	__u32	len;
	__u64	addr;
};

/* The request's 64-byte command area, v3's final layout ([PATCH v3 08/12] added
 * issue_flags and lock_depth): pdu (36 bytes from offset 28) is the only part a program may
 * write; it keeps per-request state from prep_fn to cleanup_fn. (v2: pdu at 20, 44 bytes.) */
#define URING_BPF_PDU_SIZE 36
struct uring_bpf_data {
	void *req_data;
	const struct uring_bpf_ops *ops;
	__u32 opf;
	__u32 issue_flags;
	__u32 lock_depth;
	__u8 pdu[];
};

/* SQE helpers (userspace-style, also usable from BPF for reading the SQE in prep_fn) */
#define IORING_BPF_OP_ID(opf) ((opf) >> IORING_BPF_OP_SHIFT)
#define IORING_BPF_PROG_FLAGS(opf) ((opf) & ((1U << IORING_BPF_OP_SHIFT) - 1))

struct uring_bpf_ops {
	unsigned short id;
	int ring_fd;
	int (*prep_fn)(struct uring_bpf_data *data, const struct io_uring_sqe *sqe);
	int (*issue_fn)(struct uring_bpf_data *data);
	void (*fail_fn)(struct uring_bpf_data *data);
	void (*cleanup_fn)(struct uring_bpf_data *data);
};

struct bpf_iter_uring_buf {
	__u64 __opaque[12];	/* v3: 96 bytes */
} __attribute__((aligned(8)));

#define ITER_DEST 0
#define ITER_SOURCE 1

extern void uring_bpf_set_result(struct uring_bpf_data *data, int res) __ksym;
extern int bpf_iter_uring_buf_new(struct bpf_iter_uring_buf *iter, struct uring_bpf_data *data,
				  struct io_bpf_buf_desc *desc, int direction) __weak __ksym;
extern int *bpf_iter_uring_buf_next(struct bpf_iter_uring_buf *iter) __weak __ksym;
extern void bpf_iter_uring_buf_destroy(struct bpf_iter_uring_buf *iter) __weak __ksym;
extern int bpf_uring_buf_dynptr(struct bpf_iter_uring_buf *it__iter, struct bpf_dynptr *ptr__uninit) __weak __ksym;
extern int bpf_uring_buf_dynptr_rdwr(struct bpf_iter_uring_buf *it__iter, struct bpf_dynptr *ptr__uninit) __weak __ksym;
/* v2: copy min(dst len, src len) bytes between two descriptors; bytes copied or -errno */
extern __s64 uring_bpf_memcpy(const struct uring_bpf_data *data, struct io_bpf_buf_desc *dst,
			      struct io_bpf_buf_desc *src) __weak __ksym;

/* generic dynptr kfuncs (helpers 201..203 are in bpf_helper_defs.h) */
extern void *bpf_dynptr_slice(const struct bpf_dynptr *p, __u32 offset, void *buffer__opt,
			      __u32 buffer__szk) __weak __ksym;
extern void *bpf_dynptr_slice_rdwr(const struct bpf_dynptr *p, __u32 offset, void *buffer__opt,
				   __u32 buffer__szk) __weak __ksym;
extern __u32 bpf_dynptr_size(const struct bpf_dynptr *p) __weak __ksym;
#endif
