/* the region pointer is NULL-checked through a copy and used through the original */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	ASM_REGION(0, 64)
	"r7 = r0;"
	"if r7 == 0 goto 1f;"
	"*(u8 *)(r0 + 63) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
