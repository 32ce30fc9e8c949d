/* the value from bpf_iter_num_next used as an index without a range check */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_ITER_NEW(16)
	"2:"
	ASM_ITER(bpf_iter_num_next)
	"if r0 == 0 goto 1f;"
	"r1 = *(s32 *)(r0 + 0);"
	"r2 = %[tbl] ll;"
	"r2 += r1;"
	"r0 = *(u8 *)(r2 + 0);"
	"goto 2b;"
	"1:"
	ASM_ITER(bpf_iter_num_destroy)
	"r0 = 0;"
	"exit;"
	:: IMM(bpf_iter_num_new), IMM(bpf_iter_num_next), IMM(bpf_iter_num_destroy), IMM_ADDR(tbl) : "memory");
}
OPS;
