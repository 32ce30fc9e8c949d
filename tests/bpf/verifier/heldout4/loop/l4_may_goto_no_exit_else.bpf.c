/* a loop that only may_goto can end, with a region write each turn */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	ASM_REGION(0, 8)
	"if r0 == 0 goto 2f;"
	"r7 = 0;"
	"1:"
	"may_goto 2f;"
	"r7 += 1;"
	"*(u64 *)(r0 + 0) = r7;"
	"goto 1b;"
	"2:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
