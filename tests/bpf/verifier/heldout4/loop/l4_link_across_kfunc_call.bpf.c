/* a link made before a kfunc call (r6/r7 survive it), tested after */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	"r6 = *(u64 *)(r1 + 0);"
	"r8 = *(u64 *)(r1 + 8);"
	"r9 = *(u32 *)(r8 + 0);"
	"r7 = r9;"
	"r7 += 8;"
	"r1 = r6;"
	"r2 = 0;"
	"r3 = 64;"
	"call %[bpf_io_uring_get_region];"
	"if r0 == 0 goto 1f;"
	"if r9 > 55 goto 1f;"
	"r0 += r7;"
	"*(u8 *)(r0 + 0) = 1;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_io_uring_get_region) : "memory");
}
OPS;
