/* an iterator left without bpf_iter_num_destroy */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_ITER_NEW(16)
	"2:"
	ASM_ITER(bpf_iter_num_next)
	"if r0 != 0 goto 2b;"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_iter_num_new), IMM(bpf_iter_num_next) : "memory");
}
OPS;
