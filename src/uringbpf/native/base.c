/* uringbpf base helpers: native twins of the generic BPF helpers (time, random, probe
 * reads, spin locks, bpf_loop). JIT code calls these directly; the interpreter's Python
 * implementations call the same functions through ctypes after checking its regions.
 * Every function takes and returns uint64_t registers. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"

static uint64_t now(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t ubpf_helper_ktime_get_ns(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a1; (void)a2; (void)a3; (void)a4; (void)a5;
	return now(CLOCK_MONOTONIC);
}

uint64_t ubpf_helper_ktime_get_boot_ns(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a1; (void)a2; (void)a3; (void)a4; (void)a5;
	return now(CLOCK_BOOTTIME);
}

uint64_t ubpf_helper_ktime_get_coarse_ns(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a1; (void)a2; (void)a3; (void)a4; (void)a5;
	return now(CLOCK_MONOTONIC_COARSE);
}

static __thread uint64_t rnd_state;

uint64_t ubpf_helper_get_prandom_u32(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a1; (void)a2; (void)a3; (void)a4; (void)a5;
	if (!rnd_state) {
		if (getrandom(&rnd_state, sizeof(rnd_state), 0) != sizeof(rnd_state) || !rnd_state)
			rnd_state = now(CLOCK_MONOTONIC) | 1;
	}
	/* xorshift64* */
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return (uint32_t)((rnd_state * 0x2545F4914F6CDD1DULL) >> 32);
}

uint64_t ubpf_helper_get_smp_processor_id(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a1; (void)a2; (void)a3; (void)a4; (void)a5;
	return 0; /* one CPU's worth of per-CPU state (see maps.py) */
}

uint64_t ubpf_helper_get_current_pid_tgid(uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a1; (void)a2; (void)a3; (void)a4; (void)a5;
	return ((uint64_t)getpid() << 32) | (uint32_t)syscall(SYS_gettid);
}

/* A read of our own memory that fails with -EFAULT instead of crashing (the kernel's
 * probe_read/copy_from_user contract): process_vm_readv on ourselves checks the source. */
static int64_t safe_read(void *dst, const void *src, uint64_t size)
{
	if (size == 0)
		return 0;
	struct iovec local = { dst, size }, remote = { (void *)src, size };
	ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (n == (ssize_t)size)
		return 0;
	if (n < 0 && errno == ENOSYS) { /* no process_vm_readv (seccomp): trust the caller */
		memcpy(dst, src, size);
		return 0;
	}
	memset(dst, 0, size);
	return -EFAULT;
}

uint64_t ubpf_helper_probe_read(uint64_t dst, uint64_t size, uint64_t src, uint64_t a4, uint64_t a5)
{
	(void)a4; (void)a5;
	return (uint64_t)safe_read((void *)dst, (const void *)src, (uint32_t)size);
}

/* probe_read_*_str: copy up to size-1 bytes and a NUL; returns the length with the NUL. */
uint64_t ubpf_helper_probe_read_str(uint64_t dst, uint64_t size, uint64_t src, uint64_t a4, uint64_t a5)
{
	(void)a4; (void)a5;
	uint8_t *d = (uint8_t *)dst;
	uint32_t n = (uint32_t)size;
	if (n == 0)
		return 0;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint32_t done = 0;
	while (done < n - 1) {
		uint64_t at = src + done;
		uint64_t chunk = page - (at % page);
		if (chunk > n - 1 - done)
			chunk = n - 1 - done;
		if (safe_read(d + done, (const void *)at, chunk) < 0) {
			memset(d, 0, n);
			return (uint64_t)-EFAULT;
		}
		void *nul = memchr(d + done, 0, chunk);
		if (nul)
			return (uint64_t)((uint8_t *)nul - d + 1);
		done += (uint32_t)chunk;
	}
	d[n - 1] = 0;
	return n;
}

/* The user-memory forms (probe_read_user, probe_read_user_str, copy_from_user): the
 * source is a user address, and the runtime's own memory (BPF stacks, maps, JIT state) is
 * not user memory, as kernel memory is not for the kernel's helpers (guard.h). */
uint64_t ubpf_helper_probe_read_user(uint64_t dst, uint64_t size, uint64_t src, uint64_t a4, uint64_t a5)
{
	(void)a4; (void)a5;
	if ((uint32_t)size && ubpf_guard_overlaps(src, (uint32_t)size)) {
		memset((void *)dst, 0, (uint32_t)size);
		return (uint64_t)-EFAULT;
	}
	return (uint64_t)safe_read((void *)dst, (const void *)src, (uint32_t)size);
}

