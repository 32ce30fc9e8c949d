/* a zero-size region read without a NULL check */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	ASM_REGION(2, 0)
	"r0 = *(u8 *)(r0 + 0);"
	"r0 &= 1;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
