/* the pointer from bpf_iter_num_next read without the NULL check */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_ITER_NEW(16)
	ASM_ITER(bpf_iter_num_next)
	"r6 = *(u32 *)(r0 + 0);"
	ASM_ITER(bpf_iter_num_destroy)
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_iter_num_new), IMM(bpf_iter_num_next), IMM(bpf_iter_num_destroy) : "memory");
}
OPS;
