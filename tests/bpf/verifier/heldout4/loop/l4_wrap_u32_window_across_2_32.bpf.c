/* idx - 8 (32-bit) kept in [-8, 7] by two unsigned tests, then moved */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r8 = *(u64 *)(r1 + 8);"
	ASM_REGION(0, 16)
	"if r0 == 0 goto 1f;"
	"w1 = *(u32 *)(r8 + 0);"
	"w1 += -8;"
	"w2 = w1;"
	"w2 += 8;"
	"if w2 > 15 goto 1f;"
	"w1 += 8;"
	"r0 += r1;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
