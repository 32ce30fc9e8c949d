/*
 * jitrt: the small native runtime of uringbpf's JIT.
 *
 * JIT code keeps one `struct jitrt_ctx` per compiled program (its address is baked into the
 * code as a constant).  The context carries the error word that every engine-level failure
 * sets (a Python helper raised, a call went too deep, a checked access failed), the program's
 * stack pointer (frames are carved from one buffer so that helpers see the stack as an
 * ordinary memory region) and, in checked mode, the table of regions the program may touch.
 *
 * Why C and not IR: the checked-mode test is a loop over a small table that is refreshed from
 * Python between runs; keeping it in one C function keeps the generated IR small and lets
 * a native driver share the same check.
 */
#include <stdint.h>
#include <stddef.h>
#include <pthread.h>
#include <time.h>

#include "jitrt.h"

static int region_allows(const struct jitrt_region *r, uint64_t addr, uint64_t end, uint64_t write)
{
	if (addr < r->base || end > r->end)
		return 0;
	return !write || r->writable;
}

uint64_t jitrt_check(struct jitrt_ctx *c, uint64_t addr, uint64_t size, uint64_t write, uint64_t pc)
{
	uint64_t end = addr + size;

	if (end >= addr) {
		/* Live stack frames: from the current stack pointer up to the top of the buffer. */
		if (addr >= c->sp && end <= c->stack_hi)
			return 0;
		for (uint64_t i = 0; i < c->nregions; i++)
			if (region_allows(&c->regions[i], addr, end, write))
				return 0;
		/*
		 * A region may have been added since the table was built: ask the owner.  The
		 * answer counts only if the callback did not fail: a Ctrl-C that fires as its
		 * Python frame starts leaves C an undefined return value, and the failure is
		 * known only from the error word its on_error sets (callbacks.route_escapes).
		 */
		if (c->miss && c->miss(addr, size, write) && !c->error)
			return 0;
	}
	if (!c->error) {
		c->error = JITRT_ERR_MEMORY;
		c->err_pc = pc;
		c->err_addr = addr;
		c->err_size = size;
		c->err_write = write;
	}
	return 1;
}

/*
 * Every entry into an instance from outside its own code (fn.address, a callback address
 * that bpf_loop calls, a native driver) passes through here.  One instance has one stack
 * and one error word, so it runs on one thread at a time (issue #13 item 8): the first
 * entry on a thread claims the context, entries nested on that thread (callbacks) go
 * straight through, and an entry from another thread while it is claimed is refused —
 * r0 = 0, nothing runs, and the refusing thread's jitrt_take_refused() says so (the
 * Python caller raises, the loop driver stops with -EBUSY).  Threads that want to run one
 * program concurrently load it once per thread (each load is its own instance).  The
 * owner is pthread_self(): a native driver may claim the context for a whole run
 * (designs/loop/loop.c does), so its per-step entries take the fast path.
 */
typedef uint64_t (*jitrt_fn6)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
static __thread uint64_t thread_refused;

/*
 * Run t->fn on this thread's claim of the instance. The entry tests every function had in
 * its own code are made here, once per entry through a thunk (direct BPF-to-BPF calls test
 * the room for a frame at the call and never run with the error word set): a run already
 * abandoned (a helper calling a callback again after an error) does nothing, and an entry
 * with no room for the function's frame fails with JITRT_ERR_DEPTH_CALLBACK.
 */
static inline uint64_t gate_enter(struct jitrt_ctx *c, const struct jitrt_thunk *t,
				  uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	if (c->error)
		return 0;
	if (c->sp - t->frame < c->stack_lo) {   /* the same test as a call site's */
		c->error = JITRT_ERR_DEPTH_CALLBACK;
		c->err_pc = t->pc;
		return 0;
	}
	return ((jitrt_fn6)(uintptr_t)t->fn)(a1, a2, a3, a4, a5, (uint64_t)(uintptr_t)c);
}

uint64_t jitrt_gate(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
		    const struct jitrt_thunk *t)
{
	struct jitrt_ctx *c = t->ctx;
	uint64_t self = (uint64_t)pthread_self();   /* unique per live thread */
	uint64_t owner = __atomic_load_n(&c->owner, __ATOMIC_ACQUIRE);
	uint64_t r;

	if (owner == self)
		return gate_enter(c, t, a1, a2, a3, a4, a5);
	owner = 0;
	if (!__atomic_compare_exchange_n(&c->owner, &owner, self, 0, __ATOMIC_ACQUIRE,
					 __ATOMIC_RELAXED)) {
		thread_refused++;
		__atomic_fetch_add(&c->refused, 1, __ATOMIC_RELAXED);
		return 0;
	}
	r = gate_enter(c, t, a1, a2, a3, a4, a5);
	__atomic_store_n(&c->owner, 0, __ATOMIC_RELEASE);
	return r;
}

/* Entries this thread had refused since the last call (and clear the count). */
uint64_t jitrt_take_refused(void)
{
	uint64_t n = thread_refused;
	thread_refused = 0;
	return n;
}

/* The context layout, for the Python side to assert that it agrees with this file. */
uint64_t jitrt_ctx_size(void)
{
	return sizeof(struct jitrt_ctx);
}

/* The thunk descriptor's size, for the same check. */
uint64_t jitrt_thunk_size(void)
{
	return sizeof(struct jitrt_thunk);
}

/*
 * Run a program `repeat` times from native code and measure the total time, so that
 * `uringbpf run` and the benchmarks time the engine and not the ctypes call around it.
 * Stops early when the error word (if given) becomes non-zero; returns the runs done.
 */
uint64_t jitrt_repeat(jitrt_prog_fn fn, const uint64_t *args, uint64_t repeat,
		      const volatile uint64_t *error_word, uint64_t *r0_out, uint64_t *ns_out)
{
	struct timespec t0, t1;
	uint64_t r0 = 0, done = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (done < repeat) {
		r0 = fn(args[0], args[1], args[2], args[3], args[4]);
		done++;
		if (error_word && *error_word)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*r0_out = r0;
	*ns_out = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ull + (uint64_t)t1.tv_nsec -
		  (uint64_t)t0.tv_nsec;
	return done;
}
