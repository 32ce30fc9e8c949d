/* r7 = idx - 4 with idx in [4, 68] */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r8 = *(u64 *)(r1 + 8);"
	ASM_REGION(0, 64)
	"if r0 == 0 goto 1f;"
	"r1 = *(u32 *)(r8 + 0);"
	"r7 = r1;"
	"r7 += -4;"
	"if r1 < 4 goto 1f;"
	"if r1 > 68 goto 1f;"
	"r0 += r7;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
