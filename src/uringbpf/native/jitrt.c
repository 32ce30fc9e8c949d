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
		/* A region may have been added since the table was built: ask the owner. */
		if (c->miss && c->miss(addr, size, write))
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

/* The context layout, for the Python side to assert that it agrees with this file. */
uint64_t jitrt_ctx_size(void)
{
	return sizeof(struct jitrt_ctx);
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
