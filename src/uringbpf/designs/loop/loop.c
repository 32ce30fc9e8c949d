/*
 * The Linux 7.1 io_uring loop (io_uring/loop.c) in userspace, plus its two kfuncs.
 *
 * Once io_uring_bpf_ops are attached, io_uring_enter() becomes
 *
 *     for (;;) {
 *         ret = loop_step(ctx, &params);
 *         if (ret == STOP) return 0; if (ret != CONTINUE) return -EINVAL;
 *         nr_wait = lp->cq_wait_idx - cq.tail;
 *         if (nr_wait > 0) sleep until the CQ tail reaches cq_wait_idx;
 *         run task work; if (signal pending) return -EINTR;
 *         run DEFER_TASKRUN local work; flush CQ overflow;
 *     }
 *
 * Here the sleep and the task work are one real io_uring_enter(GETEVENTS) with
 * min_complete = cq_wait_idx - cq.head (the kernel counts ready CQEs from the head),
 * or min_complete = 0 when no wait is needed and the step did not already enter
 * the kernel through bpf_io_uring_submit_sqes (which submits with GETEVENTS so the
 * same syscall also runs the local work).  No Python runs per iteration when the
 * step is JIT code: Python regains control on STOP, on an error or on a signal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "loop.h"
#include "cbpf.h"
#include "sqe.h"
#include "sqrewind.h"
#include "guard.h"
#include "jitrt.h"

#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif
#define UB_ENTER_GETEVENTS 1u

#define UB_OP_NOP 0
#define UB_NOP_INJECT_RESULT 1u
#define UB_SQE_IO_LINK_FLAGS (4u | 8u | 2u) /* LINK, HARDLINK, DRAIN: as Ring._deny */

