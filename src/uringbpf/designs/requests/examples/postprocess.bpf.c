// SPDX-License-Identifier: MIT
/* The Dietrich/Schirmeier programming model on the RFC's pieces (docs/designs/requests.md).
 *
 * Two functions on one ring, chosen by index, sharing global state:
 *   0 postprocess: runs linked after a READ whose CQE went to the private CQ (suppressed
 *     for the application), counts the newlines read and posts one CQE (job id, count).
 *   1 fork_join: the same count, added to a global total; the invocation that finishes
 *     the last job posts the single join CQE (JOIN_USER_DATA, total).
 * `user_data` of each BPF SQE points at a struct job in the application's memory.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <io_uring/bpf_requests.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define CHUNK 64
#define JOIN_USER_DATA 0x4a4f494eULL	/* "JOIN" */

struct job {
	__u64 buf;	/* where the READ put the chunk */
	__u32 id;
	__u32 pad;
};

const volatile __u32 private_cq = 1;	/* ring.private_cq, set before load */
const volatile __u32 nr_jobs = 1;

__u64 total_lines;
__u32 jobs_done;
__u32 failures;

/* Newline bytes in a word, without a loop (SWAR): a byte of x is zero exactly where w
 * holds '\n'; the top bit of each such byte is collected and summed by a multiply. */
static __always_inline __u64 newlines_in(__u64 w)
{
	__u64 x = w ^ 0x0a0a0a0a0a0a0a0aULL;
	__u64 t = ((x & 0x7f7f7f7f7f7f7f7fULL) + 0x7f7f7f7f7f7f7f7fULL) | x;

	t = ~t & 0x8080808080808080ULL;
	return ((t >> 7) * 0x0101010101010101ULL) >> 56;
}

static __always_inline long count_job(struct io_uring_bpf_ctx *ctx, struct job *job)
{
	struct io_uring_cqe cqe;
	__u64 data[CHUNK / 8];
	long lines = 0;
	int i;

	if (bpf_copy_from_user(job, sizeof(*job), (void *)ctx->user_data))
		return -1;
	/* the READ's CQE, which the application never sees */
	if (iouring_reap_cqe(ctx, private_cq, &cqe, sizeof(cqe)))
		return -1;
	if (cqe.res != CHUNK)
		return -1;
	if (bpf_copy_from_user(data, sizeof(data), (void *)job->buf))
		return -1;
#pragma clang loop unroll(full)
	for (i = 0; i < CHUNK / 8; i++)
		lines += newlines_in(data[i]);
	return lines;
}

SEC("iouring.s/postprocess")
int postprocess(struct io_uring_bpf_ctx *ctx)
{
	struct job job = {};
	long lines = count_job(ctx, &job);

	iouring_emit_cqe(ctx, 0, job.id, lines, 0);
	return 0;
}

SEC("iouring.s/fork_join")
int fork_join(struct io_uring_bpf_ctx *ctx)
{
	struct job job = {};
	long lines = count_job(ctx, &job);
	__u32 done;

	if (lines < 0)
		__sync_fetch_and_add(&failures, 1);
	else
		__sync_fetch_and_add(&total_lines, lines);
	done = __sync_fetch_and_add(&jobs_done, 1) + 1;
	if (done == nr_jobs)
		iouring_emit_cqe(ctx, 0, JOIN_USER_DATA, failures ? -1 : (__s32)total_lines, 0);
	return 0;
}
