/* w7 = w1 + 8 (32-bit link), w1 tested by a 32-bit compare */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r8 = *(u64 *)(r1 + 8);"
	ASM_REGION(0, 64)
	"if r0 == 0 goto 1f;"
	"r1 = *(u32 *)(r8 + 0);"
	"w7 = w1;"
	"w7 += 8;"
	"if w1 > 55 goto 1f;"
	"r0 += r7;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
