/* IORING_OP_BPF error paths.  Counters per op id show which callbacks ran.
 * op 0: prep_fn fails (-EINVAL)            op 1: issue sets a negative result (-EIO)
 * op 2: issue_fn returns an error (-ENOMEM) op 3: iterator over the SQE's descriptor
 *       (a bad descriptor's error becomes the result)
 * op 4: no prep_fn (-EOPNOTSUPP)            op 5: succeeds with res 7 (for chains)
 * op 6: like op 3 over a descriptor the program builds (the first half of the SQE's),
 *       which the SQE does not name: resolved on demand rather than at prep */
#include <linux/errno.h>
#include <io_uring/bpf_ext.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

__u64 preps[8], issues[8], fails[8], cleanups[8];

static __always_inline __u32 op_of(struct uring_bpf_data *data)
{
	return (data->opf >> IORING_BPF_OP_SHIFT) & 7;
}

SEC("struct_ops/err_prep")
int BPF_PROG(err_prep, struct uring_bpf_data *data, const struct io_uring_sqe *sqe)
{
	__u32 op = op_of(data);
	struct io_bpf_buf_desc desc = {};

	preps[op]++;
	if (op == 0)
		return -EINVAL;
	if (op == 3 || op == 6) {
		if (sqe->len != 1 || bpf_probe_read_user(&desc, sizeof(desc), (void *)sqe->addr))
			return -EFAULT;
		__builtin_memcpy(data->pdu, &desc, sizeof(desc));
	}
	return 0;
}

SEC("struct_ops/err_issue")
int BPF_PROG(err_issue, struct uring_bpf_data *data)
{
	__u32 op = op_of(data);
	struct io_bpf_buf_desc desc;
	struct bpf_iter_uring_buf it;
	int err, n = 0, *avail;

	issues[op]++;
	if (op == 1) {
		uring_bpf_set_result(data, -EIO);
		return 0;
	}
	if (op == 2)
		return -ENOMEM;
	if (op == 3 || op == 6) {
		__builtin_memcpy(&desc, data->pdu, sizeof(desc));
		if (op == 6)
			desc.len /= 2;
		err = bpf_iter_uring_buf_new(&it, data, &desc, ITER_SOURCE);
		while ((avail = bpf_iter_uring_buf_next(&it)))
			n += *avail & 0xffff;
		bpf_iter_uring_buf_destroy(&it);
		uring_bpf_set_result(data, err ? err : n);
		return 0;
	}
	uring_bpf_set_result(data, 7);
	return 0;
}

SEC("struct_ops/err_fail")
int BPF_PROG(err_fail, struct uring_bpf_data *data)
{
	fails[op_of(data)]++;
	return 0;
}

SEC("struct_ops/err_cleanup")
int BPF_PROG(err_cleanup, struct uring_bpf_data *data)
{
	cleanups[op_of(data)]++;
	return 0;
}

#define ERR_OP(name, ident)							\
SEC(".struct_ops.link")								\
struct uring_bpf_ops name = {							\
	.id = ident, .prep_fn = (void *)err_prep, .issue_fn = (void *)err_issue,	\
	.fail_fn = (void *)err_fail, .cleanup_fn = (void *)err_cleanup,		\
}
ERR_OP(err_op0, 0);
ERR_OP(err_op1, 1);
ERR_OP(err_op2, 2);
ERR_OP(err_op3, 3);
ERR_OP(err_op5, 5);
ERR_OP(err_op6, 6);

SEC(".struct_ops.link")
struct uring_bpf_ops err_op4 = {
	.id = 4, .issue_fn = (void *)err_issue, .cleanup_fn = (void *)err_cleanup,
};
