/* realistic: the only pointer compare is the NULL check */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	ASM_REGION(0, 8)
	"r1 = 0;"
	"if r0 == 0 goto 1f;"
	"r1 = *(u8 *)(r0 + 0);"
	"1:"
	"r0 = r1;"
	"r0 &= 1;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
