/* a signed 32-bit check on a value sign-extended to 64 bits */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r7 = *(u64 *)(r1 + 8);"
	"r1 = *(u32 *)(r7 + 0);"
	"r1 <<= 32;"
	"r1 s>>= 32;"
	"if w1 s< 0 goto 1f;"
	"if w1 s> 15 goto 1f;"
	"r2 = %[tbl] ll;"
	"r2 += r1;"
	"r0 = *(u8 *)(r2 + 0);"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM_ADDR(tbl) : "memory");
}
OPS;
