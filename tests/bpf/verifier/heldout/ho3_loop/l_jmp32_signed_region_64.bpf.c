/* a signed 32-bit index in [0, 64] into a 64-byte region: one past */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r7 = *(u64 *)(r1 + 8);"
	ASM_REGION(0, 64)
	"if r0 == 0 goto 1f;"
	"w1 = *(u32 *)(r7 + 0);"
	"if w1 s< 0 goto 1f;"
	"if w1 s> 64 goto 1f;"
	"r0 += r1;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
