/*
 * The runtime's own memory is not user memory (issue #13 item 5).
 *
 * In the kernel a user pointer can never reach the BPF stack, map storage or the
 * verifier's view of them.  Here all of them live in the process, so every path by which
 * a program names a *user* address (helpers/kfuncs with user-pointer arguments, SQEs a
 * program submits) is checked against a registry of runtime-owned ranges: BPF stacks
 * (interpreter and JIT), JIT contexts and their tables, map and global-data storage with
 * their internal tables, ring-buffer mappings, the loop design's context.  A hit fails
 * the helper with -EFAULT, or the SQE with a CQE of -EFAULT, before the kernel sees it.
 *
 * The registry lives in maps.c (`ubpf_guard_registry`, the module every map and every
 * stack registration goes through).  Other native modules are separate shared objects
 * loaded RTLD_GLOBAL by native.load(), so they find it with dlsym at first use: until
 * maps.c is loaded nothing can have been registered, and "no overlap" is then true.
 *
 * Concurrency: registration (rare: a map, a stack, a context is created or freed) builds
 * a new sorted table and publishes it with one atomic store; readers pin the current
 * table with a reader count, and a writer frees a replaced table only once it has seen
 * the count at zero after publishing (no reader can still hold it then).
 */
#ifndef URINGBPF_GUARD_H
#define URINGBPF_GUARD_H

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

struct ubpf_guard_range {
	uint64_t base;
	uint64_t end;     /* exclusive */
	uint64_t maxend;  /* max(end) over this and every range before it (ranges may nest) */
};

struct ubpf_guard_table {
	uint64_t n;
	struct ubpf_guard_range r[];
};

struct ubpf_guard_registry {
	struct ubpf_guard_table *table;  /* current table (never NULL once initialised) */
	uint64_t readers;                /* checks in progress */
	uint64_t generation;             /* bumped on every change (tests, statistics) */
};

static inline struct ubpf_guard_registry *ubpf_guard_find(void)
{
	static struct ubpf_guard_registry *reg;
	struct ubpf_guard_registry *r = __atomic_load_n(&reg, __ATOMIC_ACQUIRE);

	if (!r) {
		r = (struct ubpf_guard_registry *)dlsym(RTLD_DEFAULT, "ubpf_guard_registry");
		if (r)
			__atomic_store_n(&reg, r, __ATOMIC_RELEASE);
	}
	return r;
}

/* 1 when [addr, addr+len) overlaps a runtime-owned range (len 0 counts as 1 byte; a range
 * that wraps around the address space always overlaps). */
static inline int ubpf_guard_overlaps(uint64_t addr, uint64_t len)
{
	struct ubpf_guard_registry *reg = ubpf_guard_find();
	struct ubpf_guard_table *t;
	uint64_t end = addr + (len ? len : 1);
	uint64_t lo, hi;
	int hit = 0;

	if (end < addr)
		return 1;
	if (!reg)
		return 0;
	__atomic_fetch_add(&reg->readers, 1, __ATOMIC_SEQ_CST);
	t = __atomic_load_n(&reg->table, __ATOMIC_SEQ_CST);
	if (t && t->n) {
		/* last range whose base < end: every overlapping range is at or before it */
		lo = 0;
		hi = t->n;
		while (lo < hi) {
			uint64_t mid = (lo + hi) / 2;
			if (t->r[mid].base < end)
				lo = mid + 1;
			else
				hi = mid;
		}
		hit = lo > 0 && t->r[lo - 1].maxend > addr;
	}
	__atomic_fetch_sub(&reg->readers, 1, __ATOMIC_RELEASE);
	return hit;
}

/* ---- SQEs a program submits ------------------------------------------------------- */

#define UBPF_SQE_OFF_OPCODE 0
#define UBPF_SQE_OFF_OFF 8       /* off / addr2 */
#define UBPF_SQE_OFF_ADDR 16     /* addr / splice_off_in */
#define UBPF_SQE_OFF_LEN 24
#define UBPF_SQE_OFF_ADDR3 48

struct ubpf_iovec {
	uint64_t base;
	uint64_t len;
};

struct ubpf_msghdr {            /* struct msghdr (x86-64) */
	uint64_t name;
	uint32_t namelen;
	uint32_t pad0;
	uint64_t iov;
	uint64_t iovlen;
	uint64_t control;
	uint64_t controllen;
	int32_t flags;
	uint32_t pad1;
};

