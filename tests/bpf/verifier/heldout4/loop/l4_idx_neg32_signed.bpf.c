/* -(idx & 31) tested s>= -31 as 32 bits, moved up by 31 */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r8 = *(u64 *)(r1 + 8);"
	ASM_REGION(0, 32)
	"if r0 == 0 goto 1f;"
	"w1 = *(u32 *)(r8 + 0);"
	"w1 &= 31;"
	"w1 = -w1;"
	"w1 += 31;"
	"r0 += r1;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
