/* idx + 2**63 - 16 tested signed, moved back */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r8 = *(u64 *)(r1 + 8);"
	ASM_REGION(0, 16)
	"if r0 == 0 goto 1f;"
	"w1 = *(u32 *)(r8 + 0);"
	"r2 = 0x7ffffffffffffff0 ll;"
	"r1 += r2;"
	"if r1 s< r2 goto 1f;"
	"r1 -= r2;"
	"r0 += r1;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
