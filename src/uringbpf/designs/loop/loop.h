/*
 * The native half of the Linux 7.1 loop_step emulation (designs/loop.py).
 *
 * `struct ub_loop_ctx` is what a loop_step program receives as its
 * `struct io_ring_ctx *`: programs never dereference it (the verifier treats it
 * as a trusted opaque pointer), they only hand it back to the kfuncs below, so it
 * can hold whatever the emulation needs: the ring fd, the kernel SQ ring, the
 * three regions of bpf_io_uring_get_region and the installed cBPF filters.
 */
#ifndef URINGBPF_LOOP_H
#define URINGBPF_LOOP_H

#include <stdint.h>

#define UB_LOOP_MAGIC 0x75626c6f6f703731ULL /* "ubloop71" */

#define UB_IOU_REGION_MEM 0
#define UB_IOU_REGION_CQ 1
#define UB_IOU_REGION_SQ 2
#define UB_NR_REGIONS 3

#define UB_IOU_LOOP_CONTINUE 0
#define UB_IOU_LOOP_STOP 1

/* uringbpf_loop_run() result when the step trampoline raised a Python exception. */
#define UB_LOOP_ABORTED (-1000)

/* ctx->sq_mode */
#define UB_SQ_KERNEL 0      /* SQEs are taken by head/tail from the kernel's own array */
#define UB_SQ_REWIND 1      /* kernel has SQ_REWIND: slots 0..n-1 of the kernel array */
#define UB_SQ_REWIND_EMU 2  /* emulated SQ_REWIND: copy slots 0..n-1 of a private array */

struct ub_loop_ctx {
	uint64_t magic;
	int32_t ring_fd;
	uint32_t sq_mode;
	/* kernel SQ ring */
	uint32_t *sq_khead;
	uint32_t *sq_ktail;
	uint32_t *sq_array; /* NULL with NO_SQARRAY */
	uint8_t *ksqes;     /* the kernel's SQE array */
	uint32_t sq_mask;
	uint32_t sq_entries;
	uint32_t sqe_size;
	uint32_t cqe_size;
	/* kernel CQ ring */
	uint32_t *cq_khead;
	uint32_t *cq_ktail;
	/* bpf_io_uring_get_region */
	uint64_t region_addr[UB_NR_REGIONS];
	uint64_t region_size[UB_NR_REGIONS];
	/* classic-BPF opcode filters (designs/filter.py builds the blob), or 0 */
	uint64_t filters;
	/* address of the JIT context's u64 error word (0: none); non-zero after a step
	 * means the program faulted (checked mode) or a Python helper raised */
	uint64_t error_word;
	/* int64_t (*)(uint64_t nr): when set, submit_sqes calls back into Python (the ring
	 * has SQE filters other than the cBPF table, which only Python can run) */
	uint64_t py_submit;
	/* run state */
	volatile int32_t abort;        /* set by a Python trampoline that raised */
	int32_t submitted_in_step;     /* the step's submit already ran local work */
	volatile uint32_t running;
	volatile uint32_t stop;        /* set by another thread (link destroy, ring close): the
				        * loop ends with -ECANCELED at its next step or wait */
	/* statistics (read by Python for docs/benchmarks) */
	uint64_t steps;
	uint64_t waits;
	uint64_t submit_calls;
	uint64_t sqes_submitted;
	uint64_t sqes_denied;
	uint64_t sqes_faulted;   /* SQEs failed with -EFAULT: they named runtime-owned memory */
	/* what loop_step gets: r1 = &args, args = {ctx, &params} (the struct_ops convention);
	 * kept here rather than on the C stack so the interpreter can allow exactly them */
	uint64_t args[2];
	struct ub_loop_params {
		uint32_t cq_wait_idx;
		uint32_t pad;
	} params;
};

typedef uint64_t (*ub_prog_fn)(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);

uint64_t uringbpf_kf_submit_sqes(uint64_t ctx, uint64_t nr, uint64_t r3, uint64_t r4, uint64_t r5);
uint64_t uringbpf_kf_get_region(uint64_t ctx, uint64_t id, uint64_t size, uint64_t r4, uint64_t r5);
int64_t uringbpf_loop_run(struct ub_loop_ctx *ctx, ub_prog_fn step, const int *signals, int nr_signals);

#endif
