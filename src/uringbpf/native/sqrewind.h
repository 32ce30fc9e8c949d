/*
 * IORING_SETUP_SQ_REWIND (Linux 7.1) on a kernel without it: the one implementation, used
 * by the loop design's C (designs/loop/loop.c, included) and by uring/ring.py (through
 * native/sqrewind.c, loaded with ctypes on the first emulated submit).
 *
 * With SQ_REWIND the application fills SQE slots 0..nr-1 of its array for every submit
 * and the kernel reads them from slot 0; SQEs it does not consume are dropped (the next
 * submit starts at slot 0 again).  Emulated, the kernel ring is a normal head/tail ring:
 *
 *   1. stage: copy slots 0..n-1 (n = nr, at most the free room) to the kernel SQ at its
 *      tail, SQ array entries included (uringbpf_sq_rewind_stage);
 *   2. the caller checks/filters the copies in place (copy i is in kernel slot
 *      (tail + i) & mask): what the kernel reads is what was checked;
 *   3. publish tail + n, io_uring_enter(n), then move the tail back to tail + consumed:
 *      the unconsumed copies are dropped, as with the real flag
 *      (uringbpf_sq_rewind_publish for both stores).
 */
#ifndef URINGBPF_SQREWIND_H
#define URINGBPF_SQREWIND_H

#include <stdint.h>
#include <string.h>

/* The kernel SQ as mapped in this process (addresses; `array` is NULL with NO_SQARRAY). */
struct uringbpf_ksq {
	uint32_t *head, *tail, *array;
	uint8_t *sqes;
	uint32_t mask, entries, sqe_size, pad;
};

/* Step 1: returns n (slots staged), sets *tail_out to the tail copy 0 starts at. */
static inline uint32_t uringbpf_sq_rewind_stage(const struct uringbpf_ksq *k, const uint8_t *src,
						uint32_t nr, uint32_t *tail_out)
{
	uint32_t head = __atomic_load_n(k->head, __ATOMIC_ACQUIRE);
	uint32_t tail = *k->tail;   /* the application owns the SQ tail */
	uint32_t space = k->entries - (tail - head);
	uint32_t i;

	if (nr > k->entries)
		nr = k->entries;
	if (nr > space)
		nr = space;
	for (i = 0; i < nr; i++) {
		uint32_t slot = (tail + i) & k->mask;

		memcpy(k->sqes + (size_t)slot * k->sqe_size, src + (size_t)i * k->sqe_size,
		       k->sqe_size);
		if (k->array)
			k->array[slot] = slot;
	}
	*tail_out = tail;
	return nr;
}

/* Step 3: the tail the kernel sees (tail + n before the enter, tail + consumed after). */
static inline void uringbpf_sq_rewind_publish(const struct uringbpf_ksq *k, uint32_t tail)
{
	__atomic_store_n(k->tail, tail, __ATOMIC_RELEASE);
}

#endif
