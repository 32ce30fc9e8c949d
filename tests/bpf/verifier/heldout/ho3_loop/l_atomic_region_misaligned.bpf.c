/* an 8-byte atomic at offset 4 of the memory region */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	ASM_REGION(0, 64)
	"if r0 == 0 goto 1f;"
	"r1 = 1;"
	"lock *(u64 *)(r0 + 4) += r1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
