/*
 * The per-program context of JIT code (see jitrt.c and bpf/jit.py, which mirrors this layout).
 *
 * A native driver that calls JIT code through its entry address checks `error` after each
 * call: non-zero means the run was abandoned (r0 is then 0) and the owning JitFunction holds
 * the details; the driver hands control back to Python, which raises them.
 */
#ifndef URINGBPF_JITRT_H
#define URINGBPF_JITRT_H

#include <stdint.h>

enum {
	JITRT_OK = 0,
	JITRT_ERR_MEMORY = 1,        /* checked mode: an access outside every region */
	JITRT_ERR_HELPER = 2,        /* a helper/kfunc implemented in Python raised */
	JITRT_ERR_DEPTH = 3,         /* BPF-to-BPF calls nested deeper than the stack allows */
	JITRT_ERR_CALLX = 4,         /* callx to something that is neither a helper nor a subprogram */
	JITRT_ERR_NO_HELPER = 5,     /* call of a helper id / kfunc that is not in the table */
	JITRT_ERR_FELL_OFF = 6,      /* execution ran past the last instruction of a function */
	JITRT_UNWIND = 7,            /* not an error: the conformance "unwind" helper stopped it */
	JITRT_ERR_DEPTH_CALLBACK = 8,/* a function entered through its thunk found no free frame */
	JITRT_ERR_LEGACY = 9,        /* LD ABS/IND reached */
	JITRT_ERR_LIMIT = 10,        /* checked mode: instruction budget of the run spent */
};

struct jitrt_region {
	uint64_t base;
	uint64_t end;
	uint64_t writable;
};

struct jitrt_ctx {
	uint64_t error;       /* 0, or one of JITRT_ERR_* (the first error wins) */
	uint64_t err_pc;      /* instruction index of the failure */
	uint64_t err_addr;    /* memory errors: address, size, 1 for a store */
	uint64_t err_size;
	uint64_t err_write;
	uint64_t sp;          /* lowest byte of the deepest live frame (frames grow down) */
	uint64_t stack_lo;    /* bottom of the stack buffer: a frame below this is too deep */
	uint64_t stack_hi;    /* top of the stack buffer: r10 of the entry function */
	struct jitrt_region *regions;
	uint64_t nregions;
	uint64_t (*miss)(uint64_t addr, uint64_t size, uint64_t write);
	uint64_t *vars;       /* instance values the shared code loads (maps, callbacks, thunks) */
	int64_t budget;       /* checked mode: instructions left in this run */
	int64_t insn_limit;   /* checked mode: budget of a run (set at the outermost entry) */
	uint64_t owner;       /* thread running the instance (jitrt_gate), 0 when idle */
	uint64_t refused;     /* entries refused because another thread owned the instance */
};

/* What a thunk hands jitrt_gate: the instance's context and the function to run. */
struct jitrt_thunk {
	struct jitrt_ctx *ctx;
	uint64_t fn;          /* uint64_t (*)(r1..r5, uint64_t ctx): the shared machine code */
	uint64_t pc;          /* the function's first instruction (names a refused entry) */
	uint64_t frame;       /* bytes of stack one frame of the function takes */
};

uint64_t jitrt_gate(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
		    const struct jitrt_thunk *t);
uint64_t jitrt_take_refused(void);
uint64_t jitrt_ctx_size(void);
uint64_t jitrt_thunk_size(void);

typedef uint64_t (*jitrt_prog_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

uint64_t jitrt_repeat(jitrt_prog_fn fn, const uint64_t *args, uint64_t repeat,
		      const volatile uint64_t *error_word, uint64_t *r0_out, uint64_t *ns_out);
uint64_t jitrt_check(struct jitrt_ctx *c, uint64_t addr, uint64_t size, uint64_t write, uint64_t pc);

#endif
