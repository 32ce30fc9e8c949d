/* a 32-bit shift by a register, checked by a 64-bit compare */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r8 = *(u64 *)(r1 + 8);"
	ASM_REGION(0, 64)
	"if r0 == 0 goto 1f;"
	"w1 = *(u32 *)(r8 + 0);"
	"w2 = w1;"
	"w1 &= 7;"
	"w2 &= 3;"
	"w1 <<= w2;"
	"if r1 > 63 goto 1f;"
	"r0 += r1;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
