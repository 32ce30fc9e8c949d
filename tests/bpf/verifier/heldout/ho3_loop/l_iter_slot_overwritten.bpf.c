/* a live iterator's stack slot overwritten by a store */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_ITER_NEW(4)
	"r1 = 0;"
	"*(u64 *)(r10 - 8) = r1;"
	ASM_ITER(bpf_iter_num_destroy)
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_iter_num_new), IMM(bpf_iter_num_destroy) : "memory");
}
OPS;
