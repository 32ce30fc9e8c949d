/* an atomic add on the memory region (PTR_TO_MEM) */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r6 = *(u64 *)(r1 + 0);"
	"r1 = r6;"
	"r2 = 0;"
	"r3 = 64;"
	"call %[bpf_io_uring_get_region];"
	"if r0 == 0 goto 1f;"
	"r1 = 1;"
	"lock *(u64 *)(r0 + 8) += r1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
