/* bpf_io_uring_submit_sqes from a non-sleepable loop_step */
#include "ho3.h"
SEC("struct_ops/step") __attribute__((naked)) void step(void)
{
	asm volatile(
	ASM_RING_R6
	"r1 = r6;"
	"r2 = 1;"
	"call %[bpf_io_uring_submit_sqes];"
	"r0 = 1;"
	"exit;"
	:: IMM(bpf_io_uring_submit_sqes) : "memory");
}
OPS;