uint64_t ubpf_helper_probe_read_user_str(uint64_t dst, uint64_t size, uint64_t src, uint64_t a4, uint64_t a5)
{
	(void)a4; (void)a5;
	/* a string may end anywhere before `size`; refusing the whole window is the safe side */
	if ((uint32_t)size && ubpf_guard_overlaps(src, (uint32_t)size)) {
		memset((void *)dst, 0, (uint32_t)size);
		return (uint64_t)-EFAULT;
	}
	return ubpf_helper_probe_read_str(dst, size, src, 0, 0);
}

uint64_t ubpf_helper_spin_lock(uint64_t lock, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a2; (void)a3; (void)a4; (void)a5;
	volatile uint32_t *l = (volatile uint32_t *)lock;
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(l, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
	return 0;
}

/* For the interpreter: take the lock within `max_spins` attempts (1) or give up (0) so a
 * program that never unlocks is reported instead of hanging the process. */
int ubpf_spin_trylock(uint64_t lock, uint64_t max_spins)
{
	volatile uint32_t *l = (volatile uint32_t *)lock;
	for (uint64_t i = 0; i < max_spins; i++) {
		if (!__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
			return 1;
		__builtin_ia32_pause();
	}
	return 0;
}

uint64_t ubpf_helper_spin_unlock(uint64_t lock, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a2; (void)a3; (void)a4; (void)a5;
	__atomic_store_n((volatile uint32_t *)lock, 0, __ATOMIC_RELEASE);
	return 0;
}

typedef uint64_t (*bpf_fn5)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

/* bpf_loop(nr, callback, ctx, flags) for JIT code: callback is a native function pointer
 * (the JIT-compiled subprogram); returns the number of iterations run.
 *
 * Which of the kernel's two bpf_loop bodies: the verifier inlines every bpf_loop call
 * whose flags are a known zero (inline_bpf_loop(), kernel/bpf/verifier.c — what
 * `bpf_loop(n, cb, ctx, 0)` always is), and the inlined code checks the whole 64-bit r1
 * (`if r1 <= BPF_MAX_LOOPS` as a 64-bit jump) and fails with `w0 = -E2BIG`, a 32-bit
 * move: r0 = 0xfffffff9.  The out-of-line helper (flags not provably zero) takes nr as a
 * u32; with flags != 0 both forms fail with -EINVAL first.  We follow the inlined form,
 * on both engines (issue #13 item 6; docs/jit.md). */
uint64_t ubpf_helper_loop(uint64_t nr, uint64_t fn, uint64_t ctx, uint64_t flags, uint64_t a5)
{
	(void)a5;
	if (flags)
		return (uint64_t)-EINVAL;
	if (nr > (1ULL << 23))
		return (uint32_t)-E2BIG;
	bpf_fn5 cb = (bpf_fn5)fn;
	uint64_t i;
	for (i = 0; i < nr; i++)
		if (cb(i, ctx, 0, 0, 0))
			return i + 1;
	return i;
}

/* Open-coded numeric iterators (kfuncs bpf_iter_num_new/next/destroy, used by bpf_for()).
 * The 8-byte struct bpf_iter_num holds {int cur; int end;} as in the kernel. */
struct ubpf_iter_num {
	int32_t cur;
	int32_t end;
};

#define UBPF_MAX_LOOPS (8 * 1024 * 1024)

uint64_t ubpf_kfunc_iter_num_new(uint64_t it, uint64_t start, uint64_t end, uint64_t a4, uint64_t a5)
{
	(void)a4; (void)a5;
	struct ubpf_iter_num *s = (struct ubpf_iter_num *)it;
	int32_t st = (int32_t)start, en = (int32_t)end;
	if (st > en) {
		s->cur = s->end = 0;
		return (uint64_t)-EINVAL;
	}
	if ((int64_t)en - st > UBPF_MAX_LOOPS) {
		s->cur = s->end = 0;
		return (uint64_t)-E2BIG;
	}
	s->cur = (int32_t)((uint32_t)st - 1u); /* next() pre-increments; wraps as the kernel's */
	s->end = en;
	return 0;
}

uint64_t ubpf_kfunc_iter_num_next(uint64_t it, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a2; (void)a3; (void)a4; (void)a5;
	struct ubpf_iter_num *s = (struct ubpf_iter_num *)it;
	/* as the kernel: cur + 1 in int (wrapping, -fno-strict-overflow), then widened; for
	 * start == INT_MIN, cur = start - 1 wrapped to INT_MAX and the first next() yields
	 * INT_MIN (a 64-bit cur + 1 ended such a loop before its first step) */
	int32_t nxt = (int32_t)((uint32_t)s->cur + 1u);
	if ((int64_t)nxt >= s->end) {
		s->cur = s->end = 0;
		return 0;
	}
	s->cur = nxt;
	return (uint64_t)&s->cur;
}

uint64_t ubpf_kfunc_iter_num_destroy(uint64_t it, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a2; (void)a3; (void)a4; (void)a5;
	struct ubpf_iter_num *s = (struct ubpf_iter_num *)it;
	s->cur = s->end = 0;
	return 0;
}
