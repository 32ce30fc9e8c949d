/* an iterator left without bpf_iter_num_destroy */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r1 = r10;"
	"r1 += -8;"
	"r2 = 0;"
	"r3 = 16;"
	"call %[bpf_iter_num_new];"
	"2:"
	"r1 = r10;"
	"r1 += -8;"
	"call %[bpf_iter_num_next];"
	"if r0 != 0 goto 2b;"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_iter_num_new), IMM(bpf_iter_num_next) : "memory");
}
OPS;
