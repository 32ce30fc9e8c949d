/* IORING_OP_BPF copies between a request's buffer and BPF-side memory.
 *
 * op 0 (v3 iterator): buffer -> `store` (global data), reading page dynptrs
 * op 1 (v3 iterator): `store` -> buffer, writing through read-write dynptrs
 * op 2 (v2 kfunc):    uring_bpf_memcpy(data, &desc[0], &desc[1]) with two descriptors
 *                     (e.g. an arena region described as USER memory and the buffer)
 * CQE res = bytes copied, or -errno. */
#include <linux/errno.h>
#include <io_uring/bpf_ext.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define STORE_SIZE (512 * 2050)
#define CHUNK 512

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 260);		/* pages: 1 MiB + a little */
} arena SEC(".maps");

__u8 store[STORE_SIZE];
__u64 nr_cleanup;

SEC("struct_ops/copy_prep")
int BPF_PROG(copy_prep, struct uring_bpf_data *data, const struct io_uring_sqe *sqe)
{
	struct io_bpf_buf_desc desc[2];
	__u32 nr = sqe->len;

	if (nr < 1 || nr > 2)
		return -EINVAL;
	if (bpf_probe_read_user(desc, nr * sizeof(desc[0]), (void *)sqe->addr))
		return -EFAULT;
	__builtin_memcpy(data->pdu, desc, sizeof(desc));
	return 0;
}

static __always_inline int page_in(struct bpf_iter_uring_buf *it, __u64 *donep, int n)
{
	struct bpf_dynptr dp;
	__u64 done = *donep;
	int i;

	if (n <= 0 || n > 4096 || bpf_uring_buf_dynptr(it, &dp))
		return -1;
	bpf_for(i, 0, 4096 / CHUNK) {
		__u32 off = i * CHUNK, len;

		if (off >= (__u32)n)
			break;
		len = n - off;
		if (len > CHUNK)
			len = CHUNK;
		if (done > STORE_SIZE - CHUNK)
			return -1;
		if (bpf_dynptr_read(&store[done], len, &dp, off, 0))
			return -1;
		done += len;
	}
	*donep = done;
	return 0;
}

static __always_inline int page_out(struct bpf_iter_uring_buf *it, __u64 *donep, int n)
{
	struct bpf_dynptr dp;
	__u64 done = *donep;
	int i;

	if (n <= 0 || n > 4096 || bpf_uring_buf_dynptr_rdwr(it, &dp))
		return -1;
	bpf_for(i, 0, 4096 / CHUNK) {
		__u32 off = i * CHUNK, len;

		if (off >= (__u32)n)
			break;
		len = n - off;
		if (len > CHUNK)
			len = CHUNK;
		if (done > STORE_SIZE - CHUNK)
			return -1;
		if (bpf_dynptr_write(&dp, off, &store[done], len, 0))
			return -1;
		done += len;
	}
	*donep = done;
	return 0;
}

static __always_inline int copy_iter(struct uring_bpf_data *data, int to_store)
{
	struct io_bpf_buf_desc desc;
	struct bpf_iter_uring_buf it;
	__u64 done = 0;
	int *avail, err, ret = 0;

	__builtin_memcpy(&desc, data->pdu, sizeof(desc));
	err = bpf_iter_uring_buf_new(&it, data, &desc, to_store ? ITER_SOURCE : ITER_DEST);
	while ((avail = bpf_iter_uring_buf_next(&it))) {
		ret = to_store ? page_in(&it, &done, *avail) : page_out(&it, &done, *avail);
		if (ret)
			break;
	}
	bpf_iter_uring_buf_destroy(&it);
	uring_bpf_set_result(data, err ? err : ret ? -EFAULT : (int)done);
	return 0;
}

SEC("struct_ops/copy_in_issue")
int BPF_PROG(copy_in_issue, struct uring_bpf_data *data)
{
	return copy_iter(data, 1);
}

SEC("struct_ops/copy_out_issue")
int BPF_PROG(copy_out_issue, struct uring_bpf_data *data)
{
	return copy_iter(data, 0);
}

SEC("struct_ops/memcpy_issue")
int BPF_PROG(memcpy_issue, struct uring_bpf_data *data)
{
	struct io_bpf_buf_desc *d = (void *)data->pdu;
	__s64 ret = uring_bpf_memcpy(data, &d[0], &d[1]);

	uring_bpf_set_result(data, (int)ret);
	return 0;
}

SEC("struct_ops/copy_cleanup")
int BPF_PROG(copy_cleanup, struct uring_bpf_data *data)
{
	nr_cleanup++;
	return 0;
}

SEC(".struct_ops.link")
struct uring_bpf_ops copy_in_op = {
	.id = 0, .prep_fn = (void *)copy_prep, .issue_fn = (void *)copy_in_issue,
	.cleanup_fn = (void *)copy_cleanup,
};

SEC(".struct_ops.link")
struct uring_bpf_ops copy_out_op = {
	.id = 1, .prep_fn = (void *)copy_prep, .issue_fn = (void *)copy_out_issue,
	.cleanup_fn = (void *)copy_cleanup,
};

SEC(".struct_ops.link")
struct uring_bpf_ops memcpy_op = {
	.id = 2, .prep_fn = (void *)copy_prep, .issue_fn = (void *)memcpy_issue,
	.cleanup_fn = (void *)copy_cleanup,
};
