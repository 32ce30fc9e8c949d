/* arithmetic on the region pointer before its NULL check */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r7 = *(u64 *)(r1 + 8);"
	ASM_REGION(0, 64)
	"r0 += 8;"
	"if r0 == 0 goto 1f;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
