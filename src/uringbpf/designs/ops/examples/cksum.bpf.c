/* IORING_OP_BPF checksum op: crc32c of the buffer a previous linked READ filled.
 *
 * SQE: opcode IORING_OP_BPF, op id 0, sqe->addr -> one io_bpf_buf_desc, sqe->len = 1.
 * prep_fn copies the descriptor into pdu; issue_fn walks the buffer page by page with
 * the v3 iterator (read-only dynptrs) and completes the request with the low 31 bits of
 * the crc32c (a CQE res must stay >= 0 to mean success); the full value is in
 * `last_crc`.  The application never touches the data. */
#include <linux/errno.h>
#include <io_uring/bpf_ext.h>
#include <bpf/bpf_tracing.h>
#include <uringbpf/crc32c.h>

/* const volatile: the table stays in .rodata (one array-map value) */
static const volatile __u32 crc32c_table[256] = UBPF_CRC32C_TABLE;

char LICENSE[] SEC("license") = "GPL";

#define CHUNK 256
#define STEP(p, i) (crc = crc32c_table[(crc ^ (p)[i]) & 0xff] ^ (crc >> 8))
#define STEP8(p, i) (STEP(p, i), STEP(p, i + 1), STEP(p, i + 2), STEP(p, i + 3), \
		     STEP(p, i + 4), STEP(p, i + 5), STEP(p, i + 6), STEP(p, i + 7))

__u32 last_crc;
__u64 bytes_seen, nr_cleanup;

SEC("struct_ops/cksum_prep")
int BPF_PROG(cksum_prep, struct uring_bpf_data *data, const struct io_uring_sqe *sqe)
{
	struct io_bpf_buf_desc desc;

	if (sqe->len != 1)
		return -EINVAL;
	if (bpf_probe_read_user(&desc, sizeof(desc), (void *)sqe->addr))
		return -EFAULT;
	__builtin_memcpy(data->pdu, &desc, sizeof(desc));
	return 0;
}

/* One page of the buffer: each page gets a new dynptr in the same stack slots (the
 * verifier accepts re-initialising a dynptr that holds no reference, like the kernel). */
static __always_inline int crc_page(struct bpf_iter_uring_buf *it, __u32 *crcp, int n)
{
	struct bpf_dynptr dp;
	__u8 buf[CHUNK];
	__u32 crc = *crcp;
	int total = 0, i, j;

	if (n <= 0 || n > 4096 || bpf_uring_buf_dynptr(it, &dp))
		return -1;
	bpf_for(i, 0, 4096 / CHUNK) {
		__u32 off = i * CHUNK, len;

		if (off >= (__u32)n)
			break;
		len = n - off;
		if (len > CHUNK)
			len = CHUNK;
		if (len == CHUNK) {
			/* a full chunk: read in place through a slice (no copy), 32 bytes per
			 * bpf_for() step (bpf_iter_num_next is a kfunc call, in the kernel too: one
			 * per byte cost more than the table lookups themselves) */
			__u8 *p = bpf_dynptr_slice(&dp, off, buf, CHUNK);

			if (!p)
				break;
			bpf_for(j, 0, CHUNK / 32) {
				__u8 *q = p + ((j * 32) & (CHUNK - 32));

				STEP8(q, 0);
				STEP8(q, 8);
				STEP8(q, 16);
				STEP8(q, 24);
			}
		} else {
			if (bpf_dynptr_read(buf, len, &dp, off, 0))
				break;
			bpf_for(j, 0, CHUNK) {
				if (j >= len)
					break;
				crc = crc32c_table[(crc ^ buf[j]) & 0xff] ^ (crc >> 8);
			}
		}
		total += len;
	}
	*crcp = crc;
	return total;
}

SEC("struct_ops/cksum_issue")
int BPF_PROG(cksum_issue, struct uring_bpf_data *data)
{
	struct io_bpf_buf_desc desc;
	struct bpf_iter_uring_buf it;
	__u32 crc = ~0U;
	__u64 total = 0;
	int *avail, err, got;

	__builtin_memcpy(&desc, data->pdu, sizeof(desc));
	err = bpf_iter_uring_buf_new(&it, data, &desc, ITER_SOURCE);
	while ((avail = bpf_iter_uring_buf_next(&it))) {
		got = crc_page(&it, &crc, *avail);
		if (got < 0)
			break;
		total += got;
	}
	bpf_iter_uring_buf_destroy(&it);
	if (err) {
		uring_bpf_set_result(data, err);
		return 0;
	}
	crc = ~crc;
	last_crc = crc;
	bytes_seen += total;
	uring_bpf_set_result(data, crc & 0x7fffffff);
	return 0;
}

SEC("struct_ops/cksum_cleanup")
int BPF_PROG(cksum_cleanup, struct uring_bpf_data *data)
{
	nr_cleanup++;
	return 0;
}

SEC(".struct_ops.link")
struct uring_bpf_ops cksum_op = {
	.id = 0,
	.prep_fn = (void *)cksum_prep,
	.issue_fn = (void *)cksum_issue,
	.cleanup_fn = (void *)cksum_cleanup,
};
