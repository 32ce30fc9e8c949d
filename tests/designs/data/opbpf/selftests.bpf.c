// SPDX-License-Identifier: MIT
/* Ming Lei's IORING_OP_BPF selftest cases (v2: basic_bpf_ops, bpf_memcpy; v3:
 * bpf_ext_memcpy), written for uringbpf in the selftests' style: kernel types from
 * `uringbpf vmlinux --design opbpf`, kfuncs declared here, BPF_PROG struct_ops members
 * (fail_fn/cleanup_fn return void, as the series declares them).
 *
 * op 0, 1  basic: prep stores 0xdeadbeef in pdu, issue checks it and sets res 42
 * op 2     prep only (no issue_fn): completes with res 0
 * op 3     v2 memcpy: uring_bpf_memcpy(data, &desc[0] (dst), &desc[1] (src))
 * op 4     v3 buffer -> store, 512-byte chunks read with bpf_dynptr_slice
 * op 5     v3 store -> buffer, 512-byte chunks written through bpf_dynptr_data
 */
#include "vmlinux.h"
#include <linux/const.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern void uring_bpf_set_result(struct uring_bpf_data *data, int res) __ksym;
extern __s64 uring_bpf_memcpy(const struct uring_bpf_data *data, struct io_bpf_buf_desc *dst,
			      struct io_bpf_buf_desc *src) __ksym;
extern int bpf_iter_uring_buf_new(struct bpf_iter_uring_buf *iter, struct uring_bpf_data *data,
				  struct io_bpf_buf_desc *desc, int direction) __ksym;
extern int *bpf_iter_uring_buf_next(struct bpf_iter_uring_buf *iter) __ksym;
extern void bpf_iter_uring_buf_destroy(struct bpf_iter_uring_buf *iter) __ksym;
extern int bpf_uring_buf_dynptr(struct bpf_iter_uring_buf *it__iter,
				struct bpf_dynptr *ptr__uninit) __ksym;
extern int bpf_uring_buf_dynptr_rdwr(struct bpf_iter_uring_buf *it__iter,
				     struct bpf_dynptr *ptr__uninit) __ksym;
extern void *bpf_dynptr_slice(const struct bpf_dynptr *p, __u32 offset, void *buffer__opt,
			      __u32 buffer__szk) __ksym;

char LICENSE[] SEC("license") = "GPL";

#define MAGIC 0xdeadbeef
#define CHUNK 512
#define STORE_SIZE (CHUNK * 2050)

__u64 nr_prep, nr_issue, nr_fail, nr_cleanup;
__u8 store[STORE_SIZE];

SEC("struct_ops/basic_prep")
int BPF_PROG(basic_prep, struct uring_bpf_data *data, const struct io_uring_sqe *sqe)
{
	*(__u32 *)data->pdu = MAGIC;
	__sync_fetch_and_add(&nr_prep, 1);
	return 0;
}

SEC("struct_ops/basic_issue")
int BPF_PROG(basic_issue, struct uring_bpf_data *data)
{
	__sync_fetch_and_add(&nr_issue, 1);
	uring_bpf_set_result(data, *(__u32 *)data->pdu == MAGIC ? 42 : -EIO);
	return 0;
}

SEC("struct_ops/basic_fail")
void BPF_PROG(basic_fail, struct uring_bpf_data *data)
{
	__sync_fetch_and_add(&nr_fail, 1);
}

SEC("struct_ops/basic_cleanup")
void BPF_PROG(basic_cleanup, struct uring_bpf_data *data)
{
	__sync_fetch_and_add(&nr_cleanup, 1);
}

SEC("struct_ops/desc_prep")
int BPF_PROG(desc_prep, struct uring_bpf_data *data, const struct io_uring_sqe *sqe)
{
	struct io_bpf_buf_desc desc[2] = {};
	__u32 nr = sqe->len;

	if (nr < 1 || nr > 2)
		return -EINVAL;
	if (bpf_probe_read_user(desc, nr * sizeof(desc[0]), (void *)sqe->addr))
		return -EFAULT;
	__builtin_memcpy(data->pdu, desc, sizeof(desc));
	return 0;
}

SEC("struct_ops/memcpy_issue")
int BPF_PROG(memcpy_issue, struct uring_bpf_data *data)
{
	struct io_bpf_buf_desc d[2];

	__builtin_memcpy(d, data->pdu, sizeof(d));
	uring_bpf_set_result(data, (int)uring_bpf_memcpy(data, &d[0], &d[1]));
	return 0;
}

