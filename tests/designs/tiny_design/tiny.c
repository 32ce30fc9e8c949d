/* The tiny test design's kfunc: uint64_t f(uint64_t r1..r5), the helper calling convention. */
#include <stdint.h>

uint64_t tiny_kf_scale(uint64_t value, uint64_t factor, uint64_t r3, uint64_t r4, uint64_t r5)
{
	(void)r3; (void)r4; (void)r5;
	return value * factor + 1;
}
