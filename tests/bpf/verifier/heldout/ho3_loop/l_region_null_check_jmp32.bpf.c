/* the region pointer tested with a 32-bit compare */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r7 = *(u64 *)(r1 + 8);"
	ASM_REGION(0, 64)
	"if w0 == 0 goto 1f;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
