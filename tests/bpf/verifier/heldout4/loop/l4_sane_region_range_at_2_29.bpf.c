/* a region pointer's copy + [2**29, 2**29 + 63], never used */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	ASM_REGION(0, 64)
	"if r0 == 0 goto 1f;"
	"r9 = *(u8 *)(r0 + 0);"
	"r9 &= 63;"
	"r9 += 0x20000000;"
	"r1 = r0;"
	"r1 += r9;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
