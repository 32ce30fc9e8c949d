/* a region pointer compared with a number */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	ASM_REGION(0, 8)
	"r1 = 0;"
	"if r0 > 4096 goto 1f;"
	"r1 = 1;"
	"1:"
	"r0 = r1;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
