/* r7 = r6 + 4 tested through r6 (6.11+ linked scalars with a delta): 4-byte store ends at 64 */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r8 = *(u64 *)(r1 + 8);"
	ASM_REGION(0, 64)
	"if r0 == 0 goto 1f;"
	"r6 = *(u32 *)(r8 + 0);"
	"r7 = r6;"
	"r7 += 4;"
	"if r6 > 56 goto 1f;"
	"r0 += r7;"
	"*(u32 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
