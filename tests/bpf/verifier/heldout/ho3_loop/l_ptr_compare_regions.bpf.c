/* two region pointers compared with each other (privileged: allowed) */
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
	"r1 = 0;"
	"if r0 == r7 goto 1f;"
	"r1 = 1;"
	"1:"
	"r0 = r1;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
