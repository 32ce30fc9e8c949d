/* a region pointer's copy + a 64-bit unknown read from it, never used */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	ASM_REGION(0, 64)
	"if r0 == 0 goto 1f;"
	"r9 = *(u64 *)(r0 + 0);"
	"r1 = r0;"
	"r1 += r9;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