static inline uint64_t ubpf_sqe_u64(const uint8_t *sqe, unsigned off)
{
	uint64_t v;
	memcpy(&v, sqe + off, 8);
	return v;
}

static inline uint32_t ubpf_sqe_u32(const uint8_t *sqe, unsigned off)
{
	uint32_t v;
	memcpy(&v, sqe + off, 4);
	return v;
}

/* Read `len` bytes of program-named memory without faulting (the kernel would fail an
 * unmapped pointer with -EFAULT; so do we).  Only vectored ops pay this syscall. */
static inline int ubpf_guard_read(void *dst, uint64_t src, uint64_t len)
{
	struct iovec local = { dst, len }, remote = { (void *)(uintptr_t)src, len };

	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

/* An array of `n` iovecs at `iov`: the array itself and every buffer it names. */
static inline int ubpf_guard_iovecs(uint64_t iov, uint64_t n)
{
	struct ubpf_iovec v[64];
	uint64_t i, done;

	if (!n)
		return 0;
	if (n > 1024)            /* > UIO_MAXIOV: the kernel fails it with -EINVAL itself */
		return 0;
	if (ubpf_guard_overlaps(iov, n * sizeof(struct ubpf_iovec)))
		return -EFAULT;
	for (done = 0; done < n; done += i) {
		uint64_t chunk = n - done < 64 ? n - done : 64;
		if (ubpf_guard_read(v, iov + done * sizeof(v[0]), chunk * sizeof(v[0])))
			return -EFAULT;
		for (i = 0; i < chunk; i++)
			if (v[i].len && ubpf_guard_overlaps(v[i].base, v[i].len))
				return -EFAULT;
	}
	return 0;
}

/* struct msghdr at `addr`: the header, its name, control and iovec array (+ buffers). */
static inline int ubpf_guard_msghdr(uint64_t addr)
{
	struct ubpf_msghdr m;

	if (ubpf_guard_overlaps(addr, sizeof(m)))
		return -EFAULT;
	if (ubpf_guard_read(&m, addr, sizeof(m)))
		return -EFAULT;
	if ((m.name && m.namelen && ubpf_guard_overlaps(m.name, m.namelen)) ||
	    (m.control && m.controllen && ubpf_guard_overlaps(m.control, m.controllen)))
		return -EFAULT;
	return ubpf_guard_iovecs(m.iov, m.iovlen);
}

/* Opcodes (enum io_uring_op) whose SQE names no memory at all: nothing to check.  A bit
 * mask, because this test runs for every SQE a program submits (NOPs included). */
#define UBPF_OP_BIT(op) (1ull << (op))
#define UBPF_SQE_NO_MEMORY                                                                 \
	(UBPF_OP_BIT(0) /* NOP */ | UBPF_OP_BIT(3) /* FSYNC */ | UBPF_OP_BIT(4) /* READ_FIXED */ | \
	 UBPF_OP_BIT(5) /* WRITE_FIXED */ | UBPF_OP_BIT(6) /* POLL_ADD */ |                      \
	 UBPF_OP_BIT(7) /* POLL_REMOVE */ | UBPF_OP_BIT(8) /* SYNC_FILE_RANGE */ |               \
	 UBPF_OP_BIT(14) /* ASYNC_CANCEL (addr = user_data) */ | UBPF_OP_BIT(17) /* FALLOCATE */ | \
	 UBPF_OP_BIT(19) /* CLOSE */ | UBPF_OP_BIT(24) /* FADVISE */ | UBPF_OP_BIT(30) /* SPLICE */ | \
	 UBPF_OP_BIT(32) /* REMOVE_BUFFERS */ | UBPF_OP_BIT(33) /* TEE */ |                      \
	 UBPF_OP_BIT(34) /* SHUTDOWN */ | UBPF_OP_BIT(40) /* MSG_RING */ | UBPF_OP_BIT(45) /* SOCKET */ | \
	 UBPF_OP_BIT(49) /* READ_MULTISHOT (provided buffers) */ |                              \
	 UBPF_OP_BIT(53) /* FIXED_FD_INSTALL */ | UBPF_OP_BIT(54) /* FTRUNCATE */ |             \
	 UBPF_OP_BIT(56) /* LISTEN */ | UBPF_OP_BIT(62) /* NOP128 */)

static inline int ubpf_sqe_no_memory(uint8_t op)
{
	return op < 64 && ((UBPF_SQE_NO_MEMORY >> op) & 1);
}

/*
 * 0, or -EFAULT when the SQE would make the kernel read or write runtime-owned memory.
 * Explicit rules for the data-moving opcodes; every other opcode that can carry a pointer
 * has its addr, addr2/off and addr3 fields checked as pointers to `len` (at least 1) bytes
 * (paths, timespecs, sockaddrs, futex words, statx buffers, xattr names and values...).
 * Fixed-buffer ops are excepted: their memory was registered by the application.
 */
static int ubpf_guard_sqe_slow(const uint8_t *sqe);

static inline int ubpf_guard_sqe(const uint8_t *sqe)
{
	if (__builtin_expect(ubpf_sqe_no_memory(sqe[UBPF_SQE_OFF_OPCODE]), 1))
		return 0;
	return ubpf_guard_sqe_slow(sqe);
}

static __attribute__((noinline, unused)) int ubpf_guard_sqe_slow(const uint8_t *sqe)
{
	uint8_t op = sqe[UBPF_SQE_OFF_OPCODE];
	uint64_t addr = ubpf_sqe_u64(sqe, UBPF_SQE_OFF_ADDR);
	uint64_t off = ubpf_sqe_u64(sqe, UBPF_SQE_OFF_OFF);
	uint64_t addr3 = ubpf_sqe_u64(sqe, UBPF_SQE_OFF_ADDR3);
	uint32_t len = ubpf_sqe_u32(sqe, UBPF_SQE_OFF_LEN);
	uint8_t flags = sqe[1];

	if (!ubpf_guard_find())
		return 0;
	switch (op) {
	case 22: /* READ */ case 23: /* WRITE */ case 26: /* SEND */ case 27: /* RECV */
	case 47: /* SEND_ZC */
		if (flags & 32 /* IOSQE_BUFFER_SELECT: addr is unused */)
			return 0;
		return len && ubpf_guard_overlaps(addr, len) ? -EFAULT : 0;
	case 1: /* READV */ case 2: /* WRITEV */
		if (flags & 32)
			return 0;
		return ubpf_guard_iovecs(addr, len);
	case 9: /* SENDMSG */ case 10: /* RECVMSG */ case 48: /* SENDMSG_ZC */
		return ubpf_guard_msghdr(addr);
	case 60: /* READV_FIXED */ case 61: /* WRITEV_FIXED */
		/* the iovec array is read (offsets into a registered buffer): only it is ours to check */
		return ubpf_guard_overlaps(addr, (uint64_t)len * sizeof(struct ubpf_iovec)) ? -EFAULT : 0;
	case 21: /* STATX: addr = path, addr2 = struct statx (256 bytes) written */
		if (off && ubpf_guard_overlaps(off, 256))
			return -EFAULT;
		break;
	case 13: /* ACCEPT: addr = sockaddr (<= sizeof sockaddr_storage) written, addr2 = len */
		if ((addr && ubpf_guard_overlaps(addr, 128)) || (off && ubpf_guard_overlaps(off, 4)))
			return -EFAULT;
		return 0;
	case 31: /* PROVIDE_BUFFERS: nbufs (in fd) buffers of len bytes at addr, written later */
		return addr && ubpf_guard_overlaps(addr, (uint64_t)len *
						   (uint64_t)(ubpf_sqe_u32(sqe, 4) ? ubpf_sqe_u32(sqe, 4) : 1))
			? -EFAULT : 0;
	case 58: /* EPOLL_WAIT: len struct epoll_event (12 bytes) written */
		return addr && ubpf_guard_overlaps(addr, (uint64_t)(len ? len : 1) * 12) ? -EFAULT : 0;
	case 51: /* WAITID: addr2 = siginfo_t (128 bytes) written */
		if (off && ubpf_guard_overlaps(off, 128))
			return -EFAULT;
		return 0;
	case 52: /* FUTEX_WAITV: len struct futex_waitv (24 bytes) */
		return addr && ubpf_guard_overlaps(addr, (uint64_t)(len ? len : 1) * 24) ? -EFAULT : 0;
	}
	/* Other pointers: at least 16 bytes (a timespec, an int pair, a futex word, ...). */
	if ((addr && ubpf_guard_overlaps(addr, len > 16 ? len : 16)) ||
	    (off && ubpf_guard_overlaps(off, 16)) ||
	    (addr3 && ubpf_guard_overlaps(addr3, 16)))
		return -EFAULT;
	return 0;
}
#endif
