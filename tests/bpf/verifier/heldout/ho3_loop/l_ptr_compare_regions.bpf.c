/* two region pointers compared with each other (privileged: allowed) */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	ASM_REGION(0, 64)
	"r7 = r0;"
	ASM_REGION(1, 64)
	"r1 = 0;"
	"if r0 == r7 goto 1f;"
	"r1 = 1;"
	"1:"
	"r0 = r1;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
