/* the ring pointer passed as a map key */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r2 = *(u64 *)(r1 + 0);"
	"r1 = %[arr] ll;"
	"call %[bpf_map_lookup_elem];"
	"r0 = 0;"
	"exit;"
	:: IMM_ADDR(arr), IMM(bpf_map_lookup_elem) : "memory");
}
OPS;
