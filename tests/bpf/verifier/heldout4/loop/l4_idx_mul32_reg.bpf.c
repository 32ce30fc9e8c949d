/* w = (idx & 7) * (idx2 & 7) with two registers: [0, 49] in a 50-byte region */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r8 = *(u64 *)(r1 + 8);"
	ASM_REGION(0, 50)
	"if r0 == 0 goto 1f;"
	"w1 = *(u32 *)(r8 + 0);"
	"w2 = w1;"
	"w1 &= 7;"
	"w2 >>= 3;"
	"w2 &= 7;"
	"w1 *= w2;"
	"r0 += r1;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
