/* the ring pointer stored into an array map value (privileged: allowed) */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"*(u32 *)(r10 - 4) = 0;"
	"r1 = %[arr] ll;"
	"r2 = r10;"
	"r2 += -4;"
	"call %[bpf_map_lookup_elem];"
	"if r0 == 0 goto 1f;"
	"*(u64 *)(r0 + 0) = r6;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM_ADDR(arr), IMM(bpf_map_lookup_elem) : "memory");
}
OPS;
