/* an atomic add on the read-only byte of a zero-size region */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	ASM_REGION(0, 0)
	"if r0 == 0 goto 1f;"
	"r1 = 1;"
	"lock *(u32 *)(r0 + 0) += r1;"
	"1:"
	"r0 = 1;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
