/* the ring pointer moved by 8 and passed to a kfunc */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"r6 += 8;"
	"r1 = r6;"
	"r2 = 1;"
	"call %[bpf_io_uring_submit_sqes];"
	"r0 = 1;"
	"exit;"
	:: IMM(bpf_io_uring_submit_sqes) : "memory");
}
OPS;
