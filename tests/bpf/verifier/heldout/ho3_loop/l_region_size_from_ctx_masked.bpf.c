/* the region size is a masked parameter: not a constant */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r7 = *(u64 *)(r1 + 8);"
	"r3 = *(u32 *)(r7 + 0);"
	"r3 &= 63;"
	"r1 = r6;"
	"r2 = 0;"
	"call %[bpf_io_uring_get_region];"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
