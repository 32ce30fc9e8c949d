/* uringbpf maps: array, hash, per-CPU array/hash (one CPU), ring buffer and arena.
 *
 * One implementation for both engines: the JIT calls the ubpf_helper_* functions directly,
 * the interpreter and Python call them through ctypes. Error codes are the kernel's
 * (negative errno). See maps.h for the struct the program's map pointer points to. */
#define _GNU_SOURCE
#include "maps.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define BPF_ANY 0
#define BPF_NOEXIST 1
#define BPF_EXIST 2
#define BPF_F_LOCK 4
#define RB_BUSY (1U << 31)
#define RB_DISCARD (1U << 30)
#define RB_HDR 8

static uint64_t page_size(void) { return (uint64_t)sysconf(_SC_PAGESIZE); }
static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

static void map_lock(struct ubpf_map *m)
{
	while (__atomic_test_and_set((void *)&m->lock, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&m->lock, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
}

static void map_unlock(struct ubpf_map *m) { __atomic_clear((void *)&m->lock, __ATOMIC_RELEASE); }

static void *anon_map(uint64_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static int is_array(const struct ubpf_map *m)
{
	return m->type == UBPF_MAP_ARRAY || m->type == UBPF_MAP_PERCPU_ARRAY;
}

static int is_hash(const struct ubpf_map *m)
{
	return m->type == UBPF_MAP_HASH || m->type == UBPF_MAP_PERCPU_HASH;
}

static int ringbuf_init(struct ubpf_map *m)
{
	uint64_t ps = page_size(), size = m->max_entries;
	if (size < ps || (size & (size - 1)) || size % ps)
		return -EINVAL;
	int fd = memfd_create("ubpf-ringbuf", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	/* two control pages, then the data mapped twice back to back so a record that wraps
	 * around the end is still contiguous (as in the kernel) */
	uint64_t total = 2 * ps + 2 * size;
	uint8_t *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		close(fd);
		return -ENOMEM;
	}
	if (mmap(base + 2 * ps, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
	    mmap(base + 2 * ps + size, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
		munmap(base, total);
		close(fd);
		return -ENOMEM;
	}
	close(fd);
	m->rb_base = base;
	m->rb_len = total;
	m->rb_consumer_pos = (volatile uint64_t *)base;
	m->rb_producer_pos = (volatile uint64_t *)(base + ps);
	m->rb_data = base + 2 * ps;
	m->rb_mask = size - 1;
	/* the producer page also records the map, so a commit can find it from a record */
	*(struct ubpf_map **)(base + ps + 8) = m;
	return 0;
}

#define FOUR_G (1ULL << 32)
#define BPF_F_MMAPABLE (1U << 10)
#define BPF_F_SEGV_ON_FAULT (1U << 15)
#define BPF_F_NO_USER_CONV (1U << 18)

/* Bytes below and above an arena's 4 GiB window that stay mapped: an access is
 * window + (u32)reg + s16 off + up to 8 bytes, so 32 KiB each side would do; 64 KiB (the
 * kernel's GUARD_SZ, at least two pages) keeps every such address in our reservation. */
static uint64_t arena_guard(void)
{
	uint64_t ps = page_size();
	return ps * 2 > 65536 ? ps * 2 : 65536;
}

/* The arena: one 4 GiB window (plus guards), reserved MAP_NORESERVE and readable and
 * writable in full, so that window + (u32)pointer + off (the kernel's PROBE_MEM32 address,
 * what both engines compute) is always mapped memory of this arena.  The pages start at
 * user_vm_start (map_extra when given, as the kernel's arena takes it from user space;
 * else the window's start); the window is the 4 GiB-aligned block holding them, so the
 * low 32 bits of a user address index it exactly like the kernel's kern_vm area. */
static int arena_init(struct ubpf_map *m, uint64_t map_extra)
{
	uint64_t ps = page_size(), guard = arena_guard();
	uint64_t len = (uint64_t)m->max_entries * ps;
	/* the kernel's arena_map_alloc checks, in its order and with its error codes */
	if (m->max_entries == 0 || !(m->map_flags & BPF_F_MMAPABLE) ||
	    (m->map_flags & ~(BPF_F_SEGV_ON_FAULT | BPF_F_MMAPABLE | BPF_F_NO_USER_CONV)))
		return -EINVAL;
	if (map_extra & (ps - 1))
		return -EINVAL;
	if (len > FOUR_G)
		return -E2BIG;
	if ((map_extra >> 32) != ((map_extra + len - 1) >> 32))
		return -ERANGE;
	uint64_t rlen = FOUR_G + 2 * guard;
	uint8_t *window;
	if (map_extra) {
		window = (uint8_t *)(map_extra & ~(FOUR_G - 1));
		/* never replace a mapping the process already has (libbpf's MAP_FIXED would) */
		void *r = mmap(window - guard, rlen, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
		if (r == MAP_FAILED)
			return errno == EEXIST ? -EBUSY : -ENOMEM;
		if (r != (void *)(window - guard)) { /* a kernel without FIXED_NOREPLACE */
			munmap(r, rlen);
			return -EBUSY;
		}
	} else {
		/* reserve 4 GiB more than needed, keep the aligned part, give the rest back */
		uint64_t big = rlen + FOUR_G;
		uint8_t *r = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (r == MAP_FAILED)
			return -ENOMEM;
		window = (uint8_t *)round_up((uint64_t)r + guard, FOUR_G);
		if (mmap(window - guard, rlen, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED) {
			munmap(r, big);
			return -ENOMEM;
		}
		if (window - guard > r)
			munmap(r, (uint64_t)(window - guard - r));
		if (r + big > window - guard + rlen)
			munmap(window - guard + rlen, (uint64_t)(r + big - (window - guard + rlen)));
	}
	m->arena_page_used = calloc(m->max_entries, 1);
	if (!m->arena_page_used) {
		munmap(window - guard, rlen);
		return -ENOMEM;
	}
	m->reserve_addr = (uint64_t)(window - guard);
	m->reserve_len = rlen;
	m->arena_base = map_extra ? (uint8_t *)map_extra : window;
	m->arena_len = len;
	return 0;
}

/* The kernel's compute_pgoff: the page of user address `uaddr` (any upper half). */
static uint64_t arena_pgoff(const struct ubpf_map *m, uint64_t uaddr)
{
	return (uint32_t)(uaddr - (uint32_t)(uint64_t)m->arena_base) / page_size();
}

int ubpf_guard_add(uint64_t base, uint64_t len);
int ubpf_guard_remove(uint64_t base, uint64_t len);

/* Register (or forget) every piece of a map's storage as runtime-owned memory: the struct,
 * values, hash tables, the ring buffer's mapping, the arena's page bitmap.  The arena's
 * pages are user memory in the kernel too (mapped into the process), so they stay usable. */
static void map_guard(struct ubpf_map *m, int add)
{
	const struct { const void *p; uint64_t len; } parts[] = {
		{ m, sizeof(*m) },
		{ m->values, m->values_len },
		{ m->buckets, m->buckets ? sizeof(int32_t) * (uint64_t)m->n_buckets : 0 },
		{ m->next, m->next ? sizeof(int32_t) * (uint64_t)m->max_entries : 0 },
		{ m->keys, m->keys ? (uint64_t)m->max_entries * m->key_size : 0 },
		{ m->used, m->used ? (uint64_t)m->max_entries : 0 },
		{ m->rb_base, m->rb_len },
		{ m->arena_page_used, m->arena_page_used ? (uint64_t)m->max_entries : 0 },
	};
	for (unsigned i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (!parts[i].p || !parts[i].len)
			continue;
		if (add)
			ubpf_guard_add((uint64_t)(uintptr_t)parts[i].p, parts[i].len);
		else
			ubpf_guard_remove((uint64_t)(uintptr_t)parts[i].p, parts[i].len);
	}
}

static void map_free(struct ubpf_map *m)
{
	if (m->guarded)
		map_guard(m, 0);
	if (m->values)
		munmap(m->values, m->values_len);
	free(m->buckets);
	free(m->next);
	free(m->keys);
	free(m->used);
	if (m->rb_base)
		munmap(m->rb_base, m->rb_len);
	if (m->reserve_addr)
		munmap((void *)m->reserve_addr, m->reserve_len);
	free(m->arena_page_used);
	m->magic = 0;
	free(m);
}

/* Create a map; returns 0 and stores it in *out, or a negative errno. */
int ubpf_map_create_extra(uint32_t type, uint32_t key_size, uint32_t value_size,
			  uint32_t max_entries, uint32_t map_flags, uint64_t map_extra,
			  struct ubpf_map **out);

int ubpf_map_create(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
		    uint32_t map_flags, struct ubpf_map **out)
{
	return ubpf_map_create_extra(type, key_size, value_size, max_entries, map_flags, 0, out);
}

/* Create a map with bpf_attr's map_extra (an arena's user address; 0: none). */
int ubpf_map_create_extra(uint32_t type, uint32_t key_size, uint32_t value_size,
			  uint32_t max_entries, uint32_t map_flags, uint64_t map_extra,
			  struct ubpf_map **out)
{
	struct ubpf_map *m = calloc(1, sizeof(*m));
	int err = 0;
	if (!m)
		return -ENOMEM;
	m->magic = UBPF_MAP_MAGIC;
	m->type = type;
	m->key_size = key_size;
	m->value_size = value_size;
	m->max_entries = max_entries;
	m->map_flags = map_flags;
	m->value_stride = (uint32_t)round_up(value_size, 8);
	m->free_head = 0;
	m->rb_eventfd = -1;
	switch (type) {
	case UBPF_MAP_ARRAY:
	case UBPF_MAP_PERCPU_ARRAY:
	case UBPF_MAP_HASH:
	case UBPF_MAP_PERCPU_HASH:
		if (max_entries == 0 || value_size == 0 || key_size == 0) {
			err = -EINVAL;
			break;
		}
		if (is_array(m) && key_size != 4) {
			err = -EINVAL;
			break;
		}
		if ((uint64_t)max_entries * m->value_stride > (1ULL << 32) ||
		    (is_hash(m) && max_entries > (1U << 24)) || key_size > 512 || value_size > (1U << 30)) {
			err = -E2BIG;
			break;
		}
		m->values_len = round_up((uint64_t)max_entries * m->value_stride, page_size());
		m->values = anon_map(m->values_len);
		if (!m->values) {
			err = -ENOMEM;
			break;
		}
		if (is_hash(m)) {
			uint32_t nb = 1;
			while (nb < max_entries)
				nb <<= 1;
			m->n_buckets = nb;
			m->buckets = malloc(sizeof(int32_t) * nb);
			m->next = malloc(sizeof(int32_t) * max_entries);
			m->keys = calloc(max_entries, key_size);
			m->used = calloc(max_entries, 1);
			if (!m->buckets || !m->next || !m->keys || !m->used) {
				err = -ENOMEM;
				break;
			}
			for (uint32_t i = 0; i < nb; i++)
				m->buckets[i] = -1;
			for (uint32_t i = 0; i < max_entries; i++)
				m->next[i] = i + 1 < max_entries ? (int32_t)(i + 1) : -1;
		}
		break;
	case UBPF_MAP_RINGBUF:
		if (key_size || value_size) {
			err = -EINVAL;
			break;
		}
		err = ringbuf_init(m);
		break;
	case UBPF_MAP_ARENA:
		if (key_size || value_size) {
			err = -EINVAL;
			break;
		}
		err = arena_init(m, map_extra);
		break;
	default:
		err = -EOPNOTSUPP;
	}
	if (err) {
		map_free(m);
		return err;
	}
	map_guard(m, 1);
	m->guarded = 1;
	*out = m;
	return 0;
}

void ubpf_map_destroy(struct ubpf_map *m)
{
	if (m && m->magic == UBPF_MAP_MAGIC)
		map_free(m);
}

/* Make the values read-only (global .rodata after load: "frozen"). */
int ubpf_map_freeze(struct ubpf_map *m)
{
	if (!m->values)
		return -EINVAL;
	if (mprotect(m->values, m->values_len, PROT_READ))
		return -errno;
	m->frozen = 1;
	return 0;
}

static uint64_t hash_key(const uint8_t *key, uint32_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (uint32_t i = 0; i < n; i++) {
		h ^= key[i];
		h *= 0x100000001b3ULL;
	}
	return h ^ (h >> 29);
}

static int32_t hash_find(struct ubpf_map *m, const void *key, int32_t **link_out)
{
	uint32_t b = (uint32_t)(hash_key(key, m->key_size) & (m->n_buckets - 1));
	int32_t *link = &m->buckets[b];
	while (*link >= 0) {
		int32_t i = *link;
		if (!memcmp(m->keys + (uint64_t)i * m->key_size, key, m->key_size)) {
			if (link_out)
				*link_out = link;
			return i;
		}
		link = &m->next[i];
	}
	if (link_out)
		*link_out = &m->buckets[b];
	return -1;
}

static void *map_lookup(struct ubpf_map *m, const void *key)
{
	if (is_array(m)) {
		uint32_t idx = *(const uint32_t *)key;
		return idx < m->max_entries ? m->values + (uint64_t)idx * m->value_stride : NULL;
	}
	if (is_hash(m)) {
		map_lock(m);
		int32_t i = hash_find(m, key, NULL);
		map_unlock(m);
		return i < 0 ? NULL : m->values + (uint64_t)i * m->value_stride;
	}
	return NULL;
}

uint64_t ubpf_helper_map_lookup_elem(uint64_t map, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3; (void)a4; (void)a5;
	return (uint64_t)map_lookup((struct ubpf_map *)map, (const void *)key);
}

uint64_t ubpf_helper_map_lookup_percpu_elem(uint64_t map, uint64_t key, uint64_t cpu, uint64_t a4, uint64_t a5)
{
	(void)a4; (void)a5;
	struct ubpf_map *m = (struct ubpf_map *)map;
	if (m->type != UBPF_MAP_PERCPU_ARRAY && m->type != UBPF_MAP_PERCPU_HASH)
		return 0;
	if ((uint32_t)cpu != 0) /* uringbpf keeps one CPU's worth of per-CPU storage */
		return 0;
	return (uint64_t)map_lookup(m, (const void *)key);
}

uint64_t ubpf_helper_map_update_elem(uint64_t map, uint64_t key, uint64_t value, uint64_t flags, uint64_t a5)
{
	(void)a5;
	struct ubpf_map *m = (struct ubpf_map *)map;
	if ((flags & ~(uint64_t)BPF_F_LOCK) > BPF_EXIST)
		return (uint64_t)-EINVAL;
	if (m->frozen)
		return (uint64_t)-EPERM;
	if (is_array(m)) {
		uint32_t idx = *(const uint32_t *)key;
		if (idx >= m->max_entries)
			return (uint64_t)-E2BIG;
		if ((flags & ~(uint64_t)BPF_F_LOCK) == BPF_NOEXIST)
			return (uint64_t)-EEXIST;
		memcpy(m->values + (uint64_t)idx * m->value_stride, (const void *)value, m->value_size);
		return 0;
	}
	if (is_hash(m)) {
		int64_t ret = 0;
		map_lock(m);
		int32_t *link;
		int32_t i = hash_find(m, (const void *)key, &link);
		uint64_t op = flags & ~(uint64_t)BPF_F_LOCK;
		if (i >= 0) {
			if (op == BPF_NOEXIST)
				ret = -EEXIST;
			else
				memcpy(m->values + (uint64_t)i * m->value_stride, (const void *)value, m->value_size);
		} else if (op == BPF_EXIST) {
			ret = -ENOENT;
		} else if (m->free_head == (uint32_t)-1 || m->count >= m->max_entries) {
			ret = -E2BIG;
		} else {
			int32_t n = (int32_t)m->free_head;
			m->free_head = (uint32_t)m->next[n];
			memcpy(m->keys + (uint64_t)n * m->key_size, (const void *)key, m->key_size);
			memcpy(m->values + (uint64_t)n * m->value_stride, (const void *)value, m->value_size);
			m->used[n] = 1;
			m->next[n] = *link;
			*link = n;
			m->count++;
		}
		map_unlock(m);
		return (uint64_t)ret;
	}
	return (uint64_t)-EINVAL;
}

uint64_t ubpf_helper_map_delete_elem(uint64_t map, uint64_t key, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3; (void)a4; (void)a5;
	struct ubpf_map *m = (struct ubpf_map *)map;
	if (is_array(m))
		return (uint64_t)-EINVAL;
	if (!is_hash(m))
		return (uint64_t)-EINVAL;
	int64_t ret = 0;
	map_lock(m);
	int32_t *link;
	int32_t i = hash_find(m, (const void *)key, &link);
	if (i < 0) {
		ret = -ENOENT;
	} else {
		*link = m->next[i];
		m->used[i] = 0;
		m->next[i] = (int32_t)m->free_head;
		m->free_head = (uint32_t)i;
		m->count--;
	}
	map_unlock(m);
	return (uint64_t)ret;
}

/* Iteration as BPF_MAP_GET_NEXT_KEY: key NULL (or absent) gives the first key. */
int ubpf_map_get_next_key(struct ubpf_map *m, const void *key, void *next_key)
{
	if (is_array(m)) {
		uint32_t idx = key ? *(const uint32_t *)key : (uint32_t)-1;
		uint32_t nxt = (key && idx < m->max_entries) ? idx + 1 : 0;
		if (key && idx >= m->max_entries)
			nxt = 0;
		if (nxt >= m->max_entries)
			return -ENOENT;
		*(uint32_t *)next_key = nxt;
		return 0;
	}
	if (!is_hash(m))
		return -EINVAL;
	int ret = -ENOENT;
	map_lock(m);
	uint32_t b = 0;
	int32_t i = -1;
	if (key) {
		i = hash_find(m, key, NULL);
		if (i >= 0) {
			b = (uint32_t)(hash_key(key, m->key_size) & (m->n_buckets - 1));
			i = m->next[i];
			if (i < 0)
				b++;
		}
	}
	if (i < 0) {
		for (; b < m->n_buckets; b++)
			if (m->buckets[b] >= 0) {
				i = m->buckets[b];
				break;
			}
	}
	if (i >= 0) {
		memcpy(next_key, m->keys + (uint64_t)i * m->key_size, m->key_size);
		ret = 0;
	}
	map_unlock(m);
	return ret;
}

/* --- ring buffer ---------------------------------------------------------------------- */

uint64_t ubpf_helper_ringbuf_reserve(uint64_t map, uint64_t size, uint64_t flags, uint64_t a4, uint64_t a5)
{
	(void)a4; (void)a5;
	struct ubpf_map *m = (struct ubpf_map *)map;
	if (m->type != UBPF_MAP_RINGBUF || flags || size == 0 || size > (RB_DISCARD - 1) ||
	    size + RB_HDR > m->rb_mask + 1)
		return 0;
	uint64_t len = round_up(size + RB_HDR, 8);
	uint64_t *hdr_ret = NULL;
	map_lock(m);
	uint64_t cons = __atomic_load_n(m->rb_consumer_pos, __ATOMIC_ACQUIRE);
	uint64_t prod = *m->rb_producer_pos;
	if (prod + len - cons <= m->rb_mask + 1) {
		uint32_t *hdr = (uint32_t *)(m->rb_data + (prod & m->rb_mask));
		hdr[0] = (uint32_t)size | RB_BUSY;
		hdr[1] = (uint32_t)((prod & m->rb_mask) / 8);
		__atomic_store_n(m->rb_producer_pos, prod + len, __ATOMIC_RELEASE);
		hdr_ret = (uint64_t *)hdr;
	}
	map_unlock(m);
	return hdr_ret ? (uint64_t)((uint8_t *)hdr_ret + RB_HDR) : 0;
}

static void ringbuf_commit(uint64_t sample, uint64_t flags, int discard)
{
	uint32_t *hdr = (uint32_t *)(sample - RB_HDR);
	uint32_t len = __atomic_load_n(hdr, __ATOMIC_RELAXED) & ~RB_BUSY;
	if (discard)
		len |= RB_DISCARD;
	__atomic_store_n(hdr, len, __ATOMIC_RELEASE);
	/* wake a sleeping consumer as the kernel does: when forced, or when the consumer has
	 * caught up with this very record (it may be waiting for it) */
	uint64_t rec_pos = (uint64_t)hdr[1] * 8;
	uint8_t *data = (uint8_t *)hdr - rec_pos;
	struct ubpf_map *m = *(struct ubpf_map **)(data - page_size() + 8);
	if (m->rb_eventfd < 0 || (flags & 1 /* BPF_RB_NO_WAKEUP */))
		return;
	uint64_t cons = __atomic_load_n(m->rb_consumer_pos, __ATOMIC_ACQUIRE) & m->rb_mask;
	if ((flags & 2 /* BPF_RB_FORCE_WAKEUP */) || cons == rec_pos) {
		uint64_t one = 1;
		ssize_t n = write(m->rb_eventfd, &one, sizeof(one));
		(void)n;
	}
}

/* Signal `fd` (an eventfd) when records are committed; -1 turns it off. */
int ubpf_ringbuf_set_eventfd(struct ubpf_map *m, int fd)
{
	if (m->type != UBPF_MAP_RINGBUF)
		return -EINVAL;
	m->rb_eventfd = fd;
	return 0;
}

uint64_t ubpf_helper_ringbuf_submit(uint64_t sample, uint64_t flags, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3; (void)a4; (void)a5;
	ringbuf_commit(sample, flags, 0);
	return 0;
}

uint64_t ubpf_helper_ringbuf_discard(uint64_t sample, uint64_t flags, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3; (void)a4; (void)a5;
	ringbuf_commit(sample, flags, 1);
	return 0;
}

uint64_t ubpf_helper_ringbuf_output(uint64_t map, uint64_t data, uint64_t size, uint64_t flags, uint64_t a5)
{
	(void)a5;
	if (flags & ~3ULL)
		return (uint64_t)-EINVAL;
	uint64_t rec = ubpf_helper_ringbuf_reserve(map, size, 0, 0, 0);
	if (!rec)
		return (uint64_t)-EAGAIN;
	memcpy((void *)rec, (const void *)data, size);
	ringbuf_commit(rec, flags, 0);
	return 0;
}

uint64_t ubpf_helper_ringbuf_query(uint64_t map, uint64_t flags, uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3; (void)a4; (void)a5;
	struct ubpf_map *m = (struct ubpf_map *)map;
	if (m->type != UBPF_MAP_RINGBUF)
		return 0;
	uint64_t cons = __atomic_load_n(m->rb_consumer_pos, __ATOMIC_ACQUIRE);
	uint64_t prod = __atomic_load_n(m->rb_producer_pos, __ATOMIC_ACQUIRE);
	switch (flags) {
	case 0: return prod - cons;           /* BPF_RB_AVAIL_DATA */
	case 1: return m->rb_mask + 1;        /* BPF_RB_RING_SIZE */
	case 2: return cons;                  /* BPF_RB_CONS_POS */
	case 3: return prod;                  /* BPF_RB_PROD_POS */
	}
	return 0;
}

/* Consumer side: the next committed record (discarded ones are skipped).
 * Returns its length and stores its address, 0 if none is ready (empty or still busy). */
int64_t ubpf_ringbuf_peek(struct ubpf_map *m, uint64_t *data_addr)
{
	for (;;) {
		uint64_t cons = __atomic_load_n(m->rb_consumer_pos, __ATOMIC_ACQUIRE);
		uint64_t prod = __atomic_load_n(m->rb_producer_pos, __ATOMIC_ACQUIRE);
		if (cons >= prod)
			return -1;
		uint32_t *hdr = (uint32_t *)(m->rb_data + (cons & m->rb_mask));
		uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
		if (len & RB_BUSY)
			return -1;
		uint32_t size = len & ~(RB_BUSY | RB_DISCARD);
		if (len & RB_DISCARD) {
			__atomic_store_n(m->rb_consumer_pos, cons + round_up(size + RB_HDR, 8), __ATOMIC_RELEASE);
			continue;
		}
		*data_addr = (uint64_t)((uint8_t *)hdr + RB_HDR);
		return size;
	}
}

/* Consumer side: release the record returned by the last peek. */
void ubpf_ringbuf_release(struct ubpf_map *m)
{
	uint64_t cons = __atomic_load_n(m->rb_consumer_pos, __ATOMIC_ACQUIRE);
	uint32_t *hdr = (uint32_t *)(m->rb_data + (cons & m->rb_mask));
	uint32_t size = __atomic_load_n(hdr, __ATOMIC_ACQUIRE) & ~(RB_BUSY | RB_DISCARD);
	__atomic_store_n(m->rb_consumer_pos, cons + round_up(size + RB_HDR, 8), __ATOMIC_RELEASE);
}

/* --- arena (BPF_MAP_TYPE_ARENA subset) ------------------------------------------------- */

/* kfunc bpf_arena_alloc_pages(map, addr hint or NULL, page_cnt, node_id, flags) */
uint64_t ubpf_kfunc_arena_alloc_pages(uint64_t map, uint64_t addr, uint64_t page_cnt, uint64_t node, uint64_t flags)
{
	(void)node;
	struct ubpf_map *m = (struct ubpf_map *)map;
	uint64_t ps = page_size();
	if (m->type != UBPF_MAP_ARENA || flags || page_cnt == 0 || page_cnt > m->max_entries)
		return 0;
	uint64_t start = 0, found = (uint64_t)-1;
	map_lock(m);
	if (addr) {
		/* the kernel's rules: a page-aligned hint whose pages all lie in the arena */
		if (addr % ps == 0 && arena_pgoff(m, addr) + page_cnt <= m->max_entries) {
			start = arena_pgoff(m, addr);
			found = start;
			for (uint64_t i = 0; i < page_cnt; i++)
				if (m->arena_page_used[start + i])
					found = (uint64_t)-1;
		}
	} else {
		for (start = 0; start + page_cnt <= m->max_entries; start++) {
			uint64_t i = 0;
			while (i < page_cnt && !m->arena_page_used[start + i])
				i++;
			if (i == page_cnt) {
				found = start;
				break;
			}
			start += i;
		}
	}
	if (found != (uint64_t)-1)
		memset(m->arena_page_used + found, 1, page_cnt);
	map_unlock(m);
	return found == (uint64_t)-1 ? 0 : (uint64_t)(m->arena_base + found * ps);
}

/* kfunc bpf_arena_free_pages(map, ptr, page_cnt): the pages read back as zero afterwards */
uint64_t ubpf_kfunc_arena_free_pages(uint64_t map, uint64_t ptr, uint64_t page_cnt, uint64_t a4, uint64_t a5)
{
	(void)a4; (void)a5;
	struct ubpf_map *m = (struct ubpf_map *)map;
	uint64_t ps = page_size();
	if (m->type != UBPF_MAP_ARENA || !ptr || !page_cnt)
		return 0;
	/* as the kernel's arena_free_pages: only the page-aligned low 32 bits count (a kern-
	 * or a user-side pointer alike), and the range is clipped at the arena's end */
	uint64_t full = ((uint64_t)m->arena_base & ~(FOUR_G - 1)) + ((uint32_t)ptr & ~(uint32_t)(ps - 1));
	uint64_t start = (uint64_t)m->arena_base, end = start + m->arena_len;
	if (full < start || full >= end)
		return 0;
	if (page_cnt > (end - full) / ps)
		page_cnt = (end - full) / ps;
	uint64_t pg = (full - start) / ps;
	map_lock(m);
	/* private anonymous memory: DONTNEED drops the pages, they read back as zero */
	if (madvise(m->arena_base + pg * ps, page_cnt * ps, MADV_DONTNEED))
		memset(m->arena_base + pg * ps, 0, page_cnt * ps);
	memset(m->arena_page_used + pg, 0, page_cnt);
	map_unlock(m);
	return 0;
}

/* kfunc bpf_arena_reserve_pages(map, ptr, page_cnt) (6.17+): mark free pages taken without
 * backing them, so bpf_arena_alloc_pages never returns them; the kernel's codes: an
 * unaligned address does nothing (0), a range past the arena is -EINVAL, a range with a
 * page already taken -EBUSY. */
uint64_t ubpf_kfunc_arena_reserve_pages(uint64_t map, uint64_t ptr, uint64_t page_cnt, uint64_t a4, uint64_t a5)
{
	(void)a4; (void)a5;
	struct ubpf_map *m = (struct ubpf_map *)map;
	uint64_t ps = page_size();
	page_cnt = (uint32_t)page_cnt;
	if (m->type != UBPF_MAP_ARENA)
		return (uint64_t)-EINVAL;
	if (!page_cnt || ptr % ps)
		return 0;
	uint64_t pg = arena_pgoff(m, ptr);
	if (pg + page_cnt > m->max_entries)
		return (uint64_t)-EINVAL;
	int64_t ret = 0;
	map_lock(m);
	for (uint64_t i = 0; i < page_cnt; i++)
		if (m->arena_page_used[pg + i])
			ret = -EBUSY;
	if (!ret)
		memset(m->arena_page_used + pg, 1, page_cnt);
	map_unlock(m);
	return (uint64_t)ret;
}

/* ---- the registry of runtime-owned memory (guard.h) -------------------------------- */

#include <pthread.h>
#include "guard.h"

struct ubpf_guard_registry ubpf_guard_registry;
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ubpf_guard_table *guard_retired[64];
static unsigned guard_nretired;

/* Publish `t` (writers hold guard_lock) and free replaced tables no reader can hold. */
static void guard_publish(struct ubpf_guard_table *t)
{
	struct ubpf_guard_table *old = __atomic_exchange_n(&ubpf_guard_registry.table, t,
							   __ATOMIC_SEQ_CST);

	if (old && guard_nretired < 64)
		guard_retired[guard_nretired++] = old;
	if (__atomic_load_n(&ubpf_guard_registry.readers, __ATOMIC_SEQ_CST) == 0) {
		for (unsigned i = 0; i < guard_nretired; i++)
			free(guard_retired[i]);
		guard_nretired = 0;
	}
	__atomic_fetch_add(&ubpf_guard_registry.generation, 1, __ATOMIC_RELAXED);
}

static struct ubpf_guard_table *guard_alloc(uint64_t n)
{
	struct ubpf_guard_table *t = malloc(sizeof(*t) + (n ? n : 1) * sizeof(t->r[0]));
	if (t)
		t->n = n;
	return t;
}

static void guard_fill_maxend(struct ubpf_guard_table *t)
{
	uint64_t max = 0;
	for (uint64_t i = 0; i < t->n; i++) {
		if (t->r[i].end > max)
			max = t->r[i].end;
		t->r[i].maxend = max;
	}
}

/* Register [base, base+len) as runtime-owned. 0, -EINVAL or -ENOMEM. */
int ubpf_guard_add(uint64_t base, uint64_t len)
{
	struct ubpf_guard_table *cur, *t;
	uint64_t i, n;

	if (!len || base + len < base)
		return -EINVAL;
	pthread_mutex_lock(&guard_lock);
	cur = ubpf_guard_registry.table;
	n = cur ? cur->n : 0;
	t = guard_alloc(n + 1);
	if (!t) {
		pthread_mutex_unlock(&guard_lock);
		return -ENOMEM;
	}
	for (i = 0; i < n && cur->r[i].base <= base; i++)
		t->r[i] = cur->r[i];
	t->r[i].base = base;
	t->r[i].end = base + len;
	for (; i < n; i++)
		t->r[i + 1] = cur->r[i];
	guard_fill_maxend(t);
	guard_publish(t);
	pthread_mutex_unlock(&guard_lock);
	return 0;
}

/* Forget one registration of exactly [base, base+len). 0 or -ENOENT. */
int ubpf_guard_remove(uint64_t base, uint64_t len)
{
	struct ubpf_guard_table *cur, *t;
	uint64_t i, j, n;
	int found = 0;

	pthread_mutex_lock(&guard_lock);
	cur = ubpf_guard_registry.table;
	n = cur ? cur->n : 0;
	t = guard_alloc(n ? n - 1 : 0);
	if (!t) {
		/* cannot shrink: keep the (stale, harmless: stricter) range */
		pthread_mutex_unlock(&guard_lock);
		return -ENOMEM;
	}
	for (i = 0, j = 0; i < n; i++) {
		if (!found && cur->r[i].base == base && cur->r[i].end == base + len) {
			found = 1;
			continue;
		}
		if (j < (n ? n - 1 : 0))
			t->r[j++] = cur->r[i];
	}
	if (!found) {
		free(t);
		pthread_mutex_unlock(&guard_lock);
		return -ENOENT;
	}
	t->n = j;
	guard_fill_maxend(t);
	guard_publish(t);
	pthread_mutex_unlock(&guard_lock);
	return 0;
}

/* For Python and tests: 1 when [addr, addr+len) touches runtime-owned memory. */
int ubpf_guard_check(uint64_t addr, uint64_t len)
{
	return ubpf_guard_overlaps(addr, len);
}

/* For Python and tests: -EFAULT or 0 for an SQE (64 or 128 bytes at `sqe`). */
int ubpf_guard_check_sqe(const uint8_t *sqe)
{
	return ubpf_guard_sqe(sqe);
}

uint64_t ubpf_guard_count(void)
{
	struct ubpf_guard_table *t = __atomic_load_n(&ubpf_guard_registry.table, __ATOMIC_ACQUIRE);
	return t ? t->n : 0;
}
