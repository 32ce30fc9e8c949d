/* an iterator on a stack slot that is not 8-byte aligned */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r1 = r10;"
	"r1 += -12;"
	"r2 = 0;"
	"r3 = 4;"
	"call %[bpf_iter_num_new];"
	"r1 = r10;"
	"r1 += -12;"
	"call %[bpf_iter_num_destroy];"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_iter_num_new), IMM(bpf_iter_num_destroy) : "memory");
}
OPS;
