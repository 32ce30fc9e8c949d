/* IORING_OP_BPF basic example: two ops (ids 0 and 1).  prep_fn stores a marker in the
 * request's pdu, issue_fn checks it and completes the request with 42 (op 0) or 43
 * (op 1); counters show that prep, issue and cleanup ran once per request. */
#include <linux/errno.h>
#include <io_uring/bpf_ext.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define MARKER 0xdeadbeef

__u64 nr_prep, nr_issue, nr_fail, nr_cleanup, last_user_data;

static __always_inline int do_prep(struct uring_bpf_data *data, const struct io_uring_sqe *sqe)
{
	*(__u32 *)data->pdu = MARKER;
	last_user_data = sqe->user_data;
	nr_prep++;
	return 0;
}

static __always_inline int do_issue(struct uring_bpf_data *data, int res)
{
	nr_issue++;
	uring_bpf_set_result(data, *(__u32 *)data->pdu == MARKER ? res : -EIO);
	return 0;
}

SEC("struct_ops/basic_prep0")
int BPF_PROG(basic_prep0, struct uring_bpf_data *data, const struct io_uring_sqe *sqe)
{
	return do_prep(data, sqe);
}

SEC("struct_ops/basic_issue0")
int BPF_PROG(basic_issue0, struct uring_bpf_data *data)
{
	return do_issue(data, 42);
}

SEC("struct_ops/basic_prep1")
int BPF_PROG(basic_prep1, struct uring_bpf_data *data, const struct io_uring_sqe *sqe)
{
	return do_prep(data, sqe);
}

SEC("struct_ops/basic_issue1")
int BPF_PROG(basic_issue1, struct uring_bpf_data *data)
{
	return do_issue(data, 43);
}

SEC("struct_ops/basic_fail")
int BPF_PROG(basic_fail, struct uring_bpf_data *data)
{
	nr_fail++;
	return 0;
}

SEC("struct_ops/basic_cleanup")
int BPF_PROG(basic_cleanup, struct uring_bpf_data *data)
{
	nr_cleanup++;
	return 0;
}

SEC(".struct_ops.link")
struct uring_bpf_ops basic_op0 = {
	.id = 0,
	.prep_fn = (void *)basic_prep0,
	.issue_fn = (void *)basic_issue0,
	.fail_fn = (void *)basic_fail,
	.cleanup_fn = (void *)basic_cleanup,
};

SEC(".struct_ops.link")
struct uring_bpf_ops basic_op1 = {
	.id = 1,
	.prep_fn = (void *)basic_prep1,
	.issue_fn = (void *)basic_issue1,
	.fail_fn = (void *)basic_fail,
	.cleanup_fn = (void *)basic_cleanup,
};
