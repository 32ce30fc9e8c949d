/* the value from bpf_iter_num_next used as an index without a range check */
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
	"if r0 == 0 goto 1f;"
	"r1 = *(s32 *)(r0 + 0);"
	"r2 = %[tbl] ll;"
	"r2 += r1;"
	"r0 = *(u8 *)(r2 + 0);"
	"goto 2b;"
	"1:"
	"r1 = r10;"
	"r1 += -8;"
	"call %[bpf_iter_num_destroy];"
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_iter_num_new), IMM(bpf_iter_num_next), IMM(bpf_iter_num_destroy), IMM_ADDR(tbl) : "memory");
}
OPS;
