// SPDX-License-Identifier: MIT
/* Reproduction of the v3 bpf_ext_memcpy case for uringbpf: two ops copy between an
 * io_uring buffer and an arena (mapped at 1 << 44), whose base user space stores in .bss. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <asm-generic/errno.h>

char LICENSE[] SEC("license") = "GPL";

#if defined(__BPF_FEATURE_ADDR_SPACE_CAST)
#define __arena __attribute__((address_space(1)))
#define to_kern(p) /* LLVM casts on its own */
#else
#define __arena
#define to_kern(p) bpf_addr_space_cast(p, 0, 1)
#endif
#ifndef PAGE_SIZE
#define PAGE_SIZE __PAGE_SIZE
#endif
#define PIECE 512
#define TOTAL (PIECE * 2050)

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2048);
	__ulong(map_extra, 0x1ull << 44);
} arena SEC(".maps");

unsigned char __arena *arena_buf;

/* what the two ops keep in the request's pdu (cast from data->pdu, as the series does) */
struct op_pdu {
	struct io_bpf_buf_desc desc;
};

extern void uring_bpf_set_result(struct uring_bpf_data *data, int res) __ksym;
extern int bpf_iter_uring_buf_new(struct bpf_iter_uring_buf *iter, struct uring_bpf_data *data,
				  struct io_bpf_buf_desc *desc, int direction) __ksym;
extern int *bpf_iter_uring_buf_next(struct bpf_iter_uring_buf *iter) __ksym;
extern void bpf_iter_uring_buf_destroy(struct bpf_iter_uring_buf *iter) __ksym;
extern int bpf_uring_buf_dynptr(struct bpf_iter_uring_buf *it__iter, struct bpf_dynptr *ptr__uninit) __ksym;
extern int bpf_uring_buf_dynptr_rdwr(struct bpf_iter_uring_buf *it__iter, struct bpf_dynptr *ptr__uninit) __ksym;
extern __u64 bpf_dynptr_size(const struct bpf_dynptr *ptr) __ksym;
extern void *bpf_dynptr_slice(const struct bpf_dynptr *ptr, __u64 offset, void *buffer, __u64 buffer__szk) __ksym;
void __arena *bpf_arena_alloc_pages(void *map, void __arena *addr, __u32 page_cnt, int node_id,
				    __u64 flags) __ksym __weak;

static __noinline int to_arena(unsigned char *from, unsigned char __arena *to, int n)
{
	__u64 *s = (__u64 *)from;
	__u64 *d = (__u64 *)to;
	int k;

	for (k = 0; k < n / 8 && k < PAGE_SIZE / 8; k++)
		d[k] = s[k];
	return 0;
}

static __noinline int from_arena(unsigned char __arena *from, unsigned char *to, int n)
{
	__u64 *s = (__u64 *)from;
	__u64 *d = (__u64 *)to;
	int k;

	for (k = 0; k < n / 8 && k < PAGE_SIZE / 8; k++)
		d[k] = s[k];
	return 0;
}

SEC("struct_ops/prep")
int BPF_PROG(prep, struct uring_bpf_data *data, const struct io_uring_sqe *sqe)
{
	struct op_pdu *pdu = (struct op_pdu *)data->pdu;
	struct io_bpf_buf_desc desc;
	int err;

	if (sqe->len != 1)
		return -EINVAL;
	err = bpf_probe_read_user(&desc, sizeof(desc), (void *)sqe->addr);
	if (err)
		return err;
	__builtin_memcpy(&pdu->desc, &desc, sizeof(desc));
	return 0;
}

struct walk {
	struct bpf_iter_uring_buf *it;
	unsigned char __arena *base;
	int done;
};

static int page_in(u32 idx, struct walk *w)
{
	struct bpf_dynptr dp;
	unsigned char *p;
	int *avail, got = 0, i;

	avail = bpf_iter_uring_buf_next(w->it);
	if (!avail)
		return 1;
	if (bpf_uring_buf_dynptr(w->it, &dp))
		return 1;
	if (*avail >= PAGE_SIZE) {
		p = bpf_dynptr_slice(&dp, 0, NULL, PAGE_SIZE);
		if (p) {
			to_arena(p, w->base + w->done, PAGE_SIZE);
			w->done += PAGE_SIZE;
			return 0;
		}
	}
	for (i = 0; i < PAGE_SIZE / PIECE; i++) {
		p = bpf_dynptr_slice(&dp, got, NULL, PIECE);
		if (!p)
			break;
		to_arena(p, w->base + w->done + got, PIECE);
		got += PIECE;
	}
	w->done += got;
	return got ? 0 : 1;
}

static int page_out(u32 idx, struct walk *w)
{
	struct bpf_dynptr dp;
	unsigned char *p;
	int *avail, got = 0, i;

	avail = bpf_iter_uring_buf_next(w->it);
	if (!avail)
		return 1;
	if (bpf_uring_buf_dynptr_rdwr(w->it, &dp))
		return 1;
	if (*avail >= PAGE_SIZE) {
		p = bpf_dynptr_data(&dp, 0, PAGE_SIZE);
		if (p) {
			from_arena(w->base + w->done, p, PAGE_SIZE);
			w->done += PAGE_SIZE;
			return 0;
		}
	}
	for (i = 0; i < PAGE_SIZE / PIECE; i++) {
		p = bpf_dynptr_data(&dp, got, PIECE);
		if (!p)
			break;
		from_arena(w->base + w->done + got, p, PIECE);
		got += PIECE;
	}
	w->done += got;
	return got ? 0 : 1;
}

static __always_inline int run_copy(struct uring_bpf_data *data, int in)
{
	struct op_pdu *pdu = (struct op_pdu *)data->pdu;
	struct io_bpf_buf_desc desc;
	struct bpf_iter_uring_buf it;
	unsigned char __arena *base = arena_buf;
	struct walk w = {};

	desc = pdu->desc;
	bpf_arena_alloc_pages(&arena, NULL, 0, 0, 0);   /* names the arena for the verifier */
	if (!base) {
		uring_bpf_set_result(data, -ENOMEM);
		return 0;
	}
	to_kern(base);
	bpf_iter_uring_buf_new(&it, data, &desc, in);
	w.it = &it;
	w.base = base;
	bpf_loop(TOTAL / PAGE_SIZE + 16, in ? (void *)page_in : (void *)page_out, &w, 0);
	bpf_iter_uring_buf_destroy(&it);
	uring_bpf_set_result(data, w.done);
	return 0;
}

SEC("struct_ops/issue_in")
int BPF_PROG(issue_in, struct uring_bpf_data *data)
{
	return run_copy(data, 1);
}

SEC("struct_ops/issue_out")
int BPF_PROG(issue_out, struct uring_bpf_data *data)
{
	return run_copy(data, 0);
}

SEC("struct_ops/nop_fail")
void BPF_PROG(nop_fail, struct uring_bpf_data *data)
{
}

SEC("struct_ops/nop_cleanup")
void BPF_PROG(nop_cleanup, struct uring_bpf_data *data)
{
}

SEC(".struct_ops.link")
struct uring_bpf_ops copy_in_ops = {
	.prep_fn = (void *)prep,
	.issue_fn = (void *)issue_in,
	.fail_fn = (void *)nop_fail,
	.cleanup_fn = (void *)nop_cleanup,
};

SEC(".struct_ops.link")
struct uring_bpf_ops copy_out_ops = {
	.prep_fn = (void *)prep,
	.issue_fn = (void *)issue_out,
	.fail_fn = (void *)nop_fail,
	.cleanup_fn = (void *)nop_cleanup,
};
