/* the region pointer stored into the region itself (privileged: a leak the kernel allows) */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r6 = *(u64 *)(r1 + 0);"
	"r7 = *(u64 *)(r1 + 8);"
	"r1 = r6;"
	"r2 = 0;"
	"r3 = 64;"
	"call %[bpf_io_uring_get_region];"
	"if r0 == 0 goto 1f;"
	"*(u64 *)(r0 + 0) = r0;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
