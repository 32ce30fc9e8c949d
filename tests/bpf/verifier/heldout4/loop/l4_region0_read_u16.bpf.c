/* a 2-byte read of a zero-size region */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	ASM_REGION(0, 0)
	"if r0 == 0 goto 1f;"
	"r0 = *(u16 *)(r0 + 0);"
	"r0 &= 1;"
	"exit;"
	"1:"
	"r0 = 1;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
