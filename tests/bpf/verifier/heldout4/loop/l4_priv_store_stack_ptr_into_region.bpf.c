/* the frame pointer stored into the region */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	ASM_REGION(0, 8)
	"if r0 == 0 goto 1f;"
	"*(u64 *)(r0 + 0) = r10;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
