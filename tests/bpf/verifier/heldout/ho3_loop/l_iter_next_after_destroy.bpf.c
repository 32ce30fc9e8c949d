/* bpf_iter_num_next on a destroyed iterator */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r1 = r10;"
	"r1 += -8;"
	"r2 = 0;"
	"r3 = 4;"
	"call %[bpf_iter_num_new];"
	"r1 = r10;"
	"r1 += -8;"
	"call %[bpf_iter_num_destroy];"
	"r1 = r10;"
	"r1 += -8;"
	"call %[bpf_iter_num_next];"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_iter_num_new), IMM(bpf_iter_num_next), IMM(bpf_iter_num_destroy) : "memory");
}
OPS;
