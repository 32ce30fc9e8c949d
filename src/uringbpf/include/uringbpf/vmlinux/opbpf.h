/* opbpf: Ming Lei's IORING_OP_BPF ("bpf_ext"), never merged. v3 [PATCH v3 0/12] 2026-03-25
 * (Message-ID 20260324163753.1900977-1-ming.lei@redhat.com); v2 [PATCH v2 0/13] 2026-01-06.
 * v3's patch 08/12 adds issue_flags/lock_depth to struct uring_bpf_data, which moves pdu
 * from byte 20 (44 bytes, v2) to byte 28 (36 bytes); uringbpf runs this final layout.
 * uring_bpf_memcpy is v2's copy kfunc, kept beside v3's iterator. */
enum {
	IORING_SETUP_BPF_EXT_SHIFT = 21,
	IORING_BPF_OP_SHIFT = 24,
	IO_RING_MAX_BPF_OPS = 16,
};

enum io_bpf_buf_type {
	IO_BPF_BUF_USER = 0,
	IO_BPF_BUF_FIXED = 1,
	IO_BPF_BUF_VEC = 2,
	IO_BPF_BUF_KFIXED = 3,
	IO_BPF_BUF_REG_VEC = 4,
};

struct io_bpf_buf_desc {
	__u8 type;
	__u8 reserved;
	__u16 buf_index;
	__u32 len;
	__u64 addr;
};

struct uring_bpf_ops;

struct uring_bpf_data {
	void *req_data;
	const struct uring_bpf_ops *ops;
	u32 opf;
	u32 issue_flags;
	u32 lock_depth;
	u8 pdu[];
};

typedef int (*uring_io_prep_t)(struct uring_bpf_data *, const struct io_uring_sqe *);
typedef int (*uring_io_issue_t)(struct uring_bpf_data *);
typedef void (*uring_io_fail_t)(struct uring_bpf_data *);
typedef void (*uring_io_cleanup_t)(struct uring_bpf_data *);

struct uring_bpf_ops {
	short unsigned int id;
	int ring_fd;
	uring_io_prep_t prep_fn;
	uring_io_issue_t issue_fn;
	uring_io_fail_t fail_fn;
	uring_io_cleanup_t cleanup_fn;
};

struct bpf_iter_uring_buf {
	__u64 __opaque[12];
};

enum {
	ITER_DEST = 0,
	ITER_SOURCE = 1,
};

#ifdef UBPF_VMLINUX_KFUNCS
extern void uring_bpf_set_result(struct uring_bpf_data *data, int res) __attribute__((weak)) __attribute__((section(".ksyms")));
extern __s64 uring_bpf_memcpy(const struct uring_bpf_data *data, struct io_bpf_buf_desc *dst, struct io_bpf_buf_desc *src) __attribute__((weak)) __attribute__((section(".ksyms")));
extern int bpf_iter_uring_buf_new(struct bpf_iter_uring_buf *iter, struct uring_bpf_data *data, struct io_bpf_buf_desc *desc, int direction) __attribute__((weak)) __attribute__((section(".ksyms")));
extern int *bpf_iter_uring_buf_next(struct bpf_iter_uring_buf *iter) __attribute__((weak)) __attribute__((section(".ksyms")));
extern void bpf_iter_uring_buf_destroy(struct bpf_iter_uring_buf *iter) __attribute__((weak)) __attribute__((section(".ksyms")));
extern int bpf_uring_buf_dynptr(struct bpf_iter_uring_buf *it__iter, struct bpf_dynptr *ptr__uninit) __attribute__((weak)) __attribute__((section(".ksyms")));
extern int bpf_uring_buf_dynptr_rdwr(struct bpf_iter_uring_buf *it__iter, struct bpf_dynptr *ptr__uninit) __attribute__((weak)) __attribute__((section(".ksyms")));
#endif
