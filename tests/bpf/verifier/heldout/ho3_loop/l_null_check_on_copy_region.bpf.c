/* the region pointer is NULL-checked through a copy and used through the original */
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
	"if r7 == 0 goto 1f;"
	"*(u8 *)(r0 + 63) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
