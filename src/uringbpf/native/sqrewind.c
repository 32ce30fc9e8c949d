/*
 * native/sqrewind.h exported for ctypes: uring/ring.py's emulated SQ_REWIND submit
 * (the loop design's C includes the header directly).
 */
#include "sqrewind.h"

/* uringbpf_sq_rewind_stage, its two results in one word for a cheap ctypes call:
 * (tail << 32) | n. */
uint64_t uringbpf_sqrewind_stage(const struct uringbpf_ksq *k, const uint8_t *src, uint32_t nr)
{
	uint32_t tail;
	uint32_t n = uringbpf_sq_rewind_stage(k, src, nr, &tail);

	return (uint64_t)tail << 32 | n;
}

void uringbpf_sqrewind_publish(const struct uringbpf_ksq *k, uint32_t tail)
{
	uringbpf_sq_rewind_publish(k, tail);
}
