/* the region pointer stored into the region itself (privileged: a leak the kernel allows) */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r7 = *(u64 *)(r1 + 8);"
	ASM_REGION(0, 64)
	"if r0 == 0 goto 1f;"
	"*(u64 *)(r0 + 0) = r0;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
