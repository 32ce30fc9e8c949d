/* an iterator destroyed twice */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_ITER_NEW(4)
	ASM_ITER(bpf_iter_num_destroy)
	ASM_ITER(bpf_iter_num_destroy)
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_iter_num_new), IMM(bpf_iter_num_destroy) : "memory");
}
OPS;
