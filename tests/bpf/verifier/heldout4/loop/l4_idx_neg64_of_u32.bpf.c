/* r1 = -idx (64-bit) of a u32: tested s> -32, moved up by 31 */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r8 = *(u64 *)(r1 + 8);"
	ASM_REGION(0, 32)
	"if r0 == 0 goto 1f;"
	"w1 = *(u32 *)(r8 + 0);"
	"r1 = -r1;"
	"if r1 s< -31 goto 1f;"
	"r1 += 31;"
	"r0 += r1;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