static inline uint32_t load_acquire(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void store_release(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline int ub_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags)
{
	long r = syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
	return r < 0 ? -errno : (int)r;
}

/*
 * Wait for `need` CQEs, but wake every UB_WAIT_SLICE_NS to see whether another thread
 * asked the loop to stop (link destroy, ring close: issue #13 item 10) — a ring set up
 * SINGLE_ISSUER/DEFER_TASKRUN cannot be woken by another thread's submission.  Only the
 * sleeping path pays for the timeout argument.
 */
#define UB_ENTER_EXT_ARG 8u
#define UB_WAIT_SLICE_NS 20000000ll
struct ub_getevents_arg {
	uint64_t sigmask;
	uint32_t sigmask_sz;
	uint32_t min_wait_usec;
	uint64_t ts;
};
struct ub_timespec {
	int64_t tv_sec;
	int64_t tv_nsec;
};

static int ub_wait(const struct ub_loop_ctx *ctx, unsigned need)
{
	struct ub_timespec ts = { 0, UB_WAIT_SLICE_NS };
	struct ub_getevents_arg arg = { 0, 0, 0, (uint64_t)(uintptr_t)&ts };
	long r;

	for (;;) {
		r = syscall(__NR_io_uring_enter, ctx->ring_fd, 0, need,
			    UB_ENTER_GETEVENTS | UB_ENTER_EXT_ARG, &arg, sizeof(arg));
		if (r >= 0)
			return (int)r;
		if (errno != ETIME)
			return -errno;
		if (ctx->stop)
			return -ECANCELED;
	}
}

static inline int ctx_ok(const struct ub_loop_ctx *ctx)
{
	return ctx && ctx->magic == UB_LOOP_MAGIC;
}

/*
 * An SQE that names the runtime's own memory still completes, with -EFAULT and its own
 * user_data: we get the kernel to post that CQE by turning the SQE into a NOP that
 * injects the result (IORING_NOP_INJECT_RESULT); the link/drain flags stay so it breaks
 * its chain like a failed request.  A cBPF refusal (-EACCES) fails its whole link chain
 * instead, as the kernel's does: uringbpf_chain_refuse/uringbpf_fail_chain_member.
 */
static void deny_sqe(uint8_t *sqe, uint32_t sqe_size, int32_t res)
{
	uringbpf_deny_sqe(sqe, sqe_size, res, UB_SQE_IO_LINK_FLAGS);  /* native/sqe.h */
}

/*
 * Emulated SQ_REWIND (native/sqrewind.h, the one implementation ring.py shares): stage
 * slots [0, nr) of `src` at the kernel SQ tail, check the copies (filters applied on the
 * way), submit them, and take back the ones the kernel did not consume.
 */
static int64_t submit_copied(struct ub_loop_ctx *ctx, const uint8_t *src, uint32_t nr)
{
	const struct ub_filter_table *filters = (const struct ub_filter_table *)(uintptr_t)ctx->filters;
	const struct uringbpf_ksq k = {
		.head = ctx->sq_khead, .tail = ctx->sq_ktail, .array = ctx->sq_array,
		.sqes = ctx->ksqes, .mask = ctx->sq_mask, .entries = ctx->sq_entries,
		.sqe_size = ctx->sqe_size,
	};
	uint32_t tail, i, first = 0;   /* first: first member of the chain being assembled */
	int ret, failed = 0, ends = 0;

	nr = uringbpf_sq_rewind_stage(&k, src, nr, &tail);
	if (!nr)
		return 0;
	for (i = 0; i < nr; i++) {
		uint8_t *dst = ctx->ksqes + (size_t)((tail + i) & ctx->sq_mask) * ctx->sqe_size;

		/* checked on the copy the kernel will read: the program cannot change it after */
		if (ubpf_guard_sqe(dst)) {
			deny_sqe(dst, ctx->sqe_size, -EFAULT);
			ctx->sqes_faulted++;
		} else if (filters && ub_filter_check(filters, dst)) {
			ends = ub_filter_ends_batch(filters, dst);   /* io_submit_sqes stops here */
			uringbpf_chain_refuse(dst, ctx->sqe_size, -EACCES);   /* native/sqe.h */
			ctx->sqes_denied++;
			failed = 1;
		}
		if (!(dst[1] & URINGBPF_SQE_LINKS) || ends || i + 1 == nr) {
			/* the chain ends here (or with the batch): a refusal fails all of it */
			for (; failed && first <= i; first++)
				uringbpf_fail_chain_member(ctx->ksqes + (size_t)((tail + first) & ctx->sq_mask)
							   * ctx->sqe_size, ctx->sqe_size, first == i);
			first = i + 1;
			failed = 0;
			if (ends) {
				nr = i + 1;
				break;
			}
		}
	}
	uringbpf_sq_rewind_publish(&k, tail + nr);
	ret = ub_enter(ctx->ring_fd, nr, 0, UB_ENTER_GETEVENTS);
	/* Retract what the kernel did not take (the user owns the SQ tail). */
	uringbpf_sq_rewind_publish(&k, tail + (ret > 0 ? (uint32_t)ret : 0));
	return ret;
}

/*
 * A ring without SQ_REWIND emulation: the program queued SQEs itself in the kernel's SQE
 * array (between the kernel's head and the tail it wrote, or slots 0..nr-1 with a kernel
 * SQ_REWIND); check each in place before the kernel sees it.  Every SQE is checked
 * against the runtime's own memory (guard.h: a CQE of -EFAULT), then against the cBPF
 * filters if there are any (-EACCES).
 */
/* The i-th SQE the kernel will consume from `head` (see check_in_place). */
static uint8_t *in_place_sqe(struct ub_loop_ctx *ctx, uint32_t head, uint32_t i)
{
	uint32_t idx = (head + i) & ctx->sq_mask;

	if (ctx->sq_mode == UB_SQ_REWIND)
		idx = i;
	else if (ctx->sq_array)
		idx = ctx->sq_array[idx] & ctx->sq_mask;
	return ctx->ksqes + (size_t)idx * ctx->sqe_size;
}

static uint32_t check_in_place(struct ub_loop_ctx *ctx, uint32_t nr)
{
	const struct ub_filter_table *filters = (const struct ub_filter_table *)(uintptr_t)ctx->filters;
	uint32_t head = load_acquire(ctx->sq_khead);
	uint32_t tail = load_acquire(ctx->sq_ktail);
	uint32_t i, n = tail - head;

	uint32_t first = 0;   /* first member of the chain being assembled */
	int failed = 0, ends = 0;

	if (ctx->sq_mode == UB_SQ_REWIND) /* a kernel with SQ_REWIND reads slots 0..nr-1 */
		n = nr < ctx->sq_entries ? nr : ctx->sq_entries;
	if (n > nr)
		n = nr;
	for (i = 0; i < n; i++) {
		uint8_t *sqe = in_place_sqe(ctx, head, i);

		if (ubpf_guard_sqe(sqe)) {
			deny_sqe(sqe, ctx->sqe_size, -EFAULT);
			ctx->sqes_faulted++;
		} else if (filters && ub_filter_check(filters, sqe)) {
			ends = ub_filter_ends_batch(filters, sqe);   /* io_submit_sqes stops here */
			uringbpf_chain_refuse(sqe, ctx->sqe_size, -EACCES);   /* native/sqe.h */
			ctx->sqes_denied++;
			failed = 1;
		}
		if (!(sqe[1] & URINGBPF_SQE_LINKS) || ends || i + 1 == n) {
			/* the chain ends here (or with the batch): a refusal fails all of it */
			for (; failed && first <= i; first++)
				uringbpf_fail_chain_member(in_place_sqe(ctx, head, first), ctx->sqe_size,
							   first == i);
			first = i + 1;
			failed = 0;
			if (ends)
				return i + 1;
		}
	}
	return nr;
}

/* The py_submit path with SQ_REWIND emulation: Python copies slots 0..nr-1 of the private
 * array; check them there first (guard only: the Python path runs the filters). */
static void check_private(struct ub_loop_ctx *ctx, uint32_t nr)
{
	uint8_t *src = (uint8_t *)(uintptr_t)ctx->region_addr[UB_IOU_REGION_SQ];
	uint32_t i;

	if (nr > ctx->sq_entries)
		nr = ctx->sq_entries;
	for (i = 0; i < nr; i++) {
		uint8_t *sqe = src + (size_t)i * ctx->sqe_size;
		if (ubpf_guard_sqe(sqe)) {
			deny_sqe(sqe, ctx->sqe_size, -EFAULT);
			ctx->sqes_faulted++;
		}
	}
}

/* int bpf_io_uring_submit_sqes(struct io_ring_ctx *ctx, u32 nr) */
uint64_t uringbpf_kf_submit_sqes(uint64_t ctx_addr, uint64_t nr64, uint64_t r3, uint64_t r4,
				 uint64_t r5)
{
	struct ub_loop_ctx *ctx = (struct ub_loop_ctx *)(uintptr_t)ctx_addr;
	uint32_t nr = (uint32_t)nr64;
	int64_t ret;

	(void)r3; (void)r4; (void)r5;
	if (!ctx_ok(ctx))
		return (uint64_t)(int64_t)-EINVAL;
	if (!nr)
		return 0;
	ctx->submit_calls++;
	if (ctx->py_submit) {
		if (ctx->sq_mode == UB_SQ_REWIND_EMU)
			check_private(ctx, nr);
		else {
			uint64_t filters = ctx->filters;
			ctx->filters = 0;        /* the Python path runs every filter itself */
			check_in_place(ctx, nr);
			ctx->filters = filters;
		}
		ret = ((int64_t (*)(uint64_t))(uintptr_t)ctx->py_submit)(nr);
		ctx->submitted_in_step = 1;
		if (ret > 0)
			ctx->sqes_submitted += (uint64_t)ret;
		return (uint64_t)(int64_t)(int32_t)ret;
	}
	switch (ctx->sq_mode) {
	case UB_SQ_REWIND_EMU:
		if (nr > ctx->sq_entries)
			nr = ctx->sq_entries;
		ret = submit_copied(ctx, (const uint8_t *)(uintptr_t)ctx->region_addr[UB_IOU_REGION_SQ], nr);
		break;
	default:
		nr = check_in_place(ctx, nr);
		ret = ub_enter(ctx->ring_fd, nr, 0, UB_ENTER_GETEVENTS);
		break;
	}
	ctx->submitted_in_step = 1;
	if (ret > 0)
		ctx->sqes_submitted += (uint64_t)ret;
	return (uint64_t)(int64_t)(int32_t)ret;
}

/* __u8 *bpf_io_uring_get_region(struct io_ring_ctx *ctx, __u32 region_id, size_t size) */
uint64_t uringbpf_kf_get_region(uint64_t ctx_addr, uint64_t id64, uint64_t size, uint64_t r4,
				uint64_t r5)
{
	struct ub_loop_ctx *ctx = (struct ub_loop_ctx *)(uintptr_t)ctx_addr;
	uint32_t id = (uint32_t)id64;

	(void)r4; (void)r5;
	if (!ctx_ok(ctx) || id >= UB_NR_REGIONS || !ctx->region_addr[id])
		return 0;
	if (size > ctx->region_size[id])
		return 0;
	return ctx->region_addr[id];
}

/* ---- signals --------------------------------------------------------------------
 * The kernel's loop returns -EINTR as soon as a signal is pending.  In userspace the
 * signal is delivered to Python's C-level handler (which only sets a flag), so while
 * a loop runs we chain a handler in front of it that also bumps a generation
 * counter; every iteration compares it, and a wait interrupted by the signal
 * returns -EINTR from io_uring_enter anyway.  Python then runs its handler (e.g.
 * KeyboardInterrupt) as soon as it regains control.
 */
#define UB_MAX_SIG 65
static volatile sig_atomic_t sig_generation;
static struct sigaction saved_actions[UB_MAX_SIG];
static int installed_count[UB_MAX_SIG];
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;

static void chain_handler(int sig, siginfo_t *info, void *uctx)
{
	struct sigaction *old;

	sig_generation++;
	if (sig <= 0 || sig >= UB_MAX_SIG)
		return;
	old = &saved_actions[sig];
	if (old->sa_flags & SA_SIGINFO) {
		if (old->sa_sigaction)
			old->sa_sigaction(sig, info, uctx);
	} else if (old->sa_handler != SIG_IGN && old->sa_handler != SIG_DFL) {
		old->sa_handler(sig);
	}
}

static void install_signals(const int *sigs, int n)
{
	int i;

	pthread_mutex_lock(&sig_lock);
	for (i = 0; i < n; i++) {
		int s = sigs[i];
		struct sigaction sa;
		if (s <= 0 || s >= UB_MAX_SIG)
			continue;
		if (installed_count[s]++)
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = chain_handler;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		if (sigaction(s, &sa, &saved_actions[s]))
			installed_count[s] = 0;
	}
	pthread_mutex_unlock(&sig_lock);
}

static void restore_signals(const int *sigs, int n)
{
	int i;

	pthread_mutex_lock(&sig_lock);
	for (i = 0; i < n; i++) {
		int s = sigs[i];
		if (s <= 0 || s >= UB_MAX_SIG || !installed_count[s])
			continue;
		if (--installed_count[s] == 0)
			sigaction(s, &saved_actions[s], NULL);
	}
	pthread_mutex_unlock(&sig_lock);
}

/* ---- the loop ------------------------------------------------------------------ */
static int64_t run_loop(struct ub_loop_ctx *ctx, ub_prog_fn step)
{
	struct ub_loop_params *lp = &ctx->params;
	uint64_t *args = ctx->args;
	sig_atomic_t gen = sig_generation;

	lp->cq_wait_idx = 0;
	args[0] = (uint64_t)(uintptr_t)ctx;
	args[1] = (uint64_t)(uintptr_t)lp;
	for (;;) {
		uint64_t r;
		int32_t ret, nr_wait;
		int eret;

		if (ctx->stop)
			return -ECANCELED;
		ctx->submitted_in_step = 0;
		r = step((uint64_t)(uintptr_t)args, 0, 0, 0, 0);
		ctx->steps++;
		if (ctx->abort)
			return UB_LOOP_ABORTED;
		if (ctx->error_word && *(volatile uint64_t *)(uintptr_t)ctx->error_word)
			return UB_LOOP_ABORTED;
		ret = (int32_t)r;
		if (ret == UB_IOU_LOOP_STOP)
			return 0;
		if (ret != UB_IOU_LOOP_CONTINUE)
			return -EINVAL;
		if (sig_generation != gen)
			return -EINTR;
		nr_wait = (int32_t)(lp->cq_wait_idx - load_acquire(ctx->cq_ktail));
		if (nr_wait > 0) {
			uint32_t need = lp->cq_wait_idx - load_acquire(ctx->cq_khead);
			ctx->waits++;
			eret = ub_wait(ctx, need);
		} else if (!ctx->submitted_in_step) {
			eret = ub_enter(ctx->ring_fd, 0, 0, UB_ENTER_GETEVENTS);
		} else {
			eret = 0;
		}
		if (eret == -ECANCELED)
			return -ECANCELED;
		if (eret == -EINTR || sig_generation != gen)
			return -EINTR;
		if (eret < 0 && eret != -ETIME && eret != -EBUSY && eret != -EAGAIN)
			return eret;
	}
}

/*
 * Run the loop until the program stops: 0 (STOP), -EINVAL (bad return), -EINTR
 * (signal), another -errno from io_uring_enter, or UB_LOOP_ABORTED (the Python
 * trampoline raised).  `signals` are the signal numbers that have Python handlers.
 */
int64_t uringbpf_loop_run(struct ub_loop_ctx *ctx, ub_prog_fn step, const int *signals,
			  int nr_signals)
{
	int64_t ret;

	if (!ctx_ok(ctx) || !step)
		return -EFAULT;
	if (ctx->running)
		return -EBUSY;
	/* io_run_loop refuses (-EEXIST) a task that may not run the ring's task work
	 * (SINGLE_ISSUER/DEFER_TASKRUN from another thread): ask the kernel the same way. */
	ret = ub_enter(ctx->ring_fd, 0, 0, UB_ENTER_GETEVENTS);
	if (ret == -EEXIST)
		return -EEXIST;
	/* running before stop is read, stop before running is read on the other side
	 * (uringbpf_loop_request_stop): one of the two threads sees the other */
	if (!__atomic_compare_exchange_n(&ctx->running, &(uint32_t){0}, 1, 0, __ATOMIC_SEQ_CST,
					 __ATOMIC_SEQ_CST))
		return -EBUSY;
	if (__atomic_load_n(&ctx->stop, __ATOMIC_SEQ_CST)) {
		__atomic_store_n(&ctx->running, 0, __ATOMIC_RELEASE);
		return -ECANCELED;
	}
	ctx->abort = 0;
	/* A JIT step (error_word is its jitrt context): own the instance for the whole run, as
	 * jitrt_gate would per step, so every step enters on the gate's fast path and another
	 * thread's call is refused for the duration (one stack per instance). */
	if (ctx->error_word) {
		struct jitrt_ctx *jc = (struct jitrt_ctx *)(uintptr_t)ctx->error_word;
		uint64_t self = (uint64_t)pthread_self(), free_owner = 0;
		if (!__atomic_compare_exchange_n(&jc->owner, &free_owner, self, 0, __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED) && free_owner != self) {
			__atomic_store_n(&ctx->running, 0, __ATOMIC_RELEASE);
			return -EBUSY;
		}
		install_signals(signals, nr_signals);
		ret = run_loop(ctx, step);
		restore_signals(signals, nr_signals);
		if (!free_owner)
			__atomic_store_n(&jc->owner, 0, __ATOMIC_RELEASE);
	} else {
		install_signals(signals, nr_signals);
		ret = run_loop(ctx, step);
		restore_signals(signals, nr_signals);
	}
	/* the last access to ring memory is behind us: a closing thread may now unmap it */
	__atomic_store_n(&ctx->running, 0, __ATOMIC_RELEASE);
	return ret;
}

/* Ask the loop to end (-ECANCELED at its next step or wait slice); returns whether it is
 * running now: the caller waits for `running` to drop before freeing what it uses. */
uint32_t uringbpf_loop_request_stop(struct ub_loop_ctx *ctx)
{
	__atomic_store_n(&ctx->stop, 1, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&ctx->running, __ATOMIC_SEQ_CST);
}

/* For tests and the Python filter path: the same filter check the native submit runs. */
int32_t uringbpf_filter_check(uint64_t table, const uint8_t *sqe)
{
	return ub_filter_check((const struct ub_filter_table *)(uintptr_t)table, sqe);
}

uint32_t uringbpf_cbpf_run(const struct ub_sock_filter *insns, uint32_t n, const uint8_t *ctx,
			   uint32_t ctx_len)
{
	return ub_cbpf_run(insns, n, ctx, ctx_len);
}

uint64_t uringbpf_loop_ctx_size(void)
{
	return sizeof(struct ub_loop_ctx);
}
