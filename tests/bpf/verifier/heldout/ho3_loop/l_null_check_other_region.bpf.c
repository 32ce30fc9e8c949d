/* two regions, the first checked, the second used */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	ASM_REGION(0, 64)
	"r7 = r0;"
	ASM_REGION(1, 64)
	"if r7 == 0 goto 1f;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
