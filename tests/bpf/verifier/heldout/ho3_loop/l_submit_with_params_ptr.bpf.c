/* bpf_io_uring_submit_sqes given the params pointer instead of the ring */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r7 = *(u64 *)(r1 + 8);"
	"r1 = r7;"
	"r2 = 1;"
	"call %[bpf_io_uring_submit_sqes];"
	"r0 = 1;"
	"exit;"
	:: IMM(bpf_io_uring_submit_sqes) : "memory");
}
OPS;