static __always_inline int chunks_in(struct bpf_iter_uring_buf *it, __u64 *donep, int n)
{
	struct bpf_dynptr dp;
	__u64 done = *donep;
	int i;

	if (n <= 0 || n > 4096 || n % CHUNK || bpf_uring_buf_dynptr(it, &dp))
		return -1;
	bpf_for(i, 0, 4096 / CHUNK) {
		__u8 *p;

		if (i * CHUNK >= n)
			break;
		if (done > STORE_SIZE - CHUNK)
			return -1;
		/* no bounce buffer: a page dynptr is contiguous, so the slice is direct */
		p = bpf_dynptr_slice(&dp, i * CHUNK, NULL, CHUNK);
		if (!p)
			return -1;
		__builtin_memcpy(&store[done], p, CHUNK);
		done += CHUNK;
	}
	*donep = done;
	return 0;
}

static __always_inline int chunks_out(struct bpf_iter_uring_buf *it, __u64 *donep, int n)
{
	struct bpf_dynptr dp;
	__u64 done = *donep;
	int i;

	if (n <= 0 || n > 4096 || n % CHUNK || bpf_uring_buf_dynptr_rdwr(it, &dp))
		return -1;
	bpf_for(i, 0, 4096 / CHUNK) {
		__u8 *p;

		if (i * CHUNK >= n)
			break;
		if (done > STORE_SIZE - CHUNK)
			return -1;
		p = bpf_dynptr_data(&dp, i * CHUNK, CHUNK);
		if (!p)
			return -1;
		__builtin_memcpy(p, &store[done], CHUNK);
		done += CHUNK;
	}
	*donep = done;
	return 0;
}

static __always_inline int ext_copy(struct uring_bpf_data *data, int to_store)
{
	struct io_bpf_buf_desc desc;
	struct bpf_iter_uring_buf it;
	__u64 done = 0;
	int *avail, err, ret = 0;

	__builtin_memcpy(&desc, data->pdu, sizeof(desc));
	err = bpf_iter_uring_buf_new(&it, data, &desc, to_store ? ITER_SOURCE : ITER_DEST);
	while ((avail = bpf_iter_uring_buf_next(&it))) {
		ret = to_store ? chunks_in(&it, &done, *avail) : chunks_out(&it, &done, *avail);
		if (ret)
			break;
	}
	bpf_iter_uring_buf_destroy(&it);
	uring_bpf_set_result(data, err ? err : ret ? -EFAULT : (int)done);
	return 0;
}

SEC("struct_ops/ext_in_issue")
int BPF_PROG(ext_in_issue, struct uring_bpf_data *data)
{
	return ext_copy(data, 1);
}

SEC("struct_ops/ext_out_issue")
int BPF_PROG(ext_out_issue, struct uring_bpf_data *data)
{
	return ext_copy(data, 0);
}

SEC(".struct_ops.link")
struct uring_bpf_ops basic_0 = {
	.id = 0,
	.prep_fn = (void *)basic_prep,
	.issue_fn = (void *)basic_issue,
	.fail_fn = (void *)basic_fail,
	.cleanup_fn = (void *)basic_cleanup,
};

SEC(".struct_ops.link")
struct uring_bpf_ops basic_1 = {
	.id = 1,
	.prep_fn = (void *)basic_prep,
	.issue_fn = (void *)basic_issue,
	.fail_fn = (void *)basic_fail,
	.cleanup_fn = (void *)basic_cleanup,
};

SEC(".struct_ops.link")
struct uring_bpf_ops prep_only = {
	.id = 2,
	.prep_fn = (void *)basic_prep,
	.cleanup_fn = (void *)basic_cleanup,
};

SEC(".struct_ops.link")
struct uring_bpf_ops v2_memcpy = {
	.id = 3,
	.prep_fn = (void *)desc_prep,
	.issue_fn = (void *)memcpy_issue,
};

SEC(".struct_ops.link")
struct uring_bpf_ops ext_in = {
	.id = 4,
	.prep_fn = (void *)desc_prep,
	.issue_fn = (void *)ext_in_issue,
};

SEC(".struct_ops.link")
struct uring_bpf_ops ext_out = {
	.id = 5,
	.prep_fn = (void *)desc_prep,
	.issue_fn = (void *)ext_out_issue,
};
