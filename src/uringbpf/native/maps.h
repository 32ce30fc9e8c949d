/* uringbpf maps: the native struct every map is, and the helper entry points.
 *
 * A program's `lddw rX, map` yields the address of a `struct ubpf_map`; helpers receive it
 * as `struct bpf_map *`. The JIT calls the `ubpf_helper_*` functions directly (they take
 * and return uint64_t like BPF registers); Python calls the same functions through ctypes,
 * so there is one implementation of every map operation. */
#ifndef UBPF_MAPS_H
#define UBPF_MAPS_H
#include <stdint.h>

#define UBPF_MAP_HASH 1
#define UBPF_MAP_ARRAY 2
#define UBPF_MAP_PERCPU_HASH 5
#define UBPF_MAP_PERCPU_ARRAY 6
#define UBPF_MAP_RINGBUF 27
#define UBPF_MAP_ARENA 33

#define UBPF_MAP_MAGIC 0x7562706d61703031ULL /* "ubpmap01" */

struct ubpf_map {
	uint64_t magic;          /* UBPF_MAP_MAGIC while alive: guards against bogus pointers */
	uint32_t type;
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	uint32_t map_flags;
	uint32_t value_stride;   /* value_size rounded up to 8 */
	uint8_t *values;         /* array/hash: max_entries * value_stride bytes (page aligned) */
	uint64_t values_len;     /* mapped length of `values` */
	volatile uint32_t lock;  /* spin lock for hash updates and ring-buffer reservation */
	uint32_t count;          /* hash: live elements */
	/* hash */
	uint32_t n_buckets;
	uint32_t free_head;
	int32_t *buckets;        /* head element index per bucket, -1 = empty */
	int32_t *next;           /* per element: next index in chain / free list */
	uint8_t *keys;           /* max_entries * key_size */
	uint8_t *used;           /* per element: 1 if live */
	/* ring buffer: [consumer page][producer page: pos, map pointer][data x2 (same pages mapped twice)] */
	uint8_t *rb_base;        /* start of the whole mapping */
	uint64_t rb_len;
	volatile uint64_t *rb_consumer_pos;
	volatile uint64_t *rb_producer_pos;
	uint8_t *rb_data;
	uint64_t rb_mask;
	/* arena */
	uint8_t *arena_base;     /* 4 GiB aligned, max_entries pages */
	uint64_t arena_len;
	uint8_t *arena_page_used;
	uint64_t reserve_addr;   /* arena: reservation start (to unmap); else unused */
	uint64_t reserve_len;
	int32_t rb_eventfd;      /* ring buffer: eventfd signalled on commit (-1: none) */
	uint32_t frozen;         /* values are read-only (mprotect): updates fail with -EPERM */
	uint32_t guarded;        /* storage is in the runtime-memory registry (guard.h) */
};

#endif
