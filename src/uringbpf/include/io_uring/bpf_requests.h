/* uringbpf: Pavel Begunkov's 2021 "io_uring BPF requests" RFC v2 API (never merged).
 *
 * Programs are SEC("iouring/...") or, when they call the sleepable-only helpers
 * (iouring_queue_sqe, bpf_copy_to_user, bpf_copy_from_user), SEC("iouring.s/..."), with
 * `int prog(struct io_uring_bpf_ctx *ctx)` returning 0.  The RFC named its context
 * io_uring_bpf_ctx, which Linux 7.0 later reused for the cBPF filter context, so this
 * header is separate from <linux/io_uring/bpf_filter.h>: include only one of the two.
 *
 * Helper names: the RFC's examples declared `iouring_queue_sqe`, `iouring_emit_cqe`,
 * `iouring_reap_cqe` and `bpf_copy_to_user` themselves; we declare them here under the
 * same names (and with a bpf_ prefix).  C that declares them itself should define
 * UBPF_RFC_OWN_HELPERS before including this header.
 *
 * Runs on uringbpf's emulation (src/uringbpf/designs/requests.py, docs/designs/requests.md).
 */
#ifndef __UBPF_IO_URING_BPF_REQUESTS_H
#define __UBPF_IO_URING_BPF_REQUESTS_H
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <liburing/io_uring.h>

/* The RFC appended IORING_OP_BPF after the last opcode of 2021 (today's MKDIRAT slot).
 * uringbpf gives it 66: 65 is Ming Lei's later IORING_OP_BPF. */
#ifndef IORING_OP_BPF_RFC2021
#define IORING_OP_BPF_RFC2021 66
#endif
#define IORING_REGISTER_BPF_RFC2021 15
#define IORING_UNREGISTER_BPF_RFC2021 16
#define IORING_MAX_BPF_PROGS 100
#define IO_MAX_CQRINGS 1024
/* offset of the RFC's `__u16 cq_idx` in struct io_uring_sqe (over addr3) */
#define IORING_SQE_CQ_IDX_OFFSET 48

/* The RFC's io_bpf_is_valid_access admits only whole-field accesses, so clang must not
 * merge `ctx->wait_idx = a; ctx->wait_nr = b;` into one 8-byte store (nor narrow a load):
 * preserve_access_index keeps each field access as written, as the RFC's vmlinux.h did. */
#if __has_attribute(preserve_access_index)
#define __UBPF_RFC_CTX_ATTR __attribute__((preserve_access_index))
#else
#define __UBPF_RFC_CTX_ATTR
#endif
struct io_uring_bpf_ctx {
	__u64	user_data;	/* the BPF request's own sqe->user_data */
	__u32	wait_nr;	/* set: run again once CQ wait_idx holds >= wait_nr CQEs */
	__u32	wait_idx;
} __UBPF_RFC_CTX_ATTR;

/* sqe->cq_idx of the RFC: the CQ that receives this request's CQE. */
static __always_inline void io_uring_sqe_set_cq_idx(struct io_uring_sqe *sqe, __u16 cq_idx)
{
	*(__u16 *)((char *)sqe + IORING_SQE_CQ_IDX_OFFSET) = cq_idx;
}

static __always_inline __u16 io_uring_sqe_cq_idx(const struct io_uring_sqe *sqe)
{
	return *(const __u16 *)((const char *)sqe + IORING_SQE_CQ_IDX_OFFSET);
}

/* Helper ids 164..167 as hard-coded in the RFC's examples/bpf/uring.bpf.c. */
static long (* const bpf_iouring_queue_sqe)(void *ctx, const struct io_uring_sqe *sqe, __u32 sqe_len) = (void *) 164;
static long (* const bpf_iouring_emit_cqe)(void *ctx, __u32 cq_idx, __u64 user_data, __s32 res, __u32 flags) = (void *) 165;
static long (* const bpf_iouring_reap_cqe)(void *ctx, __u32 cq_idx, struct io_uring_cqe *cqe_out, __u32 cqe_len) = (void *) 166;

#ifndef UBPF_RFC_OWN_HELPERS
static long (* const iouring_queue_sqe)(void *ctx, const struct io_uring_sqe *sqe, __u32 sqe_len) = (void *) 164;
static long (* const iouring_emit_cqe)(void *ctx, __u32 cq_idx, __u64 user_data, __s32 res, __u32 flags) = (void *) 165;
static long (* const iouring_reap_cqe)(void *ctx, __u32 cq_idx, struct io_uring_cqe *cqe_out, __u32 cqe_len) = (void *) 166;
static long (* const bpf_copy_to_user)(void *user_ptr, const void *src, __u32 size) = (void *) 167;
#endif
#endif
