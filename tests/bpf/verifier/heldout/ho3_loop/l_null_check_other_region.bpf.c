/* two regions, the first checked, the second used */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r6 = *(u64 *)(r1 + 0);"
	"r1 = r6;"
	"r2 = 0;"
	"r3 = 64;"
	"call %[bpf_io_uring_get_region];"
	"r7 = r0;"
	"r1 = r6;"
	"r2 = 1;"
	"r3 = 64;"
	"call %[bpf_io_uring_get_region];"
	"if r7 == 0 goto 1f;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
