/* SPDX-License-Identifier: MIT */
/*
 * The C baseline of the NOP benchmark (tools/kernel-vm/bench.py): N NOPs with K in
 * flight through io_uring_enter from user space, the way a plain liburing loop does it
 * (raw syscalls, so the guest needs no liburing).  Prints "<nops> <seconds>".
 *   nop_bench N K
 */
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long total = argc > 1 ? atol(argv[1]) : 100000;
	unsigned k = argc > 2 ? atoi(argv[2]) : 8;
	struct io_uring_params p;
	int fd;
	unsigned *sq_tail, *sq_array, *cq_head, *cq_tail, sq_mask, cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	char *sq, *cq;
	long done = 0, inflight = 0, queued = 0;
	double t0;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = k;
	fd = syscall(__NR_io_uring_setup, k, &p);
	if (fd < 0) {
		perror("io_uring_setup");
		return 1;
	}
	sq = mmap(0, p.sq_off.array + p.sq_entries * 4, PROT_READ | PROT_WRITE, MAP_SHARED,
		  fd, IORING_OFF_SQ_RING);
	cq = mmap(0, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
		  PROT_READ | PROT_WRITE, MAP_SHARED, fd, IORING_OFF_CQ_RING);
	sqes = mmap(0, p.sq_entries * sizeof(*sqes), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	sq_tail = (unsigned *)(sq + p.sq_off.tail);
	sq_array = (unsigned *)(sq + p.sq_off.array);
	sq_mask = *(unsigned *)(sq + p.sq_off.ring_mask);
	cq_head = (unsigned *)(cq + p.cq_off.head);
	cq_tail = (unsigned *)(cq + p.cq_off.tail);
	cq_mask = *(unsigned *)(cq + p.cq_off.ring_mask);
	cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);

	t0 = now();
	while (done < total) {
		unsigned n = 0, tail = *sq_tail, head, ctail;

		while (inflight + n < k && queued + n < total) {
			struct io_uring_sqe *sqe = &sqes[(tail + n) & sq_mask];
			memset(sqe, 0, sizeof(*sqe));
			sqe->opcode = IORING_OP_NOP;
			sqe->user_data = 0xabba1741;
			sq_array[(tail + n) & sq_mask] = (tail + n) & sq_mask;
			n++;
		}
		__atomic_store_n(sq_tail, tail + n, __ATOMIC_RELEASE);
		queued += n;
		inflight += n;
		if (syscall(__NR_io_uring_enter, fd, n, inflight, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
			perror("io_uring_enter");
			return 1;
		}
		head = *cq_head;
		ctail = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
		while (head != ctail) {
			if (cqes[head & cq_mask].user_data != 0xabba1741)
				return 2;
			head++;
			done++;
			inflight--;
		}
		__atomic_store_n(cq_head, head, __ATOMIC_RELEASE);
	}
	printf("%ld %.6f\n", done, now() - t0);
	return 0;
}
